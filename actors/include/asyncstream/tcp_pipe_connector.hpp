// tcp_pipe_connector: the active side's `pipe_connector` over TCP.
//
// Contract:
// - Each call (one per attempt of the pipe, on the pipe's connector thread)
//   connects to `host:port` (`tcp_connect`), then performs the hello of
//   pipe_handshake.hpp with the session it learned from the first welcome
//   (0 until then) and the local reader's position, and returns the
//   transport with the remote reader's position.
// - The whole attempt (resolve, connect, handshake) ends within
//   `connect_timeout` (`errc::timeout`), and promptly once the request's
//   cancel token is canceled (`errc::canceled`); on every error the socket
//   is closed.
// - A welcome naming another session than the one asked for is a
//   `protocol_error`; a refusal is `errc::closed` with the peer's reason.
// - The connector is a value: copies share the learned session id. It must
//   serve one pipe (the session belongs to that pipe).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <caf/timespan.hpp>

#include "asyncstream/pipe_transport.hpp"
#include "asyncstream/tcp_pipe_transport.hpp"

namespace asyncstream {

/// Options of `tcp_connector`.
struct tcp_connector_options {
  /// Deadline of one attempt: resolve, connect and handshake.
  caf::timespan connect_timeout = std::chrono::seconds(10);
  /// Options of the socket.
  tcp_socket_options socket;
  /// Called (on the connector's thread) with the session id of every
  /// welcome; may be empty.
  std::function<void(std::uint64_t session)> on_session;
};

/// Returns a connector that reaches the pipe server at `host:port`.
pipe_connector tcp_connector(std::string host, std::uint16_t port,
                             tcp_connector_options opts = {});

} // namespace asyncstream
