// reader_peek: what a read at a reader's position would get right now,
// from what the reader holds and what the stream's actors published, without
// a message.
//
// Contract: any thread (the counters are atomics; the final error is read
// under their mutex). Each answer was true at some moment during the call:
// a stream that is still live may end or fail right after it.
#pragma once

#include <cstdint>
#include <mutex>

#include <caf/error.hpp>

#include "asyncstream/detail/read_cursor.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream::detail {

/// What a read at the position would get now.
struct position_peek {
  /// Bytes exist there (held, or published and still kept).
  bool bytes = false;
  /// The stream ended cleanly at or before the position.
  bool at_end = false;
  /// The error a read there gets (empty if none is known).
  caf::error error;
  /// The position is below the oldest kept byte: a read gets `data_loss`
  /// (`error` stays empty: `lost_error` makes it).
  bool lost = false;
  /// The oldest kept byte, as published (0 without a retention window).
  std::uint64_t oldest = 0;
};

/// The `data_loss` a read at `pos` gets below `oldest` (as the transfer
/// actor makes it: `data_loss_range` works on it).
inline caf::error lost_error(std::uint64_t pos, std::uint64_t oldest) {
  return make_data_loss(pos, oldest);
}

/// Fills `out` for a read at `pos` from the counters the stream's actors
/// published (nothing if there are none).
inline void peek_counters(const stream_core& core, std::uint64_t pos,
                          position_peek& out) {
  auto* c = core.counters.get();
  if (c == nullptr)
    return;
  // `final` first: once it is set, the size and the error are final too.
  auto final = c->final.load(std::memory_order_acquire);
  auto size = c->size.load(std::memory_order_relaxed);
  out.oldest = c->oldest.load(std::memory_order_relaxed);
  if (pos < out.oldest) {
    out.lost = true;
    return;
  }
  if (pos < size) {
    out.bytes = true;
    return;
  }
  if (final) {
    std::lock_guard<std::mutex> guard{c->mtx};
    if (c->error)
      out.error = c->error;
    else
      out.at_end = true;
  }
}

/// What a read at `offset` (a positional one: `read_at`) would get now, for
/// a reader that is open.
inline position_peek peek_offset(const stream_core& core,
                                 std::uint64_t offset) {
  position_peek out;
  if (core.aborted.load(std::memory_order_relaxed)) {
    out.error = make_error(errc::canceled);
    return out;
  }
  peek_counters(core, offset, out);
  return out;
}

/// Looks at the reader's own knowledge first, then at the counters.
/// `closed` tells whether the reader was closed; an aborted stream gives
/// `canceled` whatever the position.
inline position_peek peek_position(const stream_core& core,
                                   const read_cursor& cursor, bool closed) {
  position_peek out;
  if (closed) {
    out.error = make_error(errc::closed, "reader closed");
    return out;
  }
  if (core.aborted.load(std::memory_order_relaxed)) {
    out.error = make_error(errc::canceled);
    return out;
  }
  if (cursor.held() > 0) {
    out.bytes = true;
    return out;
  }
  if (auto* err = cursor.error_here()) {
    out.error = *err;
    return out;
  }
  if (cursor.at_end()) {
    out.at_end = true;
    return out;
  }
  peek_counters(core, cursor.position(), out);
  return out;
}

} // namespace asyncstream::detail
