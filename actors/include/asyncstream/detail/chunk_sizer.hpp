// chunk_sizer: the sizes of the chunks a producer (the source reader, a
// stream_writer) fills, so that a small stream costs a few KiB and a big
// one still fills big chunks.
//
// Contract:
// - The first chunk is small: 16 KiB, or less when the stream is known to
//   be smaller (its declared length, or a first write of fewer bytes), in
//   steps of 4 KiB x 4^k. Each next chunk is 4 times the previous one, up to
//   `stream_options::chunk_size`; with a declared length, never more than
//   the step that holds the rest of the stream.
// - Chunks of each size come from the process-wide pool of that size
//   (`chunk_pool::shared(size)`). With `stream_options::pool` every chunk
//   comes from that pool, at its fixed size.
// - One producer uses one sizer; not thread-safe. `next` may throw
//   `std::bad_alloc` (from the pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "asyncstream/chunk.hpp"

namespace asyncstream {

class chunk_pool;
struct stream_options;

namespace detail {

class chunk_sizer {
public:
  /// Size of the first chunk when nothing says the stream is smaller.
  static constexpr std::size_t first_size = 16 * 1024;

  /// Smallest chunk, and the factor between the steps.
  static constexpr std::size_t min_size = 4 * 1024;
  static constexpr std::size_t growth = 4;

  explicit chunk_sizer(const stream_options& opts);

  /// Returns the next chunk to fill, at stream offset `written`; `hint` is
  /// the number of bytes about to be written (0: unknown).
  mutable_chunk_ptr next(std::uint64_t written, std::size_t hint = 0);

  /// Returns the size the next chunk will have (tests).
  std::size_t next_size(std::uint64_t written, std::size_t hint = 0) const;

private:
  /// The smallest step that holds `n` bytes (at most `max_`).
  std::size_t step_for(std::uint64_t n) const noexcept;

  std::shared_ptr<chunk_pool> fixed_;
  std::size_t max_;
  std::optional<std::uint64_t> declared_;
  /// Size of the last chunk handed out (0: none yet).
  std::size_t last_ = 0;
};

} // namespace detail
} // namespace asyncstream
