// server: streamerd's HTTP side (Boost.Beast on Asio).
//
// Contract:
// - `listen` binds the configured address; `run` serves on `threads`
//   network threads until SIGTERM/SIGINT and the drain that follows are over.
//   No network thread blocks on the stream's actors, except for the short
//   status queries of /metrics, /status.json and DELETE.
// - Reads of stream bytes go through one download actor per response (see
//   download_actor.hpp); their slices are written with scatter-gather writes
//   and never copied.
// - Uploads read the request body straight into pooled chunks and hand them
//   to the stream's writer without another copy.
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

  /// Stops every response still open and lets go of the network side's
  /// hold on the streams (after `run`). Destroy the server only after the
  /// actor system has no actors left: a download actor may hold the last
  /// reference to a connection, which needs the server's io_context.
  void shutdown();

  struct state;

private:
  std::shared_ptr<state> state_;
};

} // namespace streamerd
