#include "asyncstream/detail/own_thread.hpp"

#include <pthread.h>

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/detail/sync_request_bouncer.hpp>
#include <caf/exit_reason.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/scoped_execution_unit.hpp>
#include <caf/sec.hpp>
#include <caf/spawn_options.hpp>

#include "asyncstream/detail/exhaustion.hpp"
#include "asyncstream/detail/wake_trace.hpp"

namespace asyncstream::detail {

namespace {

/// Answers `x` with `request_receiver_down` if it is a request.
void bounce(const caf::mailbox_element& x) {
  caf::detail::sync_request_bouncer f{
    caf::make_error(caf::sec::request_receiver_down)};
  f(x);
}

} // namespace

/// The inbox between the senders and the hosting thread, and the token that
/// lets one thread at a time run the actor: the hosting thread, or a sender
/// that found it asleep with nothing queued (`send_or_run`).
class own_thread_inbox : public std::enable_shared_from_this<own_thread_inbox> {
public:
  explicit own_thread_inbox(caf::actor_system& sys) : ctx_(&sys) {
    // The hosting thread holds the token until `init` ran.
  }

  /// From the companion's hook (a plain send): queues `x`, waking the
  /// hosting thread if it sleeps.
  void push(caf::mailbox_element_ptr x) {
    if (!x)
      return;
    std::unique_lock<std::mutex> guard{mtx_};
    if (done_) {
      guard.unlock();
      bounce(*x);
      return;
    }
    inbox_.push_back(std::move(x));
    if (running_ || !sleeping_) {
      ASYNCSTREAM_WAKE_MARK(queued);
      return; // whoever runs the actor takes it next
    }
    guard.unlock();
    cv_.notify_one();
    ASYNCSTREAM_WAKE_MARK(queued);
  }

  /// From `send_or_run`: runs `x` on the calling thread when the actor is
  /// idle (its thread asleep, nothing queued), else queues it like `push`.
  void push_or_run(caf::mailbox_element_ptr x) {
    if (!x)
      return;
    if (running_here) { // never nest: this thread runs an actor already
      push(std::move(x));
      return;
    }
    std::unique_lock<std::mutex> guard{mtx_};
    if (done_ || running_ || !sleeping_ || !inbox_.empty()) {
      guard.unlock();
      push(std::move(x));
      return;
    }
    running_ = true;
    guard.unlock();
    ASYNCSTREAM_WAKE_MARK(queued);
    run_here(std::move(x));
  }

  /// See `try_enter`.
  bool enter() {
    if (running_here)
      return false;
    std::lock_guard<std::mutex> guard{mtx_};
    if (done_ || running_ || !sleeping_ || !inbox_.empty())
      return false;
    running_ = true;
    running_here = true;
    return true;
  }

  /// See `leave`.
  void exit() {
    running_here = false;
    std::unique_lock<std::mutex> guard{mtx_};
    running_ = false;
    bool wake = !inbox_.empty() && sleeping_;
    guard.unlock();
    if (wake)
      cv_.notify_one();
  }

  /// The hosting thread: gives the token back (after `init` or a batch),
  /// then waits until something is queued and no sender runs the actor, and
  /// moves it into `batch` with the token. Returns false once a sender's
  /// run ended the actor.
  bool take(std::vector<caf::mailbox_element_ptr>& batch) {
    std::unique_lock<std::mutex> guard{mtx_};
    running_ = false;
    while (!ended_here_ && (inbox_.empty() || running_)) {
      sleeping_ = true;
      cv_.wait(guard);
      sleeping_ = false;
    }
    if (ended_here_)
      return false;
    running_ = true;
    batch.swap(inbox_);
    return true;
  }

  /// Stops queueing; returns what was still queued.
  void close(std::vector<caf::mailbox_element_ptr>& rest) {
    std::lock_guard<std::mutex> guard{mtx_};
    done_ = true;
    rest.swap(inbox_);
  }

  /// Set by the hosting thread once `init` ran (before its first `take`).
  caf::actor_companion* self = nullptr;

  /// The calling thread runs an actor of an own_thread_inbox (a hosting
  /// thread, or a sender in `run_here`).
  static thread_local bool running_here;

private:
  /// Runs `x` (only: what others sent meanwhile is the hosting thread's
  /// work, not this sender's), then gives the token back, waking the
  /// hosting thread if more is queued or the actor ended. Called holding
  /// the token.
  void run_here(caf::mailbox_element_ptr x) {
    running_here = true;
    // Once the actor ends here, the hosting thread may leave and drop its
    // handle before this run is over: hold one until then.
    caf::strong_actor_ptr keep{self->ctrl()};
    bool alive = self->activate(&ctx_, *x)
                 != caf::scheduled_actor::activation_result::terminated;
    x.reset();
    std::vector<caf::mailbox_element_ptr> rest;
    std::unique_lock<std::mutex> guard{mtx_};
    running_ = false;
    if (!alive) {
      // Ended here: stop queueing at once and answer what waits (the
      // hosting thread then only leaves).
      ended_here_ = true;
      done_ = true;
      rest.swap(inbox_);
    }
    bool wake = (!alive || !inbox_.empty()) && sleeping_;
    guard.unlock();
    if (wake)
      cv_.notify_one();
    if (!alive) {
      for (auto& y : rest)
        bounce(*y);
      // The companion dropped the hook when it exited: put it back, so that
      // requests sent from now on are answered (`done_` bounces them).
      self->on_enqueue([hs = shared_from_this()](caf::mailbox_element_ptr y) {
        hs->push(std::move(y));
      });
    }
    running_here = false;
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<caf::mailbox_element_ptr> inbox_;
  /// Someone holds the token: the hosting thread or a sender.
  bool running_ = true;
  /// The hosting thread waits on `cv_`.
  bool sleeping_ = false;
  /// The actor is gone: the hook bounces requests instead of queueing.
  bool done_ = false;
  /// A sender's run ended the actor: the hosting thread stops.
  bool ended_here_ = false;
  /// For the activations of senders (the hosting thread has its own).
  caf::scoped_execution_unit ctx_;
};

thread_local bool own_thread_inbox::running_here = false;

namespace {

/// The body of the hosting thread.
void host_main(caf::actor_system& sys, caf::actor hdl,
               std::shared_ptr<own_thread_inbox> hs,
               std::function<caf::behavior(caf::actor_companion*)> init) {
  auto* self = caf::actor_cast<caf::actor_companion*>(hdl);
  own_thread_inbox::running_here = true;
  caf::scoped_execution_unit ctx{&sys};
  bool alive = true;
  try {
    self->become(init(self));
  } catch (...) {
    alive = false;
  }
  init = nullptr;
  hs->self = self;
  std::vector<caf::mailbox_element_ptr> batch;
  bool init_failed = !alive;
  while (alive) {
    if (!hs->take(batch))
      break; // a sender's run ended the actor
    ASYNCSTREAM_WAKE_MARK(host_woke);
    for (auto& x : batch) {
      if (!alive) {
        bounce(*x);
        continue;
      }
      if (self->activate(&ctx, *x)
          == caf::scheduled_actor::activation_result::terminated)
        alive = false;
    }
    batch.clear();
  }
  // From here on the hook answers requests itself (the companion dropped
  // the hook when it exited: put it back).
  hs->close(batch);
  for (auto& x : batch)
    bounce(*x);
  batch.clear();
  if (init_failed) {
    // `init` failed: the companion never ran; end it.
    self->on_enqueue(nullptr);
    self->cleanup(caf::make_error(caf::exit_reason::unhandled_exception), &ctx);
  }
  self->on_enqueue(
    [hs](caf::mailbox_element_ptr x) { hs->push(std::move(x)); });
}

/// Thread creations to let through, then to fail (fail_thread_creation).
std::mutex fault_mtx;
int fault_skip = 0;
int fault_count = 0;

/// Throws like std::thread when a test asked for a failure here.
void injected_fault() {
  std::lock_guard<std::mutex> guard{fault_mtx};
  if (fault_count == 0)
    return;
  if (fault_skip > 0) {
    --fault_skip;
    return;
  }
  --fault_count;
  throw std::system_error{
    std::make_error_code(std::errc::resource_unavailable_try_again),
    "injected"};
}

} // namespace

void fail_thread_creation(int skip, int count) noexcept {
  std::lock_guard<std::mutex> guard{fault_mtx};
  fault_skip = skip;
  fault_count = count;
}

caf::error start_thread(caf::actor_system& sys, const char* name,
                        std::function<void()> fn) {
  sys.inc_detached_threads();
  try {
    injected_fault();
    std::thread{[&sys, name, fn = std::move(fn)]() mutable {
      pthread_setname_np(pthread_self(), name);
      sys.thread_started();
      fn();
      fn = nullptr; // release what it holds before ~actor_system() goes on
      sys.thread_terminates();
      sys.dec_detached_threads();
    }}.detach();
  } catch (...) {
    sys.dec_detached_threads();
    return exhaustion_from(std::string{"thread "} + name,
                           std::current_exception());
  }
  return {};
}

caf::expected<caf::actor>
spawn_on_own_thread(caf::actor_system& sys, const char* name,
                    std::function<caf::behavior(caf::actor_companion*)> init,
                    std::shared_ptr<own_thread_inbox>* inbox) {
  auto hs = std::make_shared<own_thread_inbox>(sys);
  // Hidden: `~actor_system()` does not wait for it (a stream that outlives
  // its system is shut down by the system watch, see stream.cpp); its
  // thread is counted and waited for like a detached actor's.
  auto hdl = sys.spawn<caf::actor_companion, caf::hidden>();
  auto* self = caf::actor_cast<caf::actor_companion*>(hdl);
  auto discard = [&] {
    // What actor_companion::disconnect does (not exported by Debian's
    // libcaf_core 0.17.6): drop the hook, then terminate.
    self->on_enqueue(nullptr);
    self->cleanup(caf::make_error(caf::exit_reason::normal), nullptr);
  };
  caf::error err;
  try {
    self->on_enqueue(
      [hs](caf::mailbox_element_ptr x) { hs->push(std::move(x)); });
    err = start_thread(
      sys, name, [&sys, hdl, hs, init = std::move(init)]() mutable {
        host_main(sys, std::move(hdl), std::move(hs), std::move(init));
      });
  } catch (...) {
    discard();
    throw;
  }
  if (err) {
    discard();
    return err;
  }
  if (inbox)
    *inbox = std::move(hs);
  return hdl;
}

void send_or_run(own_thread_inbox& inbox, caf::message msg) {
  inbox.push_or_run(caf::make_mailbox_element(nullptr, caf::make_message_id(),
                                              {}, std::move(msg)));
}

void send_or_run(own_thread_inbox& inbox, caf::mailbox_element_ptr x) {
  inbox.push_or_run(std::move(x));
}

bool try_enter(own_thread_inbox& inbox) {
  return inbox.enter();
}

void leave(own_thread_inbox& inbox) {
  inbox.exit();
}

} // namespace asyncstream::detail
