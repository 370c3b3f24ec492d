// own_thread: threads of the kernel's own, for the source reader and for a
// transfer actor that runs on a thread of its own.
//
// Why not CAF's `spawn<detached>` (or a blocking actor): in CAF 0.17 it
// registers the actor and raises the system's count of detached threads
// before it creates the thread, and undoes neither when `std::thread`
// throws (out of threads or memory). The caller gets a `std::system_error`
// and `~actor_system()` then waits forever for an actor and a thread that
// never run. Here the thread is created first and everything is undone when
// that fails, so a stream that cannot get a thread is an error, not a hang.
//
// Contract:
// - `start_thread` runs `fn` on a new thread that the actor system counts
//   like a detached actor's (`~actor_system()` waits for it). `fn` and what
//   it captured are destroyed before the count goes down. If no thread can
//   be created it returns `resource_exhausted` and `fn` is destroyed unrun,
//   in the calling thread, before it returns.
// - `spawn_on_own_thread` hosts an event-based behavior on such a thread: an
//   `actor_companion` whose messages go to that thread, which runs them
//   through the companion (`activate`) one by one, sleeping on a condition
//   variable when there are none. `init` runs first, on that thread, and
//   returns the behavior. The actor ends like any other (`quit()`); requests
//   that reach it afterwards are answered with `sec::request_receiver_down`.
// - `send_or_run` (through the `inbox` that `spawn_on_own_thread` hands
//   out) sends like `caf::anon_send`, except that when the hosting thread
//   sleeps with nothing queued, the calling thread runs the message itself
//   (that one only: what others send meanwhile waits for the hosting
//   thread) and gives the actor back. One
//   thread at a time runs the actor, in the order the messages came, as
//   before: the run moves from the hosting thread to the sender, which
//   saves waking the hosting thread (the first hop of a wake-up,
//   docs/benchmarks.md). A thread that runs such an actor already (its
//   hosting thread, or a sender inside a run) only queues: runs never nest.
//   The caller must not hold a lock that the actor's handlers take.
#pragma once

#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>

namespace asyncstream::detail {

/// Runs `fn` on a new thread named `name` (at most 15 characters) that
/// `~actor_system()` waits for. Returns `resource_exhausted` if the thread
/// cannot be created (then `fn` never runs).
caf::error start_thread(caf::actor_system& sys, const char* name,
                        std::function<void()> fn);

/// The queue in front of an actor hosted on its own thread.
class own_thread_inbox;

/// Spawns an actor whose behavior, returned by `init`, runs on a thread of
/// its own named `name`. Returns `resource_exhausted` if the thread cannot
/// be created (then nothing is left registered or running). If `inbox` is
/// given, it receives the actor's inbox for `send_or_run`.
caf::expected<caf::actor>
spawn_on_own_thread(caf::actor_system& sys, const char* name,
                    std::function<caf::behavior(caf::actor_companion*)> init,
                    std::shared_ptr<own_thread_inbox>* inbox = nullptr);

/// Sends `msg` without a sender to the actor of `inbox`; runs it on the
/// calling thread when that actor is idle (see the contract above).
void send_or_run(own_thread_inbox& inbox, caf::message msg);

/// Like `send_or_run` for a mailbox element of the caller's making (a
/// request with its sender and id).
void send_or_run(own_thread_inbox& inbox, caf::mailbox_element_ptr x);

/// Takes the token of the actor of `inbox` when `send_or_run` would run a
/// message here (the actor idle, its thread asleep, nothing queued, no run
/// on this thread already) and returns true: the caller then acts as the
/// actor (calls into its state directly, without a message) until `leave`,
/// which it must call. Returns false, taking nothing, otherwise.
bool try_enter(own_thread_inbox& inbox);

/// Gives back the token taken by `try_enter`, waking the actor's thread if
/// something was queued meanwhile.
void leave(own_thread_inbox& inbox);

/// @private Fault injection for tests: of the next `skip + count` thread
/// creations, the last `count` fail as if the system were out of threads
/// (`std::thread` throws `std::system_error`, EAGAIN). Process-wide.
void fail_thread_creation(int skip, int count) noexcept;

} // namespace asyncstream::detail
