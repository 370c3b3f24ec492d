// tcp_transport: a transport over a connected TCP socket (Asio).
//
// Contract: owns the socket; see transport.hpp. Sends with writev(2) and
// sendfile(2); watches the peer with a readiness wait and a MSG_PEEK, so
// bytes of a pipelined request stay in the socket. TCP keep-alive probes
// (after 60 s idle, every 10 s, 6 of them) find a peer whose host vanished.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "transport.hpp"

namespace streamerd {

class tcp_transport final : public transport {
public:
  using socket_type = net::basic_stream_socket<net::ip::tcp, executor_type>;

  explicit tcp_transport(socket_type socket);

  ~tcp_transport() override;

  executor_type get_executor() const override;

  void async_read_some(net::mutable_buffer buf, io_handler h) override;

  void async_write_some(std::vector<net::const_buffer> bufs,
                        io_handler h) override;

  void async_sendfile_some(int fd, std::uint64_t offset, std::size_t max,
                           io_handler h) override;

  void async_watch_peer(watch_handler h) override;

  void close() override;

  bool is_open() const override;

  std::string peer() const override;

private:
  void try_sendfile(int fd, std::uint64_t offset, std::size_t max,
                    io_handler h);

  socket_type socket_;
  std::string peer_;
};

} // namespace streamerd
