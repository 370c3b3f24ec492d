// pipe_faults: connections that break on purpose, for testing code built on
// `backed_pipe` (our own tests and yours).
//
// Contract:
// - `make_faulty_transport` wraps a transport and, from a seed, cuts it
//   after a random number of bytes (counted over both directions; a write
//   that crosses the budget hands its first bytes over and then cuts, so
//   the peer sees half a frame) and stalls random calls for a random
//   while. A cut closes the wrapped transport (both ends see it) and
//   returns `closed` ("injected cut after N bytes"). Same seed, same
//   budgets and stalls; the thread timing is not reproduced.
// - `make_memory_connector` gives an active pipe a connector whose every
//   attempt makes an in-process pair, wraps the client end in a faulty
//   transport (seeded with `plan.seed + attempt`), runs the server half of
//   the handshake on a thread of its own and hands the server end to
//   `accept` (usually a passive pipe's `accept`), and performs the client
//   half itself. It honours the attempt's `cancel_token` (the pair is
//   closed). The connector returns only after the server half returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <caf/error.hpp>

#include "asyncstream/pipe_handshake.hpp"
#include "asyncstream/pipe_transport.hpp"

namespace asyncstream::testing {

/// What goes wrong, and when.
struct fault_plan {
  /// Seeds every random choice.
  std::uint64_t seed = 0;
  /// A connection is cut after a number of bytes drawn from
  /// [min_bytes, max_bytes]; `max_bytes == 0`: never cut.
  std::uint64_t min_bytes = 0;
  std::uint64_t max_bytes = 0;
  /// Chance, in 1/1000, that a call stalls first.
  unsigned stall_per_mille = 0;
  /// Longest stall.
  std::chrono::microseconds max_stall{0};
  /// In-process pairs: bytes buffered per direction.
  std::size_t buffer = 64 * 1024;
};

/// Wraps `inner`; see the contract.
pipe_transport_ptr make_faulty_transport(pipe_transport_ptr inner,
                                         fault_plan plan);

/// Takes the server end of a new connection and the hello read from it.
using pipe_acceptor
  = std::function<caf::error(pipe_transport_ptr, const pipe_hello&)>;

/// Makes a connector over in-process pairs; see the contract.
pipe_connector make_memory_connector(pipe_acceptor accept, fault_plan plan);

} // namespace asyncstream::testing
