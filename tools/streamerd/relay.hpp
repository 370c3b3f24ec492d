// relay: `--relay NAME=URL`: local stream NAME mirrors a stream of an
// upstream streamerd while it is produced (docs/relays.md).
//
// Each relay is an HTTP/1.1 client (Boost.Beast over Asio) that GETs the
// upstream stream and writes its body into a pushed local stream: Beast's
// parser decodes the body from the read buffer into pooled chunks, which go
// to the stream's writer as slices without another copy, as an upload's
// chunked body does (upload.hpp). When the connection breaks
// (reset, truncated body, no byte for --relay-idle-timeout) it asks again
// from the next byte (`Range: bytes=N-1-`, relay_policy.hpp) after a
// backoff; it fails the local stream only when the upstream says its
// stream failed (or is gone), or after --relay-retries failed attempts in a
// row. A clean end upstream (the final chunk, or the whole Content-Length)
// ends the local stream with exactly the upstream's bytes.
//
// Contract:
// - All relays run on one thread of their own (an io_context): nothing of
//   theirs runs on the network threads or blocks an actor.
// - `start` makes and lists every relay's stream before the server takes
//   requests, so a GET for NAME finds it (live, filling) from the start.
// - `stop` ends every relay still running (its stream fails with "streamerd
//   shut down"), and returns once the relay thread is gone.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "config.hpp"
#include "registry.hpp"

namespace streamerd {

class relay_service {
public:
  relay_service(caf::actor_system& sys, const config& cfg, registry& reg);
  ~relay_service();

  relay_service(const relay_service&) = delete;
  relay_service& operator=(const relay_service&) = delete;

  /// Makes and lists the relays' streams and starts the relay thread;
  /// returns an error message (empty on success).
  std::string start();

  /// Stops every relay and joins the relay thread; idempotent.
  void stop();

  struct state;

private:
  std::unique_ptr<state> state_;
};

} // namespace streamerd
