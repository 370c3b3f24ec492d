// The CAF actor system configuration every kernel row uses.
#pragma once

#include <cstddef>
#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include "asyncstream/error.hpp"

namespace asyncstream::bench {

/// Registers asyncstream's error renderer and sets the scheduler size and
/// policy ("stealing", CAF's default, or "sharing").
inline void setup_config(caf::actor_system_config& cfg, std::size_t threads,
                         const std::string& policy) {
  asyncstream::configure(cfg);
  cfg.set("scheduler.max-threads", static_cast<int>(threads));
  if (policy == "sharing")
    cfg.set("scheduler.policy", caf::atom("sharing"));
  else
    cfg.set("scheduler.policy", caf::atom("stealing"));
}

} // namespace asyncstream::bench
