#include "asyncstream/body_index.hpp"

#include <algorithm>
#include <limits>

namespace asyncstream {

void body_index::append(slice s) {
  if (s.empty())
    return;
  auto n = s.size();
  // The offsets never wrap: bytes past 2^64 - 1 are not taken (the transfer
  // actor's limit stops a source long before).
  if (n > std::numeric_limits<std::uint64_t>::max() - size_) {
    n = static_cast<std::size_t>(std::numeric_limits<std::uint64_t>::max()
                                 - size_);
    if (n == 0)
      return;
    s = s.subslice(0, n);
  }
  if (!extents_.empty()) {
    auto& last = extents_.back().bytes;
    if (last.owner() == s.owner()
        && last.offset_in_chunk() + last.size() == s.offset_in_chunk()) {
      last = slice{last.owner(), last.offset_in_chunk(), last.size() + n};
      size_ += n;
      return;
    }
  }
  extents_.push_back(extent{size_, std::move(s)});
  size_ += n;
}

void body_index::skip(std::uint64_t n) {
  extents_.clear();
  auto max = std::numeric_limits<std::uint64_t>::max();
  size_ = n > max - size_ ? max : size_ + n;
  begin_ = size_;
}

void body_index::drop_front(std::uint64_t offset) {
  if (offset > size_)
    offset = size_;
  if (offset <= begin_)
    return;
  begin_ = offset;
  while (!extents_.empty()) {
    auto& first = extents_.front();
    auto end = first.start + first.bytes.size();
    if (end <= offset) {
      extents_.pop_front();
      continue;
    }
    if (first.start < offset) {
      auto cut = static_cast<std::size_t>(offset - first.start);
      first.bytes.remove_prefix(cut);
      first.start = offset;
    }
    break;
  }
}

std::size_t body_index::collect(std::uint64_t offset, std::size_t max_size,
                                std::vector<slice>& out) const {
  if (offset >= size_ || offset < begin_ || max_size == 0)
    return 0;
  // First extent whose start is greater than offset, then step back one.
  auto i = std::upper_bound(extents_.begin(), extents_.end(), offset,
                            [](std::uint64_t off, const extent& e) {
                              return off < e.start;
                            });
  --i;
  std::size_t total = 0;
  auto pos = offset;
  for (; i != extents_.end() && total < max_size; ++i) {
    auto skip = static_cast<std::size_t>(pos - i->start);
    auto take = std::min(i->bytes.size() - skip, max_size - total);
    out.push_back(i->bytes.subslice(skip, take));
    total += take;
    pos += take;
  }
  return total;
}

} // namespace asyncstream
