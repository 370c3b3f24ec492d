#include "asyncstream/source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "asyncstream/detail/exhaustion.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream {

void source::fd_owner::close() noexcept {
  auto fd = fd_.exchange(-1, std::memory_order_acq_rel);
  if (fd >= 0)
    ::close(fd);
}

source source::from_fd(int fd, bool take_ownership) {
  if (!take_ownership)
    return source{fd_source{fd, false, nullptr}};
  std::shared_ptr<fd_owner> owner;
  try {
    owner = std::make_shared<fd_owner>(fd);
  } catch (...) {
    ::close(fd); // taken over, even when this throws
    throw;
  }
  return source{fd_source{fd, true, std::move(owner)}};
}

caf::expected<source> source::from_path(const std::string& path) {
  auto fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return detail::system_failure(errc::io_error, "open " + path, errno);
  try {
    return from_fd(fd, true);
  } catch (const std::bad_alloc&) {
    return make_error(errc::resource_exhausted, "open " + path
                                                  + ": out of memory");
  }
}

source source::from_bytes(std::shared_ptr<const std::string> bytes) {
  auto size = bytes->size();
  return source{buffer_source{adopt_buffer(std::move(bytes)), size}};
}

source source::from_bytes(std::string bytes) {
  return from_bytes(std::make_shared<const std::string>(std::move(bytes)));
}

source source::from_function(read_function fn) {
  return source{std::move(fn)};
}

source source::push() {
  return source{push_source{}};
}

} // namespace asyncstream
