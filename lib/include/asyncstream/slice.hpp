// Slices: read-only views of published bytes that share their chunk.
//
// Contract: a slice keeps its chunk alive; copying a slice copies a pointer
// and two integers, never bytes. A slice stays valid as long as the caller
// keeps it, whatever happens to the stream afterwards (closed, aborted, or
// the bytes dropped from a retention window).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "asyncstream/chunk.hpp"

namespace asyncstream {

/// A contiguous, immutable range of bytes inside one chunk.
class slice {
public:
  slice() noexcept = default;

  slice(chunk_ptr owner, std::size_t offset, std::size_t size) noexcept
    : owner_(std::move(owner)), offset_(offset), size_(size) {
    // nop
  }

  /// Returns the first byte of the view.
  const std::byte* data() const noexcept {
    return owner_->data() + offset_;
  }

  /// Returns the number of bytes in the view.
  std::size_t size() const noexcept {
    return size_;
  }

  /// Returns whether the view holds no bytes.
  bool empty() const noexcept {
    return size_ == 0;
  }

  /// Returns the chunk that owns the bytes.
  const chunk_ptr& owner() const noexcept {
    return owner_;
  }

  /// Returns the position of the view inside its chunk.
  std::size_t offset_in_chunk() const noexcept {
    return offset_;
  }

  /// Returns a view of `[pos, pos + n)` of this slice (clamped).
  slice subslice(std::size_t pos, std::size_t n) const noexcept {
    if (pos > size_)
      pos = size_;
    if (n > size_ - pos)
      n = size_ - pos;
    return slice{owner_, offset_ + pos, n};
  }

  /// Drops the first `n` bytes of the view (clamped).
  void remove_prefix(std::size_t n) noexcept {
    if (n > size_)
      n = size_;
    offset_ += n;
    size_ -= n;
  }

  /// Returns the bytes as characters, for tests and text protocols.
  std::string_view as_string_view() const noexcept {
    return {reinterpret_cast<const char*>(data()), size_};
  }

private:
  chunk_ptr owner_;
  std::size_t offset_ = 0;
  std::size_t size_ = 0;
};

} // namespace asyncstream
