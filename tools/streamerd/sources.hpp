// sources: the streams streamerd makes itself: uploads' streams, the ones
// named on the command line (a file, standard input, a command's output) and
// the built-in demo stream.
//
// Contract: `make_stream` applies the daemon's storage options to every
// stream. `start_sources` runs from `main` before the network starts; a
// command's child process is reaped by a thread of its own that logs how it
// exited.
#pragma once

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"
#include "config.hpp"
#include "registry.hpp"

namespace streamerd {

/// Makes a stream of `src` with the daemon's storage settings.
caf::expected<asyncstream::stream>
make_stream(caf::actor_system& sys, const config& cfg, asyncstream::source src);

/// Adds the command line's streams and the demo stream to `reg`; returns an
/// error message (empty on success).
std::string start_sources(caf::actor_system& sys, const config& cfg,
                          registry& reg);

/// Logs the end of `e`'s stream once it is final (and marks a failure).
void log_when_final(caf::actor_system& sys, const registry::entry_ptr& e);

} // namespace streamerd
