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

namespace asyncstream::detail {

namespace {

/// Answers `x` with `request_receiver_down` if it is a request.
void bounce(const caf::mailbox_element& x) {
  caf::detail::sync_request_bouncer f{
    caf::make_error(caf::sec::request_receiver_down)};
  f(x);
}

/// The inbox between the companion's enqueue hook and the hosting thread.
struct host_state {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<caf::mailbox_element_ptr> inbox;
  /// The hosting thread waits on `cv`.
  bool sleeping = false;
  /// The actor is gone: the hook bounces requests instead of queueing.
  bool done = false;

  void push(caf::mailbox_element_ptr x) {
    if (!x)
      return;
    std::unique_lock<std::mutex> guard{mtx};
    if (done) {
      guard.unlock();
      bounce(*x);
      return;
    }
    inbox.push_back(std::move(x));
    if (!sleeping)
      return;
    guard.unlock();
    cv.notify_one();
  }

  /// Moves what arrived into `batch`, waiting while there is nothing.
  void take(std::vector<caf::mailbox_element_ptr>& batch) {
    std::unique_lock<std::mutex> guard{mtx};
    while (inbox.empty()) {
      sleeping = true;
      cv.wait(guard);
      sleeping = false;
    }
    batch.swap(inbox);
  }

  /// Stops queueing; returns what was still queued.
  void close(std::vector<caf::mailbox_element_ptr>& rest) {
    std::lock_guard<std::mutex> guard{mtx};
    done = true;
    rest.swap(inbox);
  }
};

/// The body of the hosting thread.
void host_main(caf::actor_system& sys, caf::actor hdl,
               std::shared_ptr<host_state> hs,
               std::function<caf::behavior(caf::actor_companion*)> init) {
  auto* self = caf::actor_cast<caf::actor_companion*>(hdl);
  caf::scoped_execution_unit ctx{&sys};
  bool alive = true;
  try {
    self->become(init(self));
  } catch (...) {
    alive = false;
  }
  init = nullptr;
  std::vector<caf::mailbox_element_ptr> batch;
  bool init_failed = !alive;
  while (alive) {
    hs->take(batch);
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
                    std::function<caf::behavior(caf::actor_companion*)> init) {
  auto hs = std::make_shared<host_state>();
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
  return hdl;
}

} // namespace asyncstream::detail
