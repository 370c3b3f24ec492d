// metrics: the text of `/metrics` (Prometheus exposition format 0.0.4) and
// of `/status.json` (the status page's data).
//
// Contract: reads only counters (the daemon's atomics and each stream's
// published `stream::stats()`): no message to any actor, no wait, so it is
// safe on the network threads however many streams there are.
#pragma once

#include <string>

#include "context.hpp"

namespace streamerd {

/// Renders the Prometheus text of the daemon and its streams.
std::string render_metrics(server_context& ctx);

/// Renders the status page's JSON.
std::string render_status_json(server_context& ctx);

/// Renders the Prometheus text of `reports` and the counters.
std::string render_metrics(const registry& reg, const counters& stats,
                           const std::vector<stream_report>& reports);

/// Renders the status page's JSON of `reports`.
std::string render_status_json(const registry& reg, const counters& stats,
                               const std::vector<stream_report>& reports);

} // namespace streamerd
