// context: what every connection of one streamerd shares: the actor system,
// the settings, the streams, the daemon-wide counters and the list of open
// connections (for the drain).
//
// Contract:
// - Created by the server (or a test harness) before any connection and
//   destroyed after the last one; connections keep it alive through a
//   shared_ptr.
// - Thread-safe: the counters are atomics, the connection list has its mutex.
// - A `gauge_hold` adds one to a gauge while it lives: every waiting or open
//   thing holds one, so a gauge cannot drift when its owner ends in an
//   unexpected state.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <caf/fwd.hpp>

#include "config.hpp"
#include "registry.hpp"

namespace streamerd {

class connection;

/// The phases a timeout can end (the label of
/// `streamerd_timeouts_total{phase=...}`).
enum class timeout_phase { header, idle, send, body };

constexpr std::size_t timeout_phase_count = 4;

const char* to_string(timeout_phase x) noexcept;

/// Daemon-wide counters shown by /metrics.
struct counters {
  /// Connections open now.
  std::atomic<std::int64_t> connections{0};
  /// Connections accepted (and served) since the start.
  std::atomic<std::uint64_t> connections_total{0};
  /// Connections refused (503) because `max_connections` were open.
  std::atomic<std::uint64_t> connections_rejected{0};
  /// Failed accept(2) calls (descriptors, memory).
  std::atomic<std::uint64_t> accept_errors{0};
  /// Timeouts by phase.
  std::atomic<std::uint64_t> timeouts[timeout_phase_count] = {};
  /// GETs waiting for a reader slot.
  std::atomic<std::int64_t> waiting_slot{0};
  /// GETs waiting for a stream name to appear (`?wait=`).
  std::atomic<std::int64_t> waiting_name{0};
};

/// Adds one to a gauge for as long as it lives (or until `reset`).
class gauge_hold {
public:
  gauge_hold() noexcept = default;

  explicit gauge_hold(std::atomic<std::int64_t>& gauge) noexcept
    : gauge_(&gauge) {
    gauge_->fetch_add(1, std::memory_order_relaxed);
  }

  gauge_hold(gauge_hold&& other) noexcept : gauge_(other.gauge_) {
    other.gauge_ = nullptr;
  }

  gauge_hold& operator=(gauge_hold&& other) noexcept {
    if (this != &other) {
      reset();
      gauge_ = other.gauge_;
      other.gauge_ = nullptr;
    }
    return *this;
  }

  gauge_hold(const gauge_hold&) = delete;
  gauge_hold& operator=(const gauge_hold&) = delete;

  ~gauge_hold() {
    reset();
  }

  /// Gives the one back; idempotent.
  void reset() noexcept {
    if (gauge_ != nullptr) {
      gauge_->fetch_sub(1, std::memory_order_relaxed);
      gauge_ = nullptr;
    }
  }

  explicit operator bool() const noexcept {
    return gauge_ != nullptr;
  }

private:
  std::atomic<std::int64_t>* gauge_ = nullptr;
};

/// The shared state of one daemon's HTTP side.
struct server_context {
  server_context(caf::actor_system& sys, const config& cfg, registry& reg)
    : sys(sys), cfg(cfg), reg(reg) {
    // nop
  }

  caf::actor_system& sys;
  const config& cfg;
  registry& reg;
  counters stats;
  /// Set once a signal asked the daemon to stop: no new requests.
  std::atomic<bool> draining{false};

  /// Registers an open connection (for the drain).
  void add(connection* key, std::weak_ptr<connection> conn);

  /// Forgets a connection (from its destructor).
  void remove(connection* key);

  /// Returns the connections still open.
  std::vector<std::shared_ptr<connection>> open_connections();

  /// Returns how many connections are registered.
  std::size_t connection_count();

private:
  std::mutex mtx_;
  std::unordered_map<connection*, std::weak_ptr<connection>> connections_;
};

} // namespace streamerd
