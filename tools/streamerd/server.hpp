// server: streamerd's network side: the listening socket, the network
// threads, signals and the drain. Each accepted connection is a
// `connection` (connection.hpp); everything about requests lives there.
//
// Contract:
// - `listen` binds the configured address; `run` serves on `threads`
//   network threads until SIGTERM/SIGINT and the drain that follows are over.
//   No network thread ever waits for an actor.
// - At most `limits.max_connections` connections are open; the next one gets
//   a 503 and is closed. When accept(2) fails for lack of descriptors or
//   memory the acceptor backs off (10 ms doubling to 1 s) instead of
//   retrying at once, and logs at most once per 10 s.
// - Destroy the server only after the actor system has no actors left: a
//   download actor may still post to a connection's strand, which needs the
//   server's io_context.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "config.hpp"
#include "registry.hpp"

namespace streamerd {

class server {
public:
  server(caf::actor_system& sys, const config& cfg, registry& reg);
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens; returns an error message, empty on success.
  std::string listen();

  /// Serves until a signal asks to stop and the drain is over.
  void run();

  /// Ends every connection still open (after `run`) and runs their
  /// handlers until they are gone, for at most a few seconds.
  void shutdown();

  struct state;

private:
  std::shared_ptr<state> state_;
};

} // namespace streamerd
