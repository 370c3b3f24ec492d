#include "asyncstream/readers_monitor_actor.hpp"

#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <caf/system_messages.hpp>
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
  /// Told `cancel_atom, id` when an owner's reader is closed for it.
  transfer_actor transfer;
  /// The owner actor of each open or waiting reader that has one, and the
  /// readers of each owner (each owner is monitored once, while it has any).
  std::unordered_map<std::uint64_t, caf::actor_addr> owner_of;
  std::unordered_map<caf::actor_addr, std::unordered_set<std::uint64_t>>
    readers_of;
  /// The actor itself (to stop watching an owner).
  caf::local_actor* self = nullptr;

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
    for (auto& [id, rp] : refused) {
      forget_owner(id);
      rp.deliver(err);
    }
  }

  /// Drops `id` from its owner's readers, and stops watching an owner
  /// without readers.
  void forget_owner(std::uint64_t id) {
    auto i = owner_of.find(id);
    if (i == owner_of.end())
      return;
    auto owner = std::move(i->second);
    owner_of.erase(i);
    auto j = readers_of.find(owner);
    if (j == readers_of.end())
      return;
    j->second.erase(id);
    if (j->second.empty()) {
      readers_of.erase(j);
      if (self != nullptr)
        self->demonitor(owner);
    }
  }

  /// Closes reader `id` (open or waiting), as its `close_atom` would;
  /// `why` answers a waiting open. Returns whether it was open.
  bool close_reader(std::uint64_t id, const caf::error& why) {
    if (open.erase(id) > 0)
      return true;
    for (auto i = waiting.begin(); i != waiting.end(); ++i) {
      if (i->first == id) {
        auto rp = std::move(i->second);
        waiting.erase(i);
        publish();
        rp.deliver(why);
        return false;
      }
    }
    return false;
  }

  /// Frees the slots of readers that were open, then grants and publishes.
  void after_close() {
    grant_waiting(); // publishes before it grants
    publish();
    check_zero();
  }
};

/// The monitor's actor class. Not a `caf::stateful_actor`: that one destroys
/// its state only in `on_exit`, which CAF skips for an actor still queued
/// when the scheduler stops (a stream destroyed just before its system), and
/// the state (with its strong handle on the transfer actor) then leaked. A
/// member is destroyed with the actor in every case.
class monitor_impl_actor : public monitor_actor::base {
public:
  monitor_impl_actor(caf::actor_config& cfg, std::size_t max_readers,
                     std::shared_ptr<detail::stream_counters> counters,
                     transfer_actor transfer);

  behavior_type make_behavior() override;

  const char* name() const override {
    return monitor_state::name;
  }

  /// Releases the state as soon as the actor quits.
  void on_exit() override {
    state = monitor_state{};
  }

  monitor_state state;
};

using monitor_impl = monitor_impl_actor*;

/// Grants (or parks) the open of reader `id`, owned by `owner` if valid.
caf::result<std::uint64_t> open_reader(monitor_impl self, std::uint64_t id,
                                       const caf::actor_addr& owner) {
  auto& st = self->state;
  if (st.refusal)
    return st.refusal;
  if (st.open.count(id) != 0)
    return id;
  // One waiting entry per id: a second entry would outlive the reader's
  // close (which drops one) and take a slot nobody holds.
  for (auto& entry : st.waiting)
    if (entry.first == id)
      return make_error(errc::invalid_argument,
                        "reader " + std::to_string(id)
                          + " already waits for a slot");
  if (owner && owner != self->address() && st.owner_of.count(id) == 0) {
    auto& readers = st.readers_of[owner];
    if (readers.empty()) {
      // Monitoring a terminated actor sends the down message at once; one
      // that is gone altogether (no strong reference left) cannot be.
      auto strong = caf::actor_cast<caf::strong_actor_ptr>(owner);
      if (!strong) {
        st.readers_of.erase(owner);
        return make_error(errc::closed, "the reader's owner terminated");
      }
      self->monitor(strong);
    }
    readers.insert(id);
    st.owner_of.emplace(id, owner);
  }
  if (st.open.size() < st.max_readers && st.waiting.empty()) {
    st.open.insert(id);
    st.publish();
    return id;
  }
  auto rp = self->make_response_promise<std::uint64_t>();
  st.waiting.emplace_back(id, rp);
  st.publish();
  return rp;
}

monitor_impl_actor::monitor_impl_actor(
  caf::actor_config& cfg, std::size_t max_readers,
  std::shared_ptr<detail::stream_counters> counters, transfer_actor transfer)
  : monitor_actor::base(cfg) {
  state.max_readers = max_readers == 0 ? 1 : max_readers;
  state.counters = std::move(counters);
  state.transfer = std::move(transfer);
  state.self = this;
}

monitor_actor::behavior_type monitor_impl_actor::make_behavior() {
  auto self = this;
  // An owner terminated (quit, killed, threw): close each of its readers.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.readers_of.find(dm.source);
    if (i == st.readers_of.end())
      return;
    auto ids = std::move(i->second);
    st.readers_of.erase(i);
    auto why = make_error(errc::closed, "the reader's owner terminated");
    bool freed = false;
    for (auto id : ids) {
      st.owner_of.erase(id);
      if (st.close_reader(id, why)) {
        freed = true;
        if (st.transfer)
          self->send(st.transfer, cancel_atom::value, id);
      }
    }
    if (freed)
      st.after_close();
  });
  return {
    [self](open_atom, std::uint64_t id) -> caf::result<std::uint64_t> {
      return open_reader(self, id, caf::actor_addr{});
    },
    [self](open_atom, std::uint64_t id,
           const caf::actor_addr& owner) -> caf::result<std::uint64_t> {
      return open_reader(self, id, owner);
    },
    [self](close_atom, std::uint64_t id) {
      auto& st = self->state;
      st.forget_owner(id);
      if (st.close_reader(id, make_error(errc::timeout, "open withdrawn")))
        st.after_close();
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
                      std::shared_ptr<detail::stream_counters> counters,
                      transfer_actor transfer) {
  // Hidden: `~actor_system()` does not wait for it; a stream that outlives
  // its system is shut down by the system watch (stream.cpp).
  return sys.spawn<monitor_impl_actor, caf::hidden>(
    max_readers, std::move(counters), std::move(transfer));
}

} // namespace asyncstream
