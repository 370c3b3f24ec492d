// blocking_client: request/response between a plain thread and actors without
// a scoped_actor.
//
// Contract:
// - Owns an `actor_companion` whose enqueue hook hands each arriving message
//   straight to the waiting thread (no scheduler hop, no mailbox polling).
// - One thread at a time may `send` and `await` on one client; stale answers
//   (of requests whose wait timed out) are dropped by request id. Any thread
//   may `interrupt` it.
// - The waiting thread sleeps on a condition variable; the hook notifies it
//   only when it sleeps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>

#include "asyncstream/error.hpp"

namespace asyncstream::detail {

class own_thread_inbox;

class blocking_client {
public:
  using clock = std::chrono::steady_clock;

  explicit blocking_client(caf::actor_system& sys);
  ~blocking_client();

  blocking_client(const blocking_client&) = delete;
  blocking_client& operator=(const blocking_client&) = delete;

  /// Sends `msg` to `dest` as a request and returns the request id. If
  /// `via` is the inbox of `dest` (an actor on its own thread), the request
  /// goes through `send_or_run` (detail/own_thread.hpp): when that actor is
  /// idle this thread runs it, and the answer is in this client's inbox
  /// when `send` returns.
  caf::message_id send(const caf::strong_actor_ptr& dest, caf::message msg,
                       own_thread_inbox* via = nullptr);

  /// Waits for the answer to `id` until `deadline` (forever if none).
  /// An error answer is returned as the error; running out of time as
  /// `errc::timeout`.
  caf::expected<caf::message> await(caf::message_id id,
                                    std::optional<clock::time_point> deadline);

  /// Wakes the current and every later `await` with `err` (any thread).
  /// Used by `close()`: a request that raced with the close may never be
  /// answered, so the waiter must not depend on that answer.
  void interrupt(caf::error err);

  /// Sends a request and waits for an answer of type `T`.
  template <class T, class Handle, class... Ts>
  caf::expected<T> call(const Handle& dest,
                        std::optional<clock::time_point> deadline, Ts&&... xs) {
    return call_via<T>(dest, nullptr, deadline, std::forward<Ts>(xs)...);
  }

  /// Like `call`, through the inbox `via` of `dest` (see `send`).
  template <class T, class Handle, class... Ts>
  caf::expected<T> call_via(const Handle& dest, own_thread_inbox* via,
                            std::optional<clock::time_point> deadline,
                            Ts&&... xs) {
    auto id = send(caf::actor_cast<caf::strong_actor_ptr>(dest),
                   caf::make_message(std::forward<Ts>(xs)...), via);
    auto res = await(id, deadline);
    if (!res)
      return std::move(res.error());
    if (res->size() >= 1 && res->template match_element<T>(0))
      return std::move(res->template get_mutable_as<T>(0));
    return make_error(errc::stream_gone, "unexpected answer");
  }

private:
  struct shared_state;
  std::shared_ptr<shared_state> state_;
  caf::actor companion_;
};

} // namespace asyncstream::detail
