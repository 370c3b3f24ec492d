// relay_status: what a relay publishes about itself for /metrics and
// /status.json, read without a lock from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace streamerd {

/// Where a relay is (`/status.json`'s `relay.state`).
enum class relay_phase : int {
  /// Not started: waits for the first GET of its stream
  /// (`--relay-on-demand`).
  idle,
  /// Connecting, or waiting for the upstream's response head.
  connecting,
  /// Reading the upstream's body.
  receiving,
  /// Waiting out the backoff before the next attempt.
  backoff,
  /// The upstream stream ended; so did the local one.
  ended,
  /// The local stream failed (the upstream's failure, or the bound).
  failed,
};

/// The published state of one relay.
struct relay_status {
  /// The upstream URL, as given to --relay.
  std::string upstream;
  /// Bytes received from the upstream and written into the local stream.
  std::atomic<std::uint64_t> offset{0};
  /// The upstream stream's size as last seen (its /status.json, polled
  /// once a second while the relay is live, or a length in a response
  /// head); 0 until known.
  std::atomic<std::uint64_t> upstream_bytes{0};
  /// Attempts made after the first (every new connection to the upstream).
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<int> phase{static_cast<int>(relay_phase::connecting)};
  /// Whether it starts on the first GET of its stream.
  bool on_demand = false;

  /// Bytes the upstream has that the relay has not (0 when the relay is
  /// ahead of the last sample or the upstream size is not known).
  std::uint64_t lag() const noexcept {
    auto up = upstream_bytes.load(std::memory_order_relaxed);
    auto got = offset.load(std::memory_order_relaxed);
    return up > got ? up - got : 0;
  }

  relay_phase current() const noexcept {
    return static_cast<relay_phase>(phase.load(std::memory_order_relaxed));
  }
};

inline const char* to_string(relay_phase x) noexcept {
  switch (x) {
    case relay_phase::idle:
      return "idle";
    case relay_phase::connecting:
      return "connecting";
    case relay_phase::receiving:
      return "receiving";
    case relay_phase::backoff:
      return "backoff";
    case relay_phase::ended:
      return "ended";
    case relay_phase::failed:
      return "failed";
  }
  return "?";
}

} // namespace streamerd
