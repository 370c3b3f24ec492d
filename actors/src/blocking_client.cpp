#include "asyncstream/detail/blocking_client.hpp"
#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/detail/wake_trace.hpp"

#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/mailbox_element.hpp>

namespace asyncstream::detail {

struct blocking_client::shared_state {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::pair<caf::message_id, caf::message>> inbox;
  bool sleeping = false;
  caf::error interrupted;

  void push(caf::mailbox_element_ptr ptr) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      inbox.emplace_back(ptr->mid, ptr->move_content_to_message());
      if (!sleeping) {
        ASYNCSTREAM_WAKE_MARK(reader_queued);
        return;
      }
    }
    cv.notify_one();
    ASYNCSTREAM_WAKE_MARK(reader_queued);
  }
};

blocking_client::blocking_client(caf::actor_system& sys)
  : state_(std::make_shared<shared_state>()) {
  companion_ = sys.spawn<caf::actor_companion>();
  auto* ptr = caf::actor_cast<caf::actor_companion*>(companion_);
  ptr->on_enqueue([st = state_](caf::mailbox_element_ptr x) {
    if (x)
      st->push(std::move(x));
  });
}

blocking_client::~blocking_client() {
  // What actor_companion::disconnect does (that symbol is not exported by
  // Debian's libcaf_core 0.17.6): drop the hook, then terminate.
  auto* ptr = caf::actor_cast<caf::actor_companion*>(companion_);
  ptr->on_enqueue(nullptr);
  ptr->cleanup(caf::make_error(caf::exit_reason::normal), nullptr);
}

void blocking_client::interrupt(caf::error err) {
  auto& st = *state_;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.interrupted = std::move(err);
  }
  st.cv.notify_all();
}

caf::message_id blocking_client::send(const caf::strong_actor_ptr& dest,
                                      caf::message msg, own_thread_inbox* via) {
  auto* self = caf::actor_cast<caf::actor_companion*>(companion_);
  auto id = self->new_request_id(caf::message_priority::normal);
  if (!dest)
    return id;
  auto x = caf::make_mailbox_element(
    caf::actor_cast<caf::strong_actor_ptr>(companion_), id, {}, std::move(msg));
  if (via)
    send_or_run(*via, std::move(x));
  else
    dest->enqueue(std::move(x), nullptr);
  return id;
}

caf::expected<caf::message>
blocking_client::await(caf::message_id id,
                       std::optional<clock::time_point> deadline) {
  // No spinning before the sleep: on 2 cores a spinning reader takes the CPU
  // from the threads that must deliver its answer (measured: spinning
  // lowered both throughput and wake-up latency, docs/benchmarks.md).
  auto want = id.response_id();
  auto& st = *state_;
  std::unique_lock<std::mutex> guard{st.mtx};
  for (;;) {
    if (st.interrupted)
      return st.interrupted;
    while (!st.inbox.empty()) {
      auto [mid, msg] = std::move(st.inbox.front());
      st.inbox.pop_front();
      if (mid != want)
        continue; // a late answer to an abandoned request
      ASYNCSTREAM_WAKE_MARK(reader_woke);
      if (msg.size() == 1 && msg.match_element<caf::error>(0))
        return std::move(msg.get_mutable_as<caf::error>(0));
      return msg;
    }
    st.sleeping = true;
    auto ready = [&] { return !st.inbox.empty() || bool{st.interrupted}; };
    bool woke = true;
    if (deadline)
      woke = st.cv.wait_until(guard, *deadline, ready);
    else
      st.cv.wait(guard, ready);
    st.sleeping = false;
    if (!woke)
      return make_error(errc::timeout);
  }
}

} // namespace asyncstream::detail
