#include "asyncstream/tcp_pipe_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "asyncstream/error.hpp"
#include "tcp_pipe_socket.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace asyncstream {

namespace {

constexpr std::size_t max_iov = 1024;

std::string endpoint_name(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (addr.ss_family == AF_INET) {
    auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in.sin_addr, host, sizeof(host));
    port = ntohs(in.sin_port);
    return std::string{host} + ":" + std::to_string(port);
  }
  if (addr.ss_family == AF_INET6) {
    auto& in = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in.sin6_addr, host, sizeof(host));
    port = ntohs(in.sin6_port);
    return "[" + std::string{host} + "]:" + std::to_string(port);
  }
  return "?";
}

/// "tcp LOCAL <-> REMOTE".
std::string socket_name(int fd) {
  sockaddr_storage local{};
  sockaddr_storage remote{};
  socklen_t n = sizeof(local);
  std::string l = "?";
  std::string r = "?";
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &n) == 0)
    l = endpoint_name(local);
  n = sizeof(remote);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &n) == 0)
    r = endpoint_name(remote);
  return "tcp " + l + " <-> " + r;
}

int seconds_of(caf::timespan x) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(x).count();
  return static_cast<int>(std::max<decltype(s)>(s, 1));
}

caf::error set_int(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return make_error(errc::io_error, std::string{"setting "} + what + ": "
                                        + std::strerror(errno));
  return {};
}

caf::error apply(int fd, const tcp_socket_options& opts) {
  // Asio leaves the descriptors of its asynchronous operations in
  // non-blocking mode; the transport's calls block.
  auto flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
    return make_error(errc::io_error, std::string{"making the socket "}
                                        + "blocking: " + std::strerror(errno));
  if (auto err = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"))
    return err;
  if (auto err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"))
    return err;
  if (auto err = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE,
                         seconds_of(opts.keepalive_idle), "TCP_KEEPIDLE"))
    return err;
  if (auto err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL,
                         seconds_of(opts.keepalive_interval), "TCP_KEEPINTVL"))
    return err;
  if (auto err = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT,
                         std::max(opts.keepalive_count, 1), "TCP_KEEPCNT"))
    return err;
  if (opts.user_timeout.count() > 0) {
    auto ms
      = std::chrono::duration_cast<std::chrono::milliseconds>(opts.user_timeout)
          .count();
    if (auto err = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
                           static_cast<int>(ms), "TCP_USER_TIMEOUT"))
      return err;
  }
  return {};
}

} // namespace

// -- the transport ------------------------------------------------------------

namespace detail {

tcp_socket_transport::tcp_socket_transport(int fd, std::string name)
  : fd_(fd), name_(std::move(name)) {
  // nop
}

tcp_socket_transport::~tcp_socket_transport() {
  close();
}

bool tcp_socket_transport::enter() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_)
    return false;
  ++users_;
  return true;
}

void tcp_socket_transport::leave() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (--users_ == 0 && closed_ && !released_) {
    released_ = true;
    ::close(fd_);
  }
}

bool tcp_socket_transport::is_closed() {
  std::lock_guard<std::mutex> guard{mtx_};
  return closed_;
}

caf::error tcp_socket_transport::fail(int code, const char* what) {
  if (is_closed())
    return make_error(errc::closed, name_ + ": connection closed");
  if (code == EAGAIN || code == EWOULDBLOCK)
    return make_error(errc::timeout, name_ + ": " + what + " timed out");
  return make_error(errc::io_error,
                    name_ + ": " + what + ": " + std::strerror(code));
}

caf::expected<std::size_t> tcp_socket_transport::read(void* buf,
                                                      std::size_t n) {
  if (!enter())
    return make_error(errc::closed, name_ + ": connection closed");
  ssize_t k;
  do {
    k = ::recv(fd_, buf, n, 0);
  } while (k < 0 && errno == EINTR);
  auto code = errno;
  caf::expected<std::size_t> result{std::size_t{0}};
  if (k > 0)
    result = static_cast<std::size_t>(k);
  else if (k < 0)
    result = fail(code, "reading");
  else if (n > 0 && is_closed()) // the shutdown of close() looks like an end
    result = make_error(errc::closed, name_ + ": connection closed");
  leave();
  return result;
}

caf::error tcp_socket_transport::write(const void* data, std::size_t n) {
  if (!enter())
    return make_error(errc::closed, name_ + ": connection closed");
  auto p = static_cast<const char*>(data);
  caf::error result;
  while (n > 0) {
    auto k = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      result = fail(errno, "writing");
      break;
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  leave();
  return result;
}

caf::error tcp_socket_transport::write(const std::vector<slice>& xs) {
  if (!enter())
    return make_error(errc::closed, name_ + ": connection closed");
  iovec iov[max_iov];
  caf::error result;
  std::size_t next = 0;   // the first slice not in `iov` yet
  std::size_t offset = 0; // bytes of slice `next` already written
  while (!result) {
    // Gather up to max_iov non-empty slices, starting at next + offset.
    int cnt = 0;
    for (auto i = next; i < xs.size() && cnt < static_cast<int>(max_iov); ++i) {
      auto skip = i == next ? offset : 0;
      if (xs[i].size() <= skip)
        continue;
      iov[cnt].iov_base = const_cast<std::byte*>(xs[i].data()) + skip;
      iov[cnt].iov_len = xs[i].size() - skip;
      ++cnt;
    }
    if (cnt == 0)
      break;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(cnt);
    auto k = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      result = fail(errno, "writing");
      break;
    }
    // Advance past `k` bytes.
    auto left = static_cast<std::size_t>(k);
    while (next < xs.size()) {
      auto rest = xs[next].size() - std::min(offset, xs[next].size());
      if (left < rest) {
        offset += left;
        break;
      }
      left -= rest;
      ++next;
      offset = 0;
    }
  }
  leave();
  return result;
}

void tcp_socket_transport::close() noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_)
    return;
  closed_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  if (users_ == 0) {
    released_ = true;
    ::close(fd_);
  }
}

std::string tcp_socket_transport::describe() const {
  return name_;
}

caf::error tcp_socket_transport::set_io_timeout(caf::timespan timeout) {
  auto us
    = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  if (us < 0)
    us = 0;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  if (timeout.count() > 0 && tv.tv_sec == 0 && tv.tv_usec == 0)
    tv.tv_usec = 1;
  if (!enter())
    return make_error(errc::closed, name_ + ": connection closed");
  caf::error result;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0
      || setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
    result = make_error(errc::io_error, name_ + ": setting the I/O timeout: "
                                          + std::strerror(errno));
  leave();
  return result;
}

} // namespace detail

// -- free functions -----------------------------------------------------------

caf::expected<pipe_transport_ptr>
make_tcp_transport(int fd, const tcp_socket_options& opts) {
  if (fd < 0)
    return make_error(errc::invalid_argument, "make_tcp_transport: bad fd");
  if (auto err = apply(fd, opts)) {
    ::close(fd);
    return err;
  }
  return std::make_shared<detail::tcp_socket_transport>(fd, socket_name(fd));
}

caf::expected<pipe_transport_ptr>
tcp_connect(const std::string& host, std::uint16_t port, caf::timespan timeout,
            const cancel_token_ptr& cancel, const tcp_socket_options& opts) {
  auto target = host + ":" + std::to_string(port);
  auto ioc = std::make_shared<asio::io_context>(1);
  if (cancel) {
    std::weak_ptr<asio::io_context> weak = ioc;
    cancel->on_cancel([weak] {
      if (auto ptr = weak.lock())
        ptr->stop();
    });
  }
  boost::system::error_code result = asio::error::would_block;
  bool timed_out = false;
  tcp::resolver resolver{*ioc};
  tcp::socket sock{*ioc};
  asio::steady_timer timer{*ioc};
  timer.expires_after(timeout);
  timer.async_wait([&](const boost::system::error_code& ec) {
    if (ec)
      return;
    timed_out = true;
    resolver.cancel();
    boost::system::error_code ignored;
    sock.close(ignored);
  });
  resolver.async_resolve(host, std::to_string(port),
                         [&](const boost::system::error_code& ec,
                             const tcp::resolver::results_type& endpoints) {
                           if (ec) {
                             result = ec;
                             timer.cancel();
                             return;
                           }
                           asio::async_connect(
                             sock, endpoints,
                             [&](const boost::system::error_code& ec,
                                 const tcp::endpoint&) {
                               result = ec;
                               timer.cancel();
                             });
                         });
  ioc->run();
  if (cancel && cancel->canceled())
    return make_error(errc::canceled, "connecting to " + target + ": canceled");
  if (timed_out)
    return make_error(errc::timeout, "connecting to " + target
                                       + ": no connection within "
                                       + detail::show_duration(timeout));
  if (result)
    return make_error(errc::io_error,
                      "connecting to " + target + ": " + result.message());
  boost::system::error_code ec;
  auto fd = sock.release(ec);
  if (ec)
    return make_error(errc::io_error,
                      "connecting to " + target
                        + ": releasing the socket: " + ec.message());
  return make_tcp_transport(fd, opts);
}

} // namespace asyncstream
