#include "asyncstream/detail/blocking_client.hpp"

#include <atomic>
#include <thread>

#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/mailbox_element.hpp>

namespace asyncstream::detail {

namespace {

/// Spin iterations before sleeping (a few microseconds).
constexpr int spin_rounds = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

} // namespace

struct blocking_client::shared_state {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::pair<caf::message_id, caf::message>> inbox;
  std::atomic<std::uint64_t> arrivals{0};
  bool sleeping = false;
  caf::error interrupted;

  void push(caf::mailbox_element_ptr ptr) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      inbox.emplace_back(ptr->mid, ptr->move_content_to_message());
      arrivals.fetch_add(1, std::memory_order_release);
      if (!sleeping)
        return;
    }
    cv.notify_one();
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
    st.arrivals.fetch_add(1, std::memory_order_release);
  }
  st.cv.notify_all();
}

caf::message_id blocking_client::send(const caf::strong_actor_ptr& dest,
                                      caf::message msg) {
  auto* self = caf::actor_cast<caf::actor_companion*>(companion_);
  auto id = self->new_request_id(caf::message_priority::normal);
  if (dest)
    dest->enqueue(caf::make_mailbox_element(
                    caf::actor_cast<caf::strong_actor_ptr>(companion_), id, {},
                    std::move(msg)),
                  nullptr);
  return id;
}

caf::expected<caf::message>
blocking_client::await(caf::message_id id,
                       std::optional<clock::time_point> deadline) {
  auto want = id.response_id();
  auto& st = *state_;
  auto seen = st.arrivals.load(std::memory_order_acquire);
  for (;;) {
    {
      std::unique_lock<std::mutex> guard{st.mtx};
      if (st.interrupted)
        return st.interrupted;
      while (!st.inbox.empty()) {
        auto [mid, msg] = std::move(st.inbox.front());
        st.inbox.pop_front();
        if (mid != want)
          continue; // a late answer to an abandoned request
        if (msg.size() == 1 && msg.match_element<caf::error>(0))
          return std::move(msg.get_mutable_as<caf::error>(0));
        return msg;
      }
      seen = st.arrivals.load(std::memory_order_acquire);
    }
    // Spin a little: the answer is often only microseconds away.
    for (int i = 0; i < spin_rounds; ++i) {
      if (st.arrivals.load(std::memory_order_acquire) != seen)
        break;
      cpu_relax();
    }
    std::unique_lock<std::mutex> guard{st.mtx};
    if (!st.inbox.empty() || st.interrupted)
      continue;
    st.sleeping = true;
    auto ready = [&] { return !st.inbox.empty() || bool{st.interrupted}; };
    if (deadline) {
      if (!st.cv.wait_until(guard, *deadline, ready)) {
        st.sleeping = false;
        return make_error(errc::timeout);
      }
    } else {
      st.cv.wait(guard, ready);
    }
    st.sleeping = false;
  }
}

} // namespace asyncstream::detail
