// A seeded simulation of the kernel on the deterministic harness
// (asyncstream/testing/fixture.hpp).
//
// Contract:
// - `run_seed(seed)` builds a random stream configuration from the seed
//   (memory or file storage, pulled or pushed source, capacity, declared
//   length, retention window tethered or untethered, read-ahead, reader
//   cap), plays a random schedule of source events, reader operations and
//   stream operations against the transfer and readers-monitor actors, and
//   runs the actors' messages in an order the seed chooses. After every step
//   it checks the kernel's invariants; at the end it drains the stream
//   (the source finishes, every reader reads to its end or error and
//   closes) and checks the final state.
// - The same seed plays the same schedule: `run_seed` is a pure function of
//   the seed and the code (no clock, no thread, no global randomness).
// - On a violation the outcome says which invariant broke, the seed, the
//   configuration, the schedule so far and the command that replays it.
// - Single-threaded; each call makes and destroys its own actor system.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace asyncstream::sim {

/// How `run_seed` reports.
struct options {
  /// Prints each step of the schedule to stderr as it runs.
  bool trace = false;
  /// The command that replays a seed, without the seed (the failure report
  /// prints it followed by `--seed N`).
  std::string replay_command = "asyncstream-simulation";
};

/// What one seed did.
struct outcome {
  /// No invariant broke.
  bool ok = true;
  /// On failure: the violation, seed, configuration, schedule and replay
  /// command; empty otherwise.
  std::string report;
  /// The schedule's steps (actions and messages run).
  std::uint64_t steps = 0;
  /// Messages the actors handled.
  std::uint64_t messages = 0;
  /// Answers the readers checked.
  std::uint64_t answers = 0;
  /// How often each kind of event happened (answers by kind and outcome,
  /// owner deaths, withdraws, opens, checks).
  std::map<std::string, std::uint64_t> coverage;
};

/// Plays seed `seed`.
outcome run_seed(std::uint64_t seed, const options& opts = {});

/// Returns the configuration seed `seed` plays, in one line.
std::string describe_config(std::uint64_t seed);

} // namespace asyncstream::sim
