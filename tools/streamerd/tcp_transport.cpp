#include "tcp_transport.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/post.hpp>

namespace streamerd {

namespace {

std::string peer_of(const tcp_transport::socket_type& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec)
    return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

} // namespace

tcp_transport::tcp_transport(socket_type socket)
  : socket_(std::move(socket)) {
  peer_ = peer_of(socket_);
  error_code ec;
  socket_.set_option(net::ip::tcp::no_delay{true}, ec);
  socket_.non_blocking(true, ec);
  // A client whose host vanished (no FIN, no RST) while it follows a
  // stream that stays quiet would hold its reader slot forever: TCP
  // keep-alive probes find it within about two minutes.
  socket_.set_option(net::socket_base::keep_alive{true}, ec);
  int fd = socket_.native_handle();
  int idle = 60, interval = 10, count = 6;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

tcp_transport::~tcp_transport() {
  close();
}

tcp_transport::executor_type tcp_transport::get_executor() const {
  return const_cast<socket_type&>(socket_).get_executor();
}

void tcp_transport::async_read_some(net::mutable_buffer buf, io_handler h) {
  socket_.async_read_some(buf, std::move(h));
}

void tcp_transport::async_write_some(std::vector<net::const_buffer> bufs,
                                     io_handler h) {
  // Asio takes the buffer sequence by reference until the operation starts
  // and copies what it needs; the vector travels with the handler.
  auto keep = std::make_shared<std::vector<net::const_buffer>>(
    std::move(bufs));
  socket_.async_write_some(*keep, [keep, h = std::move(h)](error_code ec,
                                                           std::size_t n) {
    h(ec, n);
  });
}

void tcp_transport::async_sendfile_some(int fd, std::uint64_t offset,
                                        std::size_t max, io_handler h) {
  try_sendfile(fd, offset, max, std::move(h));
}

void tcp_transport::try_sendfile(int fd, std::uint64_t offset,
                                 std::size_t max, io_handler h) {
  if (!socket_.is_open()) {
    net::post(socket_.get_executor(), [h = std::move(h)] {
      h(net::error::bad_descriptor, 0);
    });
    return;
  }
  for (;;) {
    auto off = static_cast<off_t>(offset);
    auto res = ::sendfile(socket_.native_handle(), fd, &off, max);
    if (res > 0) {
      net::post(socket_.get_executor(),
                [h = std::move(h), n = static_cast<std::size_t>(res)] {
                  h({}, n);
                });
      return;
    }
    if (res < 0 && errno == EINTR)
      continue;
    if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      socket_.async_wait(net::socket_base::wait_write,
                         [this, fd, offset, max,
                          h = std::move(h)](error_code ec) mutable {
                           if (ec)
                             return h(ec, 0);
                           try_sendfile(fd, offset, max, std::move(h));
                         });
      return;
    }
    // 0: the file is shorter than the stream said (never for a stream
    // file); an error: the socket or the file failed.
    error_code ec = res == 0 ? error_code{net::error::eof}
                             : error_code{errno, boost::system::system_category()};
    net::post(socket_.get_executor(), [h = std::move(h), ec] { h(ec, 0); });
    return;
  }
}

void tcp_transport::async_watch_peer(watch_handler h) {
  socket_.async_wait(
    net::socket_base::wait_read, [this, h = std::move(h)](error_code ec) mutable {
      if (ec)
        return h(ec, true);
      char c;
      auto n = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0)
        return h({}, false); // a pipelined request: leave it in the socket
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return async_watch_peer(std::move(h)); // a spurious wake-up
      h({}, true);
    });
}

void tcp_transport::close() {
  if (!socket_.is_open())
    return;
  error_code ec;
  socket_.shutdown(net::socket_base::shutdown_both, ec);
  socket_.close(ec);
}

bool tcp_transport::is_open() const {
  return socket_.is_open();
}

std::string tcp_transport::peer() const {
  return peer_;
}

} // namespace streamerd
