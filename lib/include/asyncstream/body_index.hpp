// body_index: the published bytes of a stream, as a list of slices keyed by
// stream offset.
//
// Contract: owned by one actor (the transfer actor), not thread-safe. It grows
// at the end (`append`) and may forget its oldest bytes (`drop_front`, for a
// retention window); offsets stay absolute. It never copies bytes and answers
// "which slices cover [offset, offset + n)" in O(log C + k) for C chunks and
// k slices returned. Adjacent appends into the same chunk merge into one
// extent, so a chunk filled by many small reads still costs one index entry.
// Dropping bytes releases the index's share of their chunks; slices handed
// out earlier keep theirs. Offsets never wrap: the body stops growing at
// 2^64 - 1 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "asyncstream/slice.hpp"

namespace asyncstream {

/// Offset-ordered index of the published bytes of one stream.
class body_index {
public:
  /// Appends `s` at the current end of the body.
  void append(slice s);

  /// Returns the number of bytes published so far (the offset one past the
  /// newest byte).
  std::uint64_t size() const noexcept {
    return size_;
  }

  /// Returns the offset of the oldest byte still held.
  std::uint64_t begin() const noexcept {
    return begin_;
  }

  /// Counts `n` more bytes as published without holding them (they are kept
  /// elsewhere, e.g. in a stream file): forgets every byte held so far and
  /// moves both `begin()` and `size()` to the new end.
  void skip(std::uint64_t n);

  /// Forgets every byte below `offset` (clamped to `size()`).
  void drop_front(std::uint64_t offset);

  /// Returns the number of index entries (for tests).
  std::size_t extents() const noexcept {
    return extents_.size();
  }

  /// Appends to `out` the slices covering `[offset, offset + max_size)`
  /// clipped to the held bytes, and returns how many bytes they hold (0 for
  /// an offset below `begin()`).
  std::size_t collect(std::uint64_t offset, std::size_t max_size,
                      std::vector<slice>& out) const;

private:
  struct extent {
    std::uint64_t start; // stream offset of the first byte
    slice bytes;
  };

  std::deque<extent> extents_;
  std::uint64_t size_ = 0;
  std::uint64_t begin_ = 0;
};

} // namespace asyncstream
