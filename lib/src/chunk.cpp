#include "asyncstream/chunk.hpp"

namespace asyncstream {

mutable_chunk_ptr adopt_chunk(std::byte* data, std::size_t size,
                              chunk::release_fn release) {
  return std::make_shared<chunk>(data, size, std::move(release));
}

} // namespace asyncstream
