// chunk_pool: recycles chunk memory so a long stream does not fault in fresh
// pages chunk by chunk.
//
// Contract:
// - Memory comes from 2 MiB-aligned slabs advised for transparent huge pages
//   (one page fault per 2 MiB instead of 512 where the kernel allows it).
// - A chunk handed out by `acquire()` returns its block to the pool when its
//   last owner (writer or slice) drops it, from any thread. The pool itself is
//   kept alive by its chunks, so chunks may outlive every other pool handle.
// - At most `max_cached_bytes` of free blocks stay resident; blocks beyond
//   that are kept as address space only (their pages go back to the kernel).
// - Thread-safe: `acquire()` and the release path take one short mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "asyncstream/chunk.hpp"

namespace asyncstream {

/// Counters for observing the pool (tests and benchmarks).
struct chunk_pool_stats {
  /// Bytes of address space the pool has mapped.
  std::uint64_t mapped_bytes = 0;
  /// Chunks handed out in total.
  std::uint64_t acquired = 0;
  /// Chunks handed out from the free list (no fresh pages needed).
  std::uint64_t reused = 0;
  /// Chunks currently owned by somebody.
  std::uint64_t in_use = 0;
  /// Free blocks that are still resident.
  std::uint64_t cached = 0;
};

/// A thread-safe pool of equally sized chunk blocks.
class chunk_pool : public std::enable_shared_from_this<chunk_pool> {
public:
  /// Default size of one chunk: 1 MiB (two per huge page).
  static constexpr std::size_t default_chunk_size = std::size_t{1} << 20;

  /// Default bound on resident free memory: 512 MiB.
  static constexpr std::size_t default_max_cached = std::size_t{512} << 20;

  /// Creates a pool of chunks of `chunk_size` bytes (rounded up to 4 KiB).
  static std::shared_ptr<chunk_pool>
  make(std::size_t chunk_size = default_chunk_size,
       std::size_t max_cached_bytes = default_max_cached);

  /// Returns the process-wide pool for `chunk_size`-byte chunks.
  static std::shared_ptr<chunk_pool>
  shared(std::size_t chunk_size = default_chunk_size);

  ~chunk_pool();

  /// Returns a writable chunk of `chunk_size()` bytes.
  mutable_chunk_ptr acquire();

  /// Returns the capacity of every chunk of this pool.
  std::size_t chunk_size() const noexcept {
    return chunk_size_;
  }

  /// Returns a snapshot of the counters.
  chunk_pool_stats stats() const;

  /// Releases the pages of every cached free block to the kernel.
  void trim();

  /// @private
  chunk_pool(std::size_t chunk_size, std::size_t max_cached_bytes);

private:
  void give_back(std::byte* block);
  void map_slab();

  std::size_t chunk_size_;
  std::size_t slab_size_;
  std::size_t max_cached_;
  mutable std::mutex mtx_;
  std::vector<std::byte*> resident_; // free blocks with pages in place
  std::vector<std::byte*> released_; // free blocks without pages
  std::vector<std::pair<void*, std::size_t>> slabs_;
  chunk_pool_stats stats_;
};

} // namespace asyncstream
