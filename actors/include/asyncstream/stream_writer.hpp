// stream_writer: the producer's handle of a pushed stream.
//
// Contract:
// - Made with `stream::make(sys, source::push(), opts)`; `stream::writer()`
//   hands out the one writer of such a stream (a second call fails).
// - `write(data, n)` copies the bytes into the tail of a pooled chunk and
//   publishes them at once (one `next_slice` to the transfer actor per chunk
//   touched); `write(slice)` and `write(shared buffer)` hand bytes over
//   without copying. Chunks grow from 4-16 KiB to `chunk_size`
//   (detail/chunk_sizer.hpp), so a small stream holds a few KiB. Readers
//   may be opened at any time, also after close, and each sees the whole
//   stream.
// - Thread-safe: one mutex orders the writes of several threads; the bytes
//   of one call stay contiguous in the stream.
// - With a tethered retention window a write blocks while the stream holds
//   a window's worth past the slowest reader (it holds the mutex meanwhile;
//   `abort()` on the stream releases it with `canceled`, and a reader that
//   lags more than `stream_options::max_lag` is cut loose).
// - Limits are exact: no byte past the capacity or the declared length is
//   accepted. A write that crosses the limit writes the bytes up to it and
//   returns the limit's error: `buffer_full` at a capacity (the stream
//   fails there with `buffer_full`), `closed` at a declared length (the
//   stream is complete there). A write that ends exactly at the declared
//   length completes the stream; one that ends exactly at the capacity does
//   not (`close()` then ends it cleanly). `written()` never exceeds the
//   limit.
// - Every call answers deterministically, from the writer's own state and
//   the stream's state when the call begins, whatever the timing of the
//   stream's actors. Once the writer takes no more bytes, every `write` and
//   `close_with_error` returns the same refusal:
//   - after `close()` or `close_with_error()`: `closed`;
//   - after a declared length or a capacity was reached: `closed` (only the
//     write that crossed a capacity returned `buffer_full`);
//   - after `stream::abort()`: `canceled` (the stream's own error, which
//     every reader gets too: a producer can tell an abort from a close);
//   - after the stream's owner closed it (`stream::close()`, `shutdown()`,
//     `remove()`) before the writer did: `closed`;
//   - after the stream file refused bytes (full disk) or no memory was left
//     for a chunk: that error (`io_error`, `resource_exhausted`);
//   - after the stream's actor system went: `stream_gone`.
// - `close()` ends the stream after the bytes written and returns none;
//   `close_with_error(err)` fails it there (readers see `err` at that byte)
//   and returns none. `close()` called again, or after the writer stopped
//   taking bytes, changes nothing and returns how the stream ended where
//   the writer left it: none when it ended cleanly (a close, the declared
//   length), else its error (`buffer_full`, `canceled`, the file or memory
//   error, the error given to `close_with_error`, `closed` when the
//   stream's owner closed it).
// - A writer destroyed (or assigned over) without a close fails the stream
//   with `unexpected_end`, so a cut-off stream never looks complete.
// - A moved-from writer answers every call with `invalid_argument`;
//   `written()` is 0.
// - File-backed streams: each write goes to the stream file (pwrite(2), in
//   the calling thread) before it is published. If the file refuses bytes
//   (a full disk), that write and every later call fail with `io_error`
//   ("writing the stream file at offset N: ...") and readers see the same
//   error at the first byte that did not reach it.
// - Out of memory for a chunk, a write returns `resource_exhausted` (it
//   never throws `std::bad_alloc`); the stream fails with that error after
//   the bytes published so far, and every later call returns it too.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

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

  /// Copies `n` bytes at `data` to the end of the stream (at most up to
  /// its limit; see the contract for the answers).
  caf::error write(const void* data, std::size_t n);

  /// Copies the characters of `text` (as `write(text.data(), text.size())`).
  caf::error write(std::string_view text);

  // No `caf::span<const std::byte>` overload: CAF 0.17's span converts from
  // anything with `data()`, which would make `write(std::string)`
  // ambiguous. Pass `data(), size()` for byte buffers.

  /// Appends the bytes of `s` without copying them.
  caf::error write(slice s);

  /// Appends a shared buffer without copying it (null: `invalid_argument`).
  caf::error write(std::shared_ptr<const std::string> bytes);

  /// Ends the stream after the bytes written so far. Idempotent: later
  /// calls return how the stream ended (none when cleanly).
  caf::error close();

  /// Fails the stream with `err` after the bytes written so far; once the
  /// writer takes no more bytes it returns the refusal a write would.
  caf::error close_with_error(caf::error err);

  /// Returns how many bytes the stream took (never more than its limit).
  std::uint64_t written() const noexcept;

  /// @private
  struct impl;

  /// @private
  explicit stream_writer(std::unique_ptr<impl> ptr) noexcept;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace asyncstream
