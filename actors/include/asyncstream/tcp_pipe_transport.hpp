// tcp_pipe_transport: a `pipe_transport` over a connected TCP socket, and
// the connect that makes one (resolve, connect with a deadline, cancel).
//
// Contract:
// - A TCP transport owns its socket. `read` and `write` block (one thread
//   each, as pipe_transport.hpp says); `close()` from any thread shuts the
//   socket down in both directions, which wakes both at once (they return
//   `closed`), and the descriptor is released as soon as neither is inside
//   a call (at the latest by the destructor).
// - Writes of slices are one gather write (`sendmsg`) per batch of up to
//   1024 slices; writes never raise SIGPIPE.
// - Every socket gets TCP_NODELAY, keep-alive probes and a user timeout
//   (`tcp_socket_options`), so a peer whose host vanished is noticed even
//   while bytes wait to be acknowledged.
// - `tcp_connect` returns within `timeout` (`errc::timeout`), or promptly
//   once `cancel` is canceled (`errc::canceled`); Boost.Asio does the
//   resolving and connecting on an I/O context of the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/pipe_transport.hpp"

namespace asyncstream {

/// Socket options of every TCP transport.
struct tcp_socket_options {
  /// Idle time before the first keep-alive probe.
  caf::timespan keepalive_idle = std::chrono::seconds(10);
  /// Time between two probes.
  caf::timespan keepalive_interval = std::chrono::seconds(5);
  /// Unanswered probes after which the connection fails.
  int keepalive_count = 3;
  /// How long sent bytes may stay unacknowledged before the connection
  /// fails (TCP_USER_TIMEOUT); zero keeps the system's default (minutes).
  caf::timespan user_timeout = std::chrono::seconds(30);
};

/// Takes a connected TCP socket `fd` (closed on error too), applies `opts`
/// and wraps it. `describe()` names both endpoints.
caf::expected<pipe_transport_ptr>
make_tcp_transport(int fd, const tcp_socket_options& opts = {});

/// Resolves `host` and connects to `port` within `timeout`; a canceled
/// `cancel` (may be null) ends the attempt with `errc::canceled`.
caf::expected<pipe_transport_ptr>
tcp_connect(const std::string& host, std::uint16_t port, caf::timespan timeout,
            const cancel_token_ptr& cancel = nullptr,
            const tcp_socket_options& opts = {});

} // namespace asyncstream
