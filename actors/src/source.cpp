#include "asyncstream/source.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "asyncstream/error.hpp"

namespace asyncstream {

source source::from_fd(int fd, bool take_ownership) {
  return source{fd_source{fd, take_ownership}};
}

caf::expected<source> source::from_path(const std::string& path) {
  auto fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(errc::io_error,
                      "open " + path + ": " + std::strerror(errno));
  return source{fd_source{fd, true}};
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
