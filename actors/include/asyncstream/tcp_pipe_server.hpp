// tcp_pipe_server: the passive side's listener: accepts TCP connections,
// reads each one's hello and hands it to a route that finds its pipe.
//
// Contract:
// - `start` binds and listens (port 0 picks a free port; `port()` tells
//   which) and accepts on a thread of its own (an Asio I/O context that
//   also runs the handshake deadlines).
// - Each accepted connection gets a thread that reads its hello, bounded
//   by `handshake_timeout` (a client that sends nothing, or too little, is
//   closed then). At most `max_handshakes` connections are in the
//   handshake at once; one more is refused at once ("too many connections
//   in the handshake") and closed. No thread outlives its handshake: idle
//   connections hold no thread of the server.
// - With the hello read, the route is called on that thread with the
//   transport and the hello; from then on the route owns the transport: it
//   hands it to a pipe (`backed_pipe::accept`, which sends the welcome), or
//   refuses it (`refuse`) and closes it. The route must return promptly
//   (the server's `stop` waits for it).
// - `stop()` (idempotent; the destructor calls it) stops accepting, closes
//   every connection still in the handshake, and waits for the threads of
//   the server (routes running included). It must not be called from the
//   route.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/pipe_handshake.hpp"
#include "asyncstream/pipe_transport.hpp"
#include "asyncstream/tcp_pipe_transport.hpp"

namespace asyncstream {

/// Options of `tcp_pipe_server`.
struct tcp_pipe_server_options {
  /// Local address to listen on (a name or a numeric address).
  std::string bind = "127.0.0.1";
  /// Port to listen on; 0 picks a free one.
  std::uint16_t port = 0;
  /// Connections in the handshake at once (at least 1).
  std::size_t max_handshakes = 16;
  /// Time a client has to send its whole hello.
  caf::timespan handshake_timeout = std::chrono::seconds(10);
  /// Options of every accepted socket.
  tcp_socket_options socket;
  /// Called with each connection that failed before its route (a bad or
  /// late hello, the limit), on the server's threads, possibly several at
  /// once (make it thread-safe); may be empty.
  std::function<void(const caf::error&)> on_error;
};

/// Counters of a server (each true at some moment of the call).
struct tcp_pipe_server_stats {
  /// Connections accepted.
  std::uint64_t accepted = 0;
  /// Connections refused because `max_handshakes` were in the handshake.
  std::uint64_t refused_busy = 0;
  /// Handshakes that failed (bad hello, timeout, closed, stop).
  std::uint64_t failed = 0;
  /// Hellos handed to the route.
  std::uint64_t routed = 0;
  /// Connections in the handshake right now.
  std::size_t in_handshake = 0;
};

/// Accepts TCP connections for backed pipes; see the contract above.
class tcp_pipe_server {
public:
  /// Takes an accepted connection whose hello was read.
  using route_fn
    = std::function<void(pipe_transport_ptr transport, pipe_hello hello)>;

  /// Binds, listens and starts accepting.
  static caf::expected<std::unique_ptr<tcp_pipe_server>>
  start(tcp_pipe_server_options opts, route_fn route);

  ~tcp_pipe_server();

  tcp_pipe_server(const tcp_pipe_server&) = delete;
  tcp_pipe_server& operator=(const tcp_pipe_server&) = delete;

  /// Returns the port the server listens on.
  std::uint16_t port() const;

  /// Returns the counters.
  tcp_pipe_server_stats stats() const;

  /// Stops accepting, closes the connections in the handshake, waits for
  /// the server's threads. Idempotent.
  void stop();

  /// Sends `reason` as a refusal on `transport` and closes it (a route's
  /// answer to a hello it does not take).
  static void refuse(pipe_transport& transport, const std::string& reason);

  /// @private
  struct impl;

private:
  explicit tcp_pipe_server(std::unique_ptr<impl> ptr);

  std::unique_ptr<impl> impl_;
};

} // namespace asyncstream
