#include "asyncstream/chunk_pool.hpp"

#include <sys/mman.h>

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

std::shared_ptr<chunk_pool> chunk_pool::make(std::size_t chunk_size,
                                             std::size_t max_cached_bytes) {
  return std::make_shared<chunk_pool>(chunk_size, max_cached_bytes);
}

std::shared_ptr<chunk_pool> chunk_pool::shared(std::size_t chunk_size) {
  static std::mutex mtx;
  static std::map<std::size_t, std::shared_ptr<chunk_pool>> pools;
  chunk_size = round_up(chunk_size == 0 ? default_chunk_size : chunk_size,
                        page_size);
  std::lock_guard<std::mutex> guard{mtx};
  auto& ptr = pools[chunk_size];
  if (!ptr)
    ptr = make(chunk_size);
  return ptr;
}

chunk_pool::chunk_pool(std::size_t chunk_size, std::size_t max_cached_bytes)
  : chunk_size_(round_up(chunk_size == 0 ? default_chunk_size : chunk_size,
                         page_size)),
    max_cached_(max_cached_bytes) {
  // A slab holds whole chunks and spans whole huge pages.
  // A remainder that fits no chunk stays untouched address space.
  slab_size_ = round_up(chunk_size_, huge_page_size);
}

chunk_pool::~chunk_pool() {
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
  madvise(base, slab_size_, MADV_HUGEPAGE);
  slabs_.emplace_back(base, slab_size_);
  stats_.mapped_bytes += slab_size_;
  // Push in reverse so that the lowest address is handed out first.
  for (auto n = slab_size_ / chunk_size_; n > 0; --n)
    released_.push_back(base + (n - 1) * chunk_size_);
}

mutable_chunk_ptr chunk_pool::acquire() {
  std::byte* block = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++stats_.acquired;
    ++stats_.in_use;
    if (!resident_.empty()) {
      block = resident_.back();
      resident_.pop_back();
      ++stats_.reused;
      --stats_.cached;
    } else {
      if (released_.empty())
        map_slab();
      block = released_.back();
      released_.pop_back();
    }
  }
  auto self = shared_from_this();
  return std::make_shared<chunk>(
    block, chunk_size_,
    [self = std::move(self)](std::byte* ptr, std::size_t) {
      self->give_back(ptr);
    });
}

void chunk_pool::give_back(std::byte* block) {
  std::lock_guard<std::mutex> guard{mtx_};
  --stats_.in_use;
  if ((stats_.cached + 1) * chunk_size_ <= max_cached_) {
    resident_.push_back(block);
    ++stats_.cached;
  } else {
    madvise(block, chunk_size_, MADV_DONTNEED);
    released_.push_back(block);
  }
}

chunk_pool_stats chunk_pool::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

void chunk_pool::trim() {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto* block : resident_) {
    madvise(block, chunk_size_, MADV_DONTNEED);
    released_.push_back(block);
  }
  resident_.clear();
  stats_.cached = 0;
}

} // namespace asyncstream
