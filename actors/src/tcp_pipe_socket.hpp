// tcp_pipe_socket: the TCP transport's class, shared by the connector and
// the server inside the library (not installed).
//
// Contract: see tcp_pipe_transport.hpp. `set_io_timeout` bounds every later
// blocking call (a read or write that waits longer fails with
// `errc::timeout`); zero removes the bound. The handshakes use it.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include <caf/timespan.hpp>

#include "asyncstream/pipe_transport.hpp"

namespace asyncstream::detail {

/// Renders a duration for error texts ("1500 ms").
inline std::string show_duration(caf::timespan x) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
  return std::to_string(ms) + " ms";
}

class tcp_socket_transport final : public pipe_transport {
public:
  /// Takes `fd` (a connected socket); `name` is what `describe()` says.
  tcp_socket_transport(int fd, std::string name);

  ~tcp_socket_transport() override;

  caf::expected<std::size_t> read(void* buf, std::size_t n) override;

  caf::error write(const void* data, std::size_t n) override;

  caf::error write(const std::vector<slice>& xs) override;

  void close() noexcept override;

  std::string describe() const override;

  /// Bounds each blocking call (SO_RCVTIMEO and SO_SNDTIMEO).
  caf::error set_io_timeout(caf::timespan timeout);

private:
  /// Counts a call in; false once closed.
  bool enter();

  /// Counts a call out; releases the descriptor when closed and the last
  /// call left.
  void leave();

  /// Turns a failed system call into the transport's error.
  caf::error fail(int code, const char* what);

  bool is_closed();

  int fd_;
  std::string name_;
  std::mutex mtx_;
  int users_ = 0;
  bool closed_ = false;
  bool released_ = false;
};

} // namespace asyncstream::detail
