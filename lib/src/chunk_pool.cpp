#include "asyncstream/chunk_pool.hpp"

#include <sys/mman.h>

#include <limits>
#include <map>
#include <new>

namespace asyncstream {

namespace {

constexpr std::size_t page_size = 4096;
constexpr std::size_t huge_page_size = std::size_t{2} << 20;

std::size_t round_up(std::size_t x, std::size_t to) {
  return (x + to - 1) / to * to;
}

} // namespace

/// The resident free memory all process-wide pools may keep together.
struct chunk_pool::budget {
  std::atomic<std::uint64_t> cached{0};
  std::atomic<std::uint64_t> limit{default_max_cached};

  /// Reserves `n` bytes of the budget; false if that would exceed it.
  bool reserve(std::uint64_t n) noexcept {
    auto prev = cached.fetch_add(n, std::memory_order_relaxed);
    if (prev + n <= limit.load(std::memory_order_relaxed))
      return true;
    cached.fetch_sub(n, std::memory_order_relaxed);
    return false;
  }

  void free(std::uint64_t n) noexcept {
    cached.fetch_sub(n, std::memory_order_relaxed);
  }

  bool exceeded() const noexcept {
    return cached.load(std::memory_order_relaxed)
           > limit.load(std::memory_order_relaxed);
  }
};

namespace {

/// The process-wide pools, one per chunk size, and their shared budget.
/// Never destroyed: chunks may be released during static destruction.
struct shared_registry {
  std::mutex mtx;
  std::map<std::size_t, std::shared_ptr<chunk_pool>> pools;
  chunk_pool::budget budget;

  static shared_registry& get() {
    static auto* instance = new shared_registry;
    return *instance;
  }
};

} // namespace

std::size_t chunk_pool::round_chunk_size(std::size_t chunk_size) noexcept {
  return round_up(chunk_size == 0 ? default_chunk_size : chunk_size,
                  page_size);
}

std::shared_ptr<chunk_pool> chunk_pool::make(std::size_t chunk_size,
                                             std::size_t max_cached_bytes) {
  return std::make_shared<chunk_pool>(chunk_size, max_cached_bytes, nullptr);
}

std::shared_ptr<chunk_pool> chunk_pool::shared(std::size_t chunk_size) {
  auto& reg = shared_registry::get();
  chunk_size = round_chunk_size(chunk_size);
  std::lock_guard<std::mutex> guard{reg.mtx};
  auto& ptr = reg.pools[chunk_size];
  if (!ptr)
    ptr = std::make_shared<chunk_pool>(
      chunk_size, std::numeric_limits<std::size_t>::max(), &reg.budget);
  return ptr;
}

void chunk_pool::set_shared_max_cached(std::size_t bytes) {
  auto& reg = shared_registry::get();
  std::vector<std::shared_ptr<chunk_pool>> pools;
  {
    std::lock_guard<std::mutex> guard{reg.mtx};
    reg.budget.limit.store(bytes, std::memory_order_relaxed);
    for (auto& kvp : reg.pools)
      pools.push_back(kvp.second);
  }
  for (auto& pool : pools) {
    std::vector<std::byte*> blocks;
    {
      std::lock_guard<std::mutex> guard{pool->mtx_};
      pool->over_bound(blocks);
    }
    pool->release_pages(blocks);
  }
}

std::size_t chunk_pool::shared_max_cached() noexcept {
  return static_cast<std::size_t>(
    shared_registry::get().budget.limit.load(std::memory_order_relaxed));
}

chunk_pool_stats chunk_pool::shared_stats() {
  auto& reg = shared_registry::get();
  std::vector<std::shared_ptr<chunk_pool>> pools;
  {
    std::lock_guard<std::mutex> guard{reg.mtx};
    for (auto& kvp : reg.pools)
      pools.push_back(kvp.second);
  }
  chunk_pool_stats sum;
  for (auto& pool : pools) {
    auto st = pool->stats();
    sum.mapped_bytes += st.mapped_bytes;
    sum.acquired += st.acquired;
    sum.reused += st.reused;
    sum.in_use += st.in_use;
    sum.cached += st.cached;
    sum.in_use_bytes += st.in_use_bytes;
    sum.cached_bytes += st.cached_bytes;
  }
  return sum;
}

chunk_pool::chunk_pool(std::size_t chunk_size, std::size_t max_cached_bytes,
                       budget* shared_budget)
  : chunk_size_(round_chunk_size(chunk_size)),
    max_cached_(max_cached_bytes),
    budget_(shared_budget) {
  // A slab holds whole chunks and spans whole huge pages.
  // A remainder that fits no chunk stays untouched address space.
  slab_size_ = round_up(chunk_size_, huge_page_size);
}

chunk_pool::~chunk_pool() {
  if (budget_ != nullptr)
    budget_->free(stats_.cached_bytes);
  for (auto& [ptr, size] : slabs_)
    munmap(ptr, size);
}

void chunk_pool::map_slab() {
  // Over-allocate by one huge page so the slab can start on a 2 MiB border.
  auto len = slab_size_ + huge_page_size;
  void* raw = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    throw std::bad_alloc{};
  auto addr = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = round_up(addr, huge_page_size);
  auto head = aligned - addr;
  if (head > 0)
    munmap(raw, head);
  auto tail = len - head - slab_size_;
  if (tail > 0)
    munmap(reinterpret_cast<void*>(aligned + slab_size_), tail);
  auto* base = reinterpret_cast<std::byte*>(aligned);
  // Huge pages pay for big chunks only: a huge page under a slab of small
  // chunks would make the first touch of one small chunk cost 2 MiB. Under
  // THP "always" an aligned slab gets one unless told otherwise.
  madvise(base, slab_size_,
          chunk_size_ >= huge_page_min_chunk ? MADV_HUGEPAGE
                                             : MADV_NOHUGEPAGE);
  // Room for every block in both free lists, so that giving a block back
  // (in a chunk's destructor) never allocates.
  auto blocks = blocks_total_ + slab_size_ / chunk_size_;
  try {
    slabs_.reserve(slabs_.size() + 1);
    resident_.reserve(blocks);
    released_.reserve(blocks);
  } catch (...) {
    munmap(base, slab_size_);
    throw;
  }
  blocks_total_ = blocks;
  slabs_.emplace_back(base, slab_size_);
  stats_.mapped_bytes += slab_size_;
  // Push in reverse so that the lowest address is handed out first.
  for (auto n = slab_size_ / chunk_size_; n > 0; --n)
    released_.push_back(base + (n - 1) * chunk_size_);
}

mutable_chunk_ptr chunk_pool::acquire() {
  auto self = shared_from_this();
  std::byte* block = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!resident_.empty()) {
      block = resident_.back();
      resident_.pop_back();
      ++stats_.reused;
      --stats_.cached;
      stats_.cached_bytes -= chunk_size_;
      if (budget_ != nullptr)
        budget_->free(chunk_size_);
    } else {
      if (released_.empty())
        map_slab(); // may throw std::bad_alloc: nothing changed then
      block = released_.back();
      released_.pop_back();
    }
    ++stats_.acquired;
    ++stats_.in_use;
    stats_.in_use_bytes += chunk_size_;
  }
  try {
    return std::make_shared<chunk>(
      block, chunk_size_,
      [self = std::move(self)](std::byte* ptr, std::size_t) {
        self->give_back(ptr);
      });
  } catch (...) {
    give_back(block);
    throw;
  }
}

void chunk_pool::give_back(std::byte* block) noexcept {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    --stats_.in_use;
    stats_.in_use_bytes -= chunk_size_;
    if (stats_.cached_bytes + chunk_size_ <= max_cached_
        && (budget_ == nullptr || budget_->reserve(chunk_size_))) {
      resident_.push_back(block);
      ++stats_.cached;
      stats_.cached_bytes += chunk_size_;
      return;
    }
  }
  // The pages go back before the block can be handed out again.
  madvise(block, chunk_size_, MADV_DONTNEED);
  std::lock_guard<std::mutex> guard{mtx_};
  released_.push_back(block); // never reallocates (see map_slab)
}

void chunk_pool::over_bound(std::vector<std::byte*>& out) {
  while (!resident_.empty()
         && (stats_.cached_bytes > max_cached_
             || (budget_ != nullptr && budget_->exceeded()))) {
    out.push_back(resident_.back());
    resident_.pop_back();
    --stats_.cached;
    stats_.cached_bytes -= chunk_size_;
    if (budget_ != nullptr)
      budget_->free(chunk_size_);
  }
}

void chunk_pool::release_pages(std::vector<std::byte*>& blocks) {
  if (blocks.empty())
    return;
  // The pages go back before the block can be handed out again: a block
  // still on its way here is neither resident nor released.
  for (auto* block : blocks)
    madvise(block, chunk_size_, MADV_DONTNEED);
  std::lock_guard<std::mutex> guard{mtx_};
  released_.insert(released_.end(), blocks.begin(), blocks.end());
  blocks.clear();
}

chunk_pool_stats chunk_pool::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

void chunk_pool::set_max_cached(std::size_t bytes) {
  std::vector<std::byte*> blocks;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    max_cached_ = bytes;
    over_bound(blocks);
  }
  release_pages(blocks);
}

std::size_t chunk_pool::max_cached() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return max_cached_;
}

void chunk_pool::trim() {
  std::vector<std::byte*> blocks;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    blocks.swap(resident_);
    if (budget_ != nullptr)
      budget_->free(stats_.cached_bytes);
    stats_.cached = 0;
    stats_.cached_bytes = 0;
  }
  release_pages(blocks);
}

} // namespace asyncstream
