// remote: reading a stream that lives on another node, over CAF's
// middleman (caf::io). See docs/scale-out.md.
//
// Contract:
// - Both nodes call `remote::configure(cfg)` on their `actor_system_config`
//   before making the system: it loads the middleman and registers the
//   wire types (remote_protocol.hpp) and the error renderer.
// - A node serves streams with a `publisher`: `publish` opens a port (CAF's
//   `publish`), `add` makes a stream readable under a name. The publisher
//   holds each added stream (a handle) until it is removed or the
//   publisher closes; closing ends every session (remote readers then get
//   `disconnected`). A publisher bounds the sessions it runs
//   (`publish_options::max_sessions`); an open beyond that is refused with
//   `resource_exhausted`. The stream's own cap (`max_readers`) counts
//   remote readers like local ones, and an open waits for a slot as a
//   local one does.
// - `open` returns a `stream` handle on the reading node: `open_reader`,
//   `async_reader`, `status`, `wait` and `stats` behave as for a local
//   stream (short reads, errors at their byte, the cap, timeouts,
//   positional reads, seeking). It has no writer, no file, and `close` or
//   `abort` only end the readers of this handle (the stream on its node is
//   untouched).
// - Each reader is pushed bytes ahead of its position, up to
//   `open_options::window` bytes (several messages in flight), so
//   throughput is not bound by the round trip. The session on the stream's
//   node reads ordinarily: on a tethered stream the reader holds the
//   producer at most a window ahead of what its user has read.
// - Failures: a reading node that disappears (killed, network gone) frees
//   its readers' slots and tethers on the stream's node (its sessions watch
//   it). A reader whose connection breaks gets the bytes that had arrived,
//   then `disconnected` (its context names the node and the position);
//   open the stream again and seek to `position()` to read on.
// - Lifetimes: destroy publishers and remote `stream` handles (and their
//   readers) before their actor system, as for local streams.
// - Blocking calls here (`publish`, `add`, `open`) block the calling
//   thread: call them from plain threads, never from inside an actor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/stream.hpp"

namespace asyncstream::remote {

/// The middleman's heartbeat interval that `configure` sets.
constexpr auto heartbeat_interval = std::chrono::seconds{1};

/// How long `configure` lets a peer stay silent before the middleman
/// declares its node dead (its sessions end, its readers get
/// `disconnected`).
constexpr auto connection_timeout = std::chrono::seconds{10};

/// Loads CAF's middleman into `cfg`, registers the wire types and the
/// asyncstream error renderer, and sets the middleman's heartbeat interval
/// and connection timeout (above; set them again afterwards to change
/// them). Call on both nodes before making the system.
void configure(caf::actor_system_config& cfg);

/// Options of a publisher.
struct publish_options {
  /// The address to listen on ("" for every address).
  std::string address = "127.0.0.1";
  /// Sessions (remote readers, open or waiting for a slot) at once; more
  /// opens are refused with `resource_exhausted`.
  std::size_t max_sessions = 1024;
};

/// Serves named streams of this node to other nodes.
class publisher {
public:
  /// Creates an invalid handle.
  publisher() noexcept;
  publisher(publisher&&) noexcept;
  publisher& operator=(publisher&&) noexcept;
  /// Closes the publisher (see `close`).
  ~publisher();

  /// Opens `port` (0: any free port) and serves the streams added later.
  static caf::expected<publisher> publish(caf::actor_system& sys,
                                          std::uint16_t port,
                                          publish_options opts = {});

  /// Makes `s` readable under `name`; fails with `invalid_argument` for an
  /// empty or taken name or an invalid stream.
  caf::error add(const std::string& name, stream s);

  /// Stops serving `name` and ends its sessions (their readers get
  /// `disconnected`). Returns whether the name was published.
  bool remove(const std::string& name);

  /// Returns the port the publisher listens on.
  std::uint16_t port() const noexcept;

  /// Returns the sessions running right now (open or waiting readers).
  std::size_t sessions() const;

  /// Stops listening and ends every session. Idempotent.
  void close();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Options of `open`.
struct open_options {
  /// Bytes each reader may be pushed ahead of its position (the byte
  /// credit; clamped to [64 KiB, 64 MiB]).
  std::uint64_t window = 8u << 20;
  /// The longest wait for the connection and the first answer.
  caf::timespan connect_timeout = std::chrono::seconds{10};
};

/// Opens stream `name` published on `host:port`. Fails with `not_found` if
/// the node has no stream of that name, `disconnected` if the node cannot
/// be reached, `protocol_error` if it speaks another protocol version.
caf::expected<stream> open(caf::actor_system& sys, const std::string& host,
                           std::uint16_t port, const std::string& name,
                           open_options opts = {});

} // namespace asyncstream::remote
