// The CAF actor system configuration every kernel row uses.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/error.hpp"

#include "common.hpp"

namespace asyncstream::bench {

/// Registers asyncstream's error renderer, sets the scheduler size and
/// policy ("stealing", CAF's default, or "sharing") and then `extra`.
inline void setup_config(caf::actor_system_config& cfg, std::size_t threads,
                         const std::string& policy,
                         const caf_settings& extra = {}) {
  asyncstream::configure(cfg);
  cfg.set("scheduler.max-threads", static_cast<int>(threads));
  if (policy == "sharing")
    cfg.set("scheduler.policy", caf::atom("sharing"));
  else
    cfg.set("scheduler.policy", caf::atom("stealing"));
  for (auto& [key, value] : extra) {
    std::uint64_t n = 0;
    std::string unit;
    if (!split_setting(value, n, unit)) {
      std::cerr << "[bench] ignored CAF setting " << key << "=" << value
                << '\n';
      continue;
    }
    if (unit.empty()) {
      cfg.set(key, static_cast<std::int64_t>(n));
      continue;
    }
    std::chrono::nanoseconds d{n};
    if (unit == "us")
      d = std::chrono::microseconds{n};
    else if (unit == "ms")
      d = std::chrono::milliseconds{n};
    else if (unit == "s")
      d = std::chrono::seconds{n};
    cfg.set(key, caf::timespan{d});
  }
}

} // namespace asyncstream::bench
