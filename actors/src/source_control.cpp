#include "asyncstream/detail/source_control.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <system_error>

namespace asyncstream::detail {

source_control::source_control() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0)
    throw std::system_error{errno, std::generic_category(), "eventfd"};
}

source_control::~source_control() {
  ::close(fd_);
}

void source_control::stop() noexcept {
  if (stopped_.exchange(true, std::memory_order_acq_rel))
    return;
  std::uint64_t one = 1;
  [[maybe_unused]] auto res = ::write(fd_, &one, sizeof(one));
}

} // namespace asyncstream::detail
