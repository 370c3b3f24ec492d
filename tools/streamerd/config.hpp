// config: streamerd's settings, as parsed from its command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay_policy.hpp"
#include "relay_spec.hpp"

namespace streamerd {

/// A stream given on the command line.
struct source_spec {
  enum class kind { file, stdin_fd, command };
  std::string name;
  kind what = kind::file;
  /// The file's path, or the command for `/bin/sh -c`.
  std::string arg;
};

/// What one client may take, and for how long (docs/streamerd.md, "Limits").
/// Timeouts are in seconds; the defaults follow nginx's where nginx has one.
struct limits {
  /// Time to receive a request's headers, from its first byte (or from the
  /// accept for a connection's first request). nginx:
  /// `client_header_timeout 60s`.
  std::uint64_t header_timeout_s = 60;
  /// Idle time allowed between two requests of a keep-alive connection.
  /// nginx: `keepalive_timeout 75s`.
  std::uint64_t keepalive_timeout_s = 75;
  /// Time a response may wait for the client to accept any byte (between
  /// two successful writes, not for the whole response). nginx:
  /// `send_timeout 60s`.
  std::uint64_t send_timeout_s = 60;
  /// Time an upload may go without sending a body byte. nginx:
  /// `client_body_timeout 60s`.
  std::uint64_t body_timeout_s = 60;
  /// Connections open at once; the next one gets a 503 and is closed.
  /// nginx: `worker_connections 512` per worker (two workers on two cores).
  std::size_t max_connections = 1024;
  /// Streams listed at once; an upload over it gets a 503.
  std::size_t max_streams = 1000;
  /// Largest request header block (then 431). nginx:
  /// `large_client_header_buffers 4 8k`.
  std::size_t max_header_bytes = 16 * 1024;
  /// Largest stream an upload may make; none: as large as the disk (file
  /// storage) or memory (memory storage) allows.
  std::optional<std::uint64_t> max_stream_bytes;
  /// Free chunk memory the daemon keeps for reuse (the rest goes back to
  /// the kernel).
  std::uint64_t pool_cache_bytes = 64ull << 20;
};

struct config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::vector<source_spec> sources;
  bool demo = true;
  std::size_t max_readers = 100;
  std::uint64_t queue_timeout_s = 10;
  std::uint64_t retry_after_s = 5;
  std::uint64_t max_wait_s = 60;
  /// "file" (stream files: bounded memory, sendfile(2) to clients) or
  /// "memory".
  std::string storage = "file";
  std::string file_dir;
  std::optional<std::uint64_t> retention;
  std::uint64_t drain_timeout_s = 10;
  /// Network threads; 0: one per core (set in main).
  std::size_t threads = 0;
  std::string log_level = "info";
  streamerd::limits limits;
  /// The streams mirrored from upstream streamerds (`--relay`), and how
  /// hard their relays try.
  std::vector<relay_spec> relays;
  relay_limits relay;
  /// Relays start on the first GET of their stream, not at the start.
  bool relay_on_demand = false;
};

} // namespace streamerd
