#include "asyncstream/detail/source_control.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "asyncstream/detail/exhaustion.hpp"

namespace asyncstream::detail {

source_control::~source_control() {
  if (fd_ >= 0)
    ::close(fd_);
}

caf::error source_control::open_fd() {
  if (fd_ >= 0)
    return {};
  auto fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return system_failure(errc::io_error, "eventfd", errno);
  fd_ = fd;
  if (stopped()) { // a stop() that came first must still wake a poll
    std::uint64_t one = 1;
    [[maybe_unused]] auto res = ::write(fd_, &one, sizeof(one));
  }
  return {};
}

void source_control::stop() noexcept {
  if (stopped_.exchange(true, std::memory_order_acq_rel))
    return;
  if (fd_ >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto res = ::write(fd_, &one, sizeof(one));
  }
  { std::lock_guard<std::mutex> guard{mtx_}; }
  cv_.notify_all();
}

void source_control::allow(std::uint64_t end) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (end == allowed_)
      return;
    allowed_ = end;
  }
  cv_.notify_all();
}

std::uint64_t source_control::wait_for_room(std::uint64_t offset) {
  std::unique_lock<std::mutex> guard{mtx_};
  cv_.wait(guard, [&] { return offset < allowed_ || stopped(); });
  if (stopped())
    return 0;
  return allowed_ - offset;
}

std::uint64_t source_control::allowed() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return allowed_;
}

} // namespace asyncstream::detail
