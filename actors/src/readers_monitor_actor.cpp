#include "asyncstream/readers_monitor_actor.hpp"

#include <deque>
#include <unordered_set>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream {

namespace {

using open_promise = caf::typed_response_promise<std::uint64_t>;

struct monitor_state {
  std::size_t max_readers = 100;
  std::unordered_set<std::uint64_t> open;
  std::deque<std::pair<std::uint64_t, open_promise>> waiting;
  std::vector<open_promise> zero_waiters;
  caf::error refusal;
  std::shared_ptr<detail::stream_counters> counters;

  static inline const char* name = "asyncstream.readers_monitor";

  /// Publishes the counts for `stream::stats()` (relaxed stores).
  void publish() const {
    if (!counters)
      return;
    counters->readers.store(open.size(), std::memory_order_relaxed);
    counters->waiting.store(waiting.size(), std::memory_order_relaxed);
  }

  void grant_waiting() {
    std::vector<std::pair<std::uint64_t, open_promise>> granted;
    while (!waiting.empty() && open.size() < max_readers) {
      granted.push_back(std::move(waiting.front()));
      waiting.pop_front();
      open.insert(granted.back().first);
    }
    if (granted.empty())
      return;
    publish(); // before the grants: a granted reader sees itself counted
    for (auto& [id, rp] : granted)
      rp.deliver(id);
  }

  void check_zero() {
    if (!open.empty())
      return;
    for (auto& rp : zero_waiters)
      rp.deliver(std::uint64_t{0});
    zero_waiters.clear();
  }

  void refuse_waiting(const caf::error& err) {
    auto refused = std::move(waiting);
    waiting.clear();
    publish();
    for (auto& [id, rp] : refused)
      rp.deliver(err);
  }
};

using monitor_impl = monitor_actor::stateful_pointer<monitor_state>;

monitor_actor::behavior_type
monitor_fun(monitor_impl self, std::size_t max_readers,
            std::shared_ptr<detail::stream_counters> counters) {
  self->state.max_readers = max_readers == 0 ? 1 : max_readers;
  self->state.counters = std::move(counters);
  return {
    [self](open_atom, std::uint64_t id) -> caf::result<std::uint64_t> {
      auto& st = self->state;
      if (st.refusal)
        return st.refusal;
      if (st.open.count(id) != 0)
        return id;
      if (st.open.size() < st.max_readers && st.waiting.empty()) {
        st.open.insert(id);
        st.publish();
        return id;
      }
      auto rp = self->make_response_promise<std::uint64_t>();
      st.waiting.emplace_back(id, rp);
      st.publish();
      return rp;
    },
    [self](close_atom, std::uint64_t id) {
      auto& st = self->state;
      if (st.open.erase(id) > 0) {
        st.grant_waiting(); // publishes before it grants
        st.publish();
        st.check_zero();
        return;
      }
      for (auto i = st.waiting.begin(); i != st.waiting.end(); ++i) {
        if (i->first == id) {
          auto rp = std::move(i->second);
          st.waiting.erase(i);
          st.publish();
          rp.deliver(make_error(errc::timeout, "open withdrawn"));
          return;
        }
      }
    },
    [self](wait_zero_atom) -> caf::result<std::uint64_t> {
      auto& st = self->state;
      if (st.open.empty())
        return std::uint64_t{0};
      auto rp = self->make_response_promise<std::uint64_t>();
      st.zero_waiters.push_back(rp);
      return rp;
    },
    [self](refuse_atom, caf::error& err) {
      auto& st = self->state;
      if (!st.refusal)
        st.refusal = std::move(err);
      st.refuse_waiting(st.refusal);
    },
    [self](count_atom) -> caf::result<std::uint64_t, std::uint64_t> {
      auto& st = self->state;
      return {static_cast<std::uint64_t>(st.open.size()),
              static_cast<std::uint64_t>(st.waiting.size())};
    },
    [self](shutdown_atom) {
      auto& st = self->state;
      st.refuse_waiting(make_error(errc::stream_gone));
      st.open.clear();
      st.publish();
      st.check_zero();
      self->quit();
    },
  };
}

} // namespace

monitor_actor
spawn_readers_monitor(caf::actor_system& sys, std::size_t max_readers,
                      std::shared_ptr<detail::stream_counters> counters) {
  return sys.spawn(monitor_fun, max_readers, std::move(counters));
}

} // namespace asyncstream
