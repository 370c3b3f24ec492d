// blocking_reader: reads a stream from a plain thread.
//
// Contract:
// - Obtained from `stream::open_reader`; holds a reader slot until closed or
//   destroyed, and keeps the stream alive.
// - Use from one thread at a time, except `close()`, which any thread may
//   call at any time: it wakes a read of this reader that waits (with
//   `closed`), frees the slot, and touches no other reader.
// - Reads ask the transfer actor for up to `reader_options::prefetch` bytes
//   and serve later reads from the slices already held, so most reads cost a
//   memcpy and no message. `read_slices` hands out those slices (zero-copy).
// - `read` returns as soon as at least one byte exists at the position
//   (short reads), 0 at the end of the stream, and 0 at once for n == 0.
//   `read_exact` and `read_at` wait for all n bytes, the end, or an error.
// - Errors are delayed to their byte: the bytes before it are returned
//   first, then the error; after `abort()` every read fails with `canceled`.
//   A zero-length read returns 0 at once, or the error pending at the
//   position (what the reader and the stream's published counters know; it
//   sends no message).
// - Ownership: the handle owns its reader (the readers monitor knows no
//   owner actor for it); destroying or moving over the handle closes it.
//   Every call on a default-constructed or moved-from handle returns
//   `invalid_argument`, on a closed reader `closed`; none crashes.
// - Tether (a tethered retention window): the reader holds the producer
//   back at its reading position from the moment it opens; only `read`,
//   `read_exact` and `read_slices` move it (`read_at`, `wait_for`, a
//   zero-length read and the queries never do).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/span.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"

namespace asyncstream {

class blocking_reader {
public:
  /// Creates an invalid handle: every call returns `invalid_argument`.
  blocking_reader() noexcept;

  blocking_reader(blocking_reader&&) noexcept;
  blocking_reader& operator=(blocking_reader&&) noexcept;
  ~blocking_reader();

  /// Reads up to `n` bytes at the position into `buf` (short reads allowed).
  /// Returns 0 at the end of the stream.
  caf::expected<std::size_t> read(void* buf, std::size_t n);

  /// Reads up to `buf.size()` bytes into `buf` (short reads allowed).
  caf::expected<std::size_t> read(caf::span<std::byte> buf);

  /// Reads exactly `n` bytes unless the stream ends or fails first; bytes
  /// before an error are returned first and the error by the next read.
  caf::expected<std::size_t> read_exact(void* buf, std::size_t n);

  /// Reads exactly `buf.size()` bytes unless the stream ends or fails.
  caf::expected<std::size_t> read_exact(caf::span<std::byte> buf);

  /// Reads up to `n` bytes at `offset` (waiting for all of them, the end or
  /// an error) without moving the position or the tether.
  caf::expected<std::size_t> read_at(void* buf, std::size_t n,
                                     std::int64_t offset);

  /// Reads up to `buf.size()` bytes at `offset`; see above.
  caf::expected<std::size_t> read_at(caf::span<std::byte> buf,
                                     std::int64_t offset);

  /// Takes up to `max` bytes at the position as shared slices (zero-copy);
  /// an empty vector means the end of the stream.
  caf::expected<std::vector<slice>> read_slices(std::size_t max);

  /// Takes up to `max` bytes at `offset` as shared slices (zero-copy)
  /// without moving the position or the tether: one positional request,
  /// which waits until at least one byte is there. An empty vector means
  /// the stream ends at `offset`; an error at `offset` is returned as the
  /// error, one further on after the bytes before it.
  caf::expected<std::vector<slice>> read_slices_at(std::uint64_t offset,
                                                   std::size_t max);

  /// Moves the position; `whence::end` waits for the end unless a final
  /// length was declared. Positions are 0 to 2^63 - 1: a target outside
  /// returns `invalid_argument`, whatever the values (no overflow). A failed
  /// seek leaves the position unchanged.
  caf::expected<std::uint64_t> seek(std::int64_t offset, whence from);

  /// After `data_loss`: moves the position up to the oldest byte the stream
  /// still keeps (a no-op at or above it); returns the new position.
  caf::expected<std::uint64_t> skip_to_oldest();

  /// Returns the position (0 for an invalid handle).
  std::uint64_t position() const noexcept;

  /// Waits until the byte at `offset` exists (true), or the stream ended
  /// before it (false); or returns the error that comes first. Does not
  /// move the tether.
  caf::expected<bool> wait_for(std::int64_t offset);

  /// Returns whether a read at the position would return 0 (the end) now.
  /// Never blocks and sends no message.
  bool at_end() const;

  /// Returns the error a read at the position would return now (`closed`,
  /// `canceled`, the stream's error at its byte, `data_loss` below a
  /// retention window), or an empty error. Never blocks, sends no message.
  caf::error pending_error() const;

  /// Closes the reader (any thread, any number of times).
  void close() noexcept;

  /// Returns whether this handle refers to a reader (open or closed).
  bool valid() const noexcept {
    return impl_ != nullptr;
  }

  /// Returns the reader's id (as known to the readers monitor; 0 if
  /// invalid).
  std::uint64_t id() const noexcept;

  /// @private
  struct impl;

  /// @private
  explicit blocking_reader(std::unique_ptr<impl> ptr) noexcept;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace asyncstream
