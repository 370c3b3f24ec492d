// stream_writer: the producer's handle of a pushed stream.
//
// Contract:
// - Made with `stream::make(sys, source::push(), opts)`; `stream::writer()`
//   hands out the one writer of such a stream (a second call fails).
// - `write(data, n)` copies the bytes into the tail of a pooled chunk and
//   publishes them at once (one `next_slice` to the transfer actor per chunk
//   touched); `write(slice)` and `write(shared buffer)` hand bytes over
//   without copying. Chunks grow from 4-16 KiB to `chunk_size`
//   (detail/chunk_sizer.hpp), so a small stream holds a few KiB. Readers may be opened at any time, also after close,
//   and each sees the whole stream.
// - Thread-safe: one mutex orders the writes of several threads; the bytes
//   of one call stay contiguous in the stream.
// - With a tethered retention window a write blocks while the stream holds
//   a window's worth past the slowest reader (it holds the mutex meanwhile;
//   `abort()` on the stream releases it with `canceled`).
// - `close()` ends the stream after the bytes written; `close_with_error`
//   fails it there (readers see the error at that byte). Writing after
//   either fails with `errc::closed`; so does writing after `abort()` or
//   after a capacity or declared length ended the stream. A writer destroyed
//   without a close fails the stream with `unexpected_end`, so a cut-off
//   stream never looks complete.
// - File-backed streams: each write goes to the stream file (pwrite(2), in
//   the calling thread) before it is published. If the file refuses bytes
//   (a full disk), that write and every later call fail with `io_error` and
//   readers see the same error at the first byte that did not reach it.
// - Out of memory for a chunk, a write returns `resource_exhausted` (it
//   never throws `std::bad_alloc`); the stream fails with that error after
//   the bytes published so far, and every later call returns it too.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <caf/error.hpp>

#include "asyncstream/slice.hpp"

namespace asyncstream {

namespace detail {
struct stream_core;
} // namespace detail

class stream_writer {
public:
  stream_writer(stream_writer&&) noexcept;
  stream_writer& operator=(stream_writer&&) noexcept;
  ~stream_writer();

  /// Copies `n` bytes at `data` to the end of the stream.
  caf::error write(const void* data, std::size_t n);

  /// Appends the bytes of `s` without copying them.
  caf::error write(slice s);

  /// Appends a shared buffer without copying it.
  caf::error write(std::shared_ptr<const std::string> bytes);

  /// Ends the stream after the bytes written so far. Idempotent.
  caf::error close();

  /// Fails the stream with `err` after the bytes written so far.
  caf::error close_with_error(caf::error err);

  /// Returns how many bytes were written.
  std::uint64_t written() const noexcept;

  /// @private
  struct impl;

  /// @private
  explicit stream_writer(std::unique_ptr<impl> ptr) noexcept;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace asyncstream
