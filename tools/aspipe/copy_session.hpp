// copy_session: what both aspipe commands do once they have a pipe: copy
// standard input to the peer and the peer to standard output, end cleanly,
// and turn every failure into a message and an exit code.
//
// Contract:
// - `run_copy_session` owns nothing but its two copy threads; `pipe` must
//   stay valid until it returns (it closes the pipe before returning).
// - Clean end: standard input ends -> `close_write()`; the peer's bytes are
//   copied until `read` returns 0; then every byte (and the end) must be
//   acknowledged, and the peer gets `linger` to say it is done too. Only
//   then the result is `exit_ok`.
// - Giving up: the active side's pipe gives up by itself (its attempt
//   limit); the passive side gives up when the connection stayed down for
//   `reconnect_timeout` after the first one (or no peer came within
//   `first_timeout`, when set).
// - Messages go to spdlog (stderr); `--progress` lines too.
#pragma once

#include <chrono>
#include <optional>

#include <caf/error.hpp>

#include <caf/timespan.hpp>

#include "asyncstream/backed_pipe.hpp"

namespace aspipe {

/// Exit codes of aspipe (docs/aspipe.md).
enum exit_code : int {
  /// Both directions closed and acknowledged.
  exit_ok = 0,
  /// A local failure: standard input or output, listening, the system.
  exit_local_error = 1,
  /// A bad command line.
  exit_usage = 2,
  /// The connection was lost for good: the reconnection limit was reached
  /// (or, listening, the peer did not come back in time).
  exit_gave_up = 3,
  /// The peer broke the session: a refusal, a protocol error, lost bytes.
  exit_peer_error = 4,
};

/// The exit code for an error of the pipe: `exit_peer_error` for a
/// refusal, a protocol error or lost bytes, `exit_gave_up` otherwise.
int exit_code_of(const caf::error& err);

/// Options of one copy session.
struct copy_options {
  /// Print a progress line on stderr every second.
  bool progress = false;
  /// Passive side: give up when the connection stays down this long after
  /// it was up once.
  std::optional<caf::timespan> reconnect_timeout;
  /// Passive side: give up when no peer connects this long at the start.
  std::optional<caf::timespan> first_timeout;
  /// How long to wait for the peer's final goodbye once all is done.
  caf::timespan linger = std::chrono::seconds(5);
  /// Descriptors to copy from and to.
  int in_fd = 0;
  int out_fd = 1;
};

/// Copies until both directions are closed or the session fails; returns
/// the exit code. Closes `pipe`.
int run_copy_session(asyncstream::backed_pipe& pipe, const copy_options& opts);

} // namespace aspipe
