// transfer_send: how a producer (a stream_writer, the source reader) hands
// its messages to the transfer actor.
//
// Contract: with the transfer actor on a thread of its own, `inbox` is its
// inbox and the message goes through `send_or_run` (detail/own_thread.hpp):
// when the actor is idle the producer's thread runs it, which saves the
// wake-up of the actor's thread. It does so only on a lightly used stream
// (`run_inline_here`: at most `max_inline_readers` readers open, at most
// `max_inline_parked` requests parked, read from `counters`): each parked
// reader a message answers costs the runner a wake-up call, and with many
// readers the actor's own thread, taking their requests in batches while
// they and the producer go on, is faster (measured: docs/benchmarks.md,
// "Wake-up latency"). Otherwise (`inbox` null: the actor runs on CAF's
// scheduler) it is a plain `caf::anon_send`. Blocking readers make the same
// choice for their requests (blocking_reader.cpp). Either way the messages
// of one producer arrive in the order it sent them. The caller must hold no
// lock that the transfer actor's handlers take (they take the source
// control's and the stream counters', never a writer's).
#pragma once

#include <utility>

#include <caf/make_message.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/transfer_actor.hpp"

namespace asyncstream::detail {

/// Open readers up to which a sender runs the transfer actor itself.
constexpr std::uint64_t max_inline_readers = 2;

/// Parked requests up to which a sender runs the transfer actor itself.
constexpr std::uint64_t max_inline_parked = 1;

/// Whether a sender to the transfer actor may run it on its own thread
/// (when it is idle), judging by the stream's counters (may be null).
inline bool run_inline_here(const stream_counters* counters) {
  return !counters
         || (counters->readers.load(std::memory_order_relaxed)
               <= max_inline_readers
             && counters->parked.load(std::memory_order_relaxed)
                  <= max_inline_parked);
}

template <class T>
void send_to_transfer(const transfer_actor& hdl, own_thread_inbox* inbox,
                      const stream_counters* counters, T&& msg) {
  if (inbox && run_inline_here(counters))
    send_or_run(*inbox, caf::make_message(std::forward<T>(msg)));
  else
    caf::anon_send(hdl, std::forward<T>(msg));
}

/// Hands `s` to the transfer actor like `send_to_transfer(next_slice{s})`,
/// except that when this thread may run the actor and it is idle, the slice
/// goes straight into its state through `direct` (no message, no CAF
/// activation: the publication a writer makes is one call), holding the
/// actor's token. `direct` may be null.
inline void publish_to_transfer(const transfer_actor& hdl,
                                own_thread_inbox* inbox,
                                transfer_direct* direct,
                                const stream_counters* counters, slice s) {
  if (inbox && direct && run_inline_here(counters) && try_enter(*inbox)) {
    struct leaver {
      own_thread_inbox* x;
      ~leaver() {
        leave(*x); // also when append_slice throws (no memory)
      }
    } guard{inbox};
    direct->append_slice(std::move(s));
    return;
  }
  send_to_transfer(hdl, inbox, counters, next_slice{std::move(s)});
}

} // namespace asyncstream::detail
