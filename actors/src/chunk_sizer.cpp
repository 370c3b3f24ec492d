#include "asyncstream/detail/chunk_sizer.hpp"

#include <algorithm>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/options.hpp"

namespace asyncstream::detail {

chunk_sizer::chunk_sizer(const stream_options& opts)
  : fixed_(opts.pool)
  , max_(chunk_pool::round_chunk_size(opts.chunk_size))
  , declared_(opts.declared_length) {
  // nop
}

std::size_t chunk_sizer::step_for(std::uint64_t n) const noexcept {
  std::size_t size = min_size;
  while (size < n && size < max_)
    size *= growth;
  return std::min(size, max_);
}

std::size_t chunk_sizer::next_size(std::uint64_t written,
                                   std::size_t hint) const {
  if (fixed_)
    return fixed_->chunk_size();
  std::size_t size;
  if (last_ == 0) {
    size = std::min(first_size, max_);
    if (hint > 0)
      size = std::min(size, step_for(hint));
  } else {
    size = last_ >= max_ / growth ? max_ : last_ * growth;
  }
  if (declared_ && *declared_ > written)
    size = std::min(size, step_for(*declared_ - written));
  return size;
}

mutable_chunk_ptr chunk_sizer::next(std::uint64_t written, std::size_t hint) {
  if (fixed_)
    return fixed_->acquire();
  auto size = next_size(written, hint);
  auto result = chunk_pool::shared(size)->acquire();
  last_ = size;
  return result;
}

} // namespace asyncstream::detail
