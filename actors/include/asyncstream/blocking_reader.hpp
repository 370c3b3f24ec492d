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
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"

namespace asyncstream {

class blocking_reader {
public:
  blocking_reader(blocking_reader&&) noexcept;
  blocking_reader& operator=(blocking_reader&&) noexcept;
  ~blocking_reader();

  /// Reads up to `n` bytes at the position into `buf` (short reads allowed).
  /// Returns 0 at the end of the stream.
  caf::expected<std::size_t> read(void* buf, std::size_t n);

  /// Reads exactly `n` bytes unless the stream ends or fails first; bytes
  /// before an error are returned first and the error by the next read.
  caf::expected<std::size_t> read_exact(void* buf, std::size_t n);

  /// Reads up to `n` bytes at `offset` (waiting for all of them, the end or
  /// an error) without moving the position.
  caf::expected<std::size_t> read_at(void* buf, std::size_t n,
                                     std::int64_t offset);

  /// Takes up to `max` bytes at the position as shared slices (zero-copy);
  /// an empty vector means the end of the stream.
  caf::expected<std::vector<slice>> read_slices(std::size_t max);

  /// Moves the position; `whence::end` waits for the end unless a final
  /// length was declared. A failed seek leaves the position unchanged.
  caf::expected<std::uint64_t> seek(std::int64_t offset, whence from);

  /// Returns the position.
  std::uint64_t position() const noexcept;

  /// Waits until the byte at `offset` exists; returns the end (as
  /// `errc::none` with `false`) or the error that comes first.
  caf::expected<bool> wait_for(std::int64_t offset);

  /// Closes the reader (any thread, any number of times).
  void close() noexcept;

  /// Returns the reader's id (as known to the readers monitor).
  std::uint64_t id() const noexcept;

  /// @private
  struct impl;

  /// @private
  explicit blocking_reader(std::unique_ptr<impl> ptr) noexcept;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace asyncstream
