// chunk_pool: recycles chunk memory so a long stream does not fault in fresh
// pages chunk by chunk.
//
// Contract:
// - Memory comes from 2 MiB-aligned slabs. Slabs of chunks of at least 1 MiB
//   are advised for transparent huge pages (one page fault per 2 MiB instead
//   of 512 where the kernel allows it); slabs of smaller chunks are advised
//   against them, so a slab of small chunks never becomes one 2 MiB page at
//   its first touch (a 1-byte stream then costs one 4 KiB page, not 2 MiB).
// - A chunk handed out by `acquire()` returns its block to the pool when its
//   last owner (writer or slice) drops it, from any thread. The pool itself is
//   kept alive by its chunks, so chunks may outlive every other pool handle.
// - Free blocks stay resident up to a bound; blocks beyond it are kept as
//   address space only (their pages go back to the kernel, `MADV_DONTNEED`,
//   when they are freed). A pool from `make()` has its own bound
//   (`max_cached_bytes`, `set_max_cached`). The process-wide pools
//   (`shared(size)`, one per chunk size) also share one budget for all of
//   them together (`set_shared_max_cached`, 512 MiB by default): a daemon
//   says "keep at most 64 MiB of free chunk memory" once, whatever sizes its
//   streams use. Lowering either bound trims at once.
// - Thread-safe: `acquire()` and the release path take one short mutex; the
//   pages of a released block are given back outside of it.
// - `acquire()` throws `std::bad_alloc` when no slab can be mapped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "asyncstream/chunk.hpp"

namespace asyncstream {

/// Counters for observing a pool (tests, benchmarks, metrics).
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
  /// Bytes of the chunks currently owned by somebody.
  std::uint64_t in_use_bytes = 0;
  /// Bytes of the free blocks that are still resident.
  std::uint64_t cached_bytes = 0;
};

/// A thread-safe pool of equally sized chunk blocks.
class chunk_pool : public std::enable_shared_from_this<chunk_pool> {
public:
  /// Default size of one chunk: 1 MiB (two per huge page).
  static constexpr std::size_t default_chunk_size = std::size_t{1} << 20;

  /// Default bound on resident free memory: 512 MiB (per pool from
  /// `make()`; for all process-wide pools together).
  static constexpr std::size_t default_max_cached = std::size_t{512} << 20;

  /// Chunks of at least this size get transparent huge pages.
  static constexpr std::size_t huge_page_min_chunk = std::size_t{1} << 20;

  /// Creates a pool of chunks of `chunk_size` bytes (rounded up to 4 KiB).
  static std::shared_ptr<chunk_pool>
  make(std::size_t chunk_size = default_chunk_size,
       std::size_t max_cached_bytes = default_max_cached);

  /// Returns the process-wide pool for `chunk_size`-byte chunks (rounded up
  /// to 4 KiB; 0 means `default_chunk_size`).
  static std::shared_ptr<chunk_pool>
  shared(std::size_t chunk_size = default_chunk_size);

  /// Bounds the resident free memory of all process-wide pools together to
  /// `bytes`, and gives the pages above it back to the kernel at once.
  static void set_shared_max_cached(std::size_t bytes);

  /// Returns the bound of `set_shared_max_cached`.
  static std::size_t shared_max_cached() noexcept;

  /// Returns the counters of all process-wide pools added up (`chunk_size`
  /// differs between them: use the `_bytes` fields to compare).
  static chunk_pool_stats shared_stats();

  /// Returns `chunk_size` rounded up to whole pages as the pools do (0 means
  /// `default_chunk_size`).
  static std::size_t round_chunk_size(std::size_t chunk_size) noexcept;

  ~chunk_pool();

  chunk_pool(const chunk_pool&) = delete;
  chunk_pool& operator=(const chunk_pool&) = delete;

  /// Returns a writable chunk of `chunk_size()` bytes; throws
  /// `std::bad_alloc` when no memory can be mapped.
  mutable_chunk_ptr acquire();

  /// Returns the capacity of every chunk of this pool.
  std::size_t chunk_size() const noexcept {
    return chunk_size_;
  }

  /// Returns a snapshot of the counters.
  chunk_pool_stats stats() const;

  /// Bounds this pool's resident free memory to `bytes` and gives the pages
  /// above it back to the kernel at once. (A process-wide pool is bounded by
  /// the shared budget as well.)
  void set_max_cached(std::size_t bytes);

  /// Returns this pool's own bound on resident free memory.
  std::size_t max_cached() const;

  /// Releases the pages of every cached free block to the kernel.
  void trim();

  /// @private
  struct budget;

  /// @private
  chunk_pool(std::size_t chunk_size, std::size_t max_cached_bytes,
             budget* shared_budget = nullptr);

private:
  void give_back(std::byte* block) noexcept;
  void map_slab();
  /// Takes resident blocks to release until the bounds hold (call with
  /// `mtx_` held); the caller passes them to `release_pages` afterwards.
  void over_bound(std::vector<std::byte*>& out);
  /// Gives the pages of `blocks` back, then files them as released.
  void release_pages(std::vector<std::byte*>& blocks);

  std::size_t chunk_size_;
  std::size_t slab_size_;
  std::size_t max_cached_;
  /// Blocks in all slabs; both free lists have room for them all.
  std::size_t blocks_total_ = 0;
  /// The budget shared by the process-wide pools; null for `make()` pools.
  budget* budget_;
  mutable std::mutex mtx_;
  std::vector<std::byte*> resident_; // free blocks with pages in place
  std::vector<std::byte*> released_; // free blocks without pages
  std::vector<std::pair<void*, std::size_t>> slabs_;
  chunk_pool_stats stats_;
};

} // namespace asyncstream
