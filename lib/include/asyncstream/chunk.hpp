// Chunks: fixed-capacity byte blocks that hold the stream's bytes once.
//
// Contract:
// - A chunk is owned through `std::shared_ptr`. The one writer (the source
//   reader, or a test script) holds a `chunk_writer` and fills the chunk from
//   the front; every byte it has published is immutable from then on.
// - Readers see a chunk only as `std::shared_ptr<const chunk>` inside slices.
//   Publication happens through a CAF message, which orders the writer's
//   stores before any reader's loads; the writer keeps filling the unpublished
//   tail while readers read the published prefix (disjoint bytes, no race).
// - When the last reference drops, the memory goes back to the pool it came
//   from (see chunk_pool.hpp), or to the deleter of adopted memory.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace asyncstream {

/// A fixed-capacity block of bytes, filled once from the front.
class chunk {
public:
  /// Releases the memory of a chunk when its last owner goes away.
  using release_fn = std::function<void(std::byte*, std::size_t)>;

  chunk(std::byte* data, std::size_t capacity, release_fn release) noexcept
    : data_(data), capacity_(capacity), release_(std::move(release)) {
    // nop
  }

  chunk(const chunk&) = delete;
  chunk& operator=(const chunk&) = delete;

  ~chunk() {
    if (release_)
      release_(data_, capacity_);
  }

  /// Returns the first byte of the block (read-only view).
  const std::byte* data() const noexcept {
    return data_;
  }

  /// Returns the first byte of the block for the single writer.
  std::byte* mutable_data() noexcept {
    return data_;
  }

  /// Returns how many bytes the block can hold.
  std::size_t capacity() const noexcept {
    return capacity_;
  }

private:
  std::byte* data_;
  std::size_t capacity_;
  release_fn release_;
};

/// Shared, read-only ownership of a chunk (what slices hold).
using chunk_ptr = std::shared_ptr<const chunk>;

/// Shared, writable ownership of a chunk (what the single writer holds).
using mutable_chunk_ptr = std::shared_ptr<chunk>;

/// Wraps memory the caller already owns as one chunk, without copying.
/// `release` runs when the last slice of it goes away.
mutable_chunk_ptr adopt_chunk(std::byte* data, std::size_t size,
                              chunk::release_fn release);

/// Wraps a shared buffer as one chunk without copying; the chunk keeps the
/// buffer alive.
template <class Buffer>
mutable_chunk_ptr adopt_buffer(std::shared_ptr<Buffer> buf) {
  auto* bytes = reinterpret_cast<std::byte*>(const_cast<void*>(
    static_cast<const void*>(buf->data())));
  auto size = buf->size();
  return adopt_chunk(bytes, size,
                     [keep = std::move(buf)](std::byte*, std::size_t) {});
}

} // namespace asyncstream
