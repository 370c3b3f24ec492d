// transport: the byte pipe under one HTTP connection. The daemon uses TCP
// sockets (tcp_transport.hpp); the request fuzzer uses an in-memory one, so
// whole requests run through the real connection code without sockets.
//
// Contract:
// - Every operation is asynchronous and completes on `get_executor()` (a
//   strand: one connection's handlers never run at the same time). Each
//   handler runs exactly once, also after `close()` (then with
//   `operation_aborted` or a similar error).
// - At most one read, one write or sendfile, and one `async_watch_peer` are
//   pending at a time; the caller keeps the buffers alive until the handler
//   has run.
// - `close()` is idempotent and ends every pending operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>

namespace streamerd {

namespace net = boost::asio;
using error_code = boost::system::error_code;

class transport {
public:
  using executor_type = net::strand<net::io_context::executor_type>;
  using io_handler = std::function<void(error_code, std::size_t)>;
  /// `gone`: the peer closed its side or reset the connection.
  using watch_handler = std::function<void(error_code, bool gone)>;

  virtual ~transport() = default;

  /// The strand every handler of this transport runs on.
  virtual executor_type get_executor() const = 0;

  /// Reads some bytes into `buf` (at least one, or an error; `eof` at the
  /// peer's end of stream).
  virtual void async_read_some(net::mutable_buffer buf, io_handler h) = 0;

  /// Writes some of `bufs` (a gather write; at least one byte or an error).
  virtual void async_write_some(std::vector<net::const_buffer> bufs,
                                io_handler h)
    = 0;

  /// Sends up to `max` bytes of file `fd` from `offset` (sendfile(2) on a
  /// socket): at least one byte or an error.
  virtual void async_sendfile_some(int fd, std::uint64_t offset,
                                   std::size_t max, io_handler h)
    = 0;

  /// Completes once the peer sent more bytes (they stay unread: `gone` is
  /// false) or went away (`gone` is true). Used while a response waits, to
  /// notice a client that left.
  virtual void async_watch_peer(watch_handler h) = 0;

  /// Closes the connection; pending operations end with an error.
  virtual void close() = 0;

  /// Whether `close()` was not called yet.
  virtual bool is_open() const = 0;

  /// "address:port" of the peer, for the log.
  virtual std::string peer() const = 0;
};

} // namespace streamerd
