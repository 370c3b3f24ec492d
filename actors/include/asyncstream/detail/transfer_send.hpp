// transfer_send: how a producer (a stream_writer, the source reader) hands
// its messages to the transfer actor.
//
// Contract: with the transfer actor on a thread of its own, `inbox` is its
// inbox and the message goes through `send_or_run` (detail/own_thread.hpp):
// when the actor is idle the producer's thread runs it, which saves the
// wake-up of the actor's thread. Otherwise (`inbox` null: the actor runs on
// CAF's scheduler) it is a plain `caf::anon_send`. Either way the messages
// of one producer arrive in the order it sent them. The caller must hold no
// lock that the transfer actor's handlers take (they take the source
// control's and the stream counters', never a writer's).
#pragma once

#include <utility>

#include <caf/make_message.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/protocol.hpp"

namespace asyncstream::detail {

template <class T>
void send_to_transfer(const transfer_actor& hdl, own_thread_inbox* inbox,
                      T&& msg) {
  if (inbox)
    send_or_run(*inbox, caf::make_message(std::forward<T>(msg)));
  else
    caf::anon_send(hdl, std::forward<T>(msg));
}

} // namespace asyncstream::detail
