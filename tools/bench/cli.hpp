// Command line of asyncstream-bench.
//
// A small hand-written parser: the tool has a dozen flat options, and a
// parser library would add a build dependency (Boost.Program_options is not
// part of the project's build environment) or pull CAF's INI-style config
// (which wants `--caf#...` spellings and its own help format) into the
// parent process, which must stay free of CAF until it forks its rows.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace asyncstream::bench {

/// The reader kinds of the fan-out benchmark. `writer`, `untethered` and
/// `filebacked` feed the stream from a producer thread through
/// `stream_writer` (push mode); they are not in the default --kinds.
enum class kind {
  blocking,
  actor,
  zerocopy,
  reference,
  writer,
  untethered,
  filebacked,
};

const char* to_string(kind k) noexcept;

struct options {
  std::vector<std::size_t> readers{1, 10, 100};
  std::uint64_t bytes = std::uint64_t{256} << 20;
  /// Retention window of the `untethered` kind (stream_options::retention).
  std::uint64_t window = std::uint64_t{64} << 20;
  int runs = 1;
  bool json = false;
  std::vector<kind> kinds{kind::blocking, kind::actor, kind::zerocopy,
                          kind::reference};
  bool skip_fanout = false;
  bool skip_wakeup = false;
  std::size_t wakeup_iterations = 10000;
  /// Pause between two wake-up iterations (0: ping-pong at once).
  std::uint64_t wakeup_gap_us = 0;
  std::size_t wakeup_load = 0;
  std::string wakeup_priority = "normal";
  /// Wake-up rows to run (empty: all).
  std::vector<std::string> wakeup_rows;
  /// CAF scheduler workers ("scheduler.max-threads").
  std::size_t scheduler_threads = 2;
  /// CAF scheduler policy: "stealing" or "sharing".
  std::string scheduler_policy = "sharing";
  /// stream_options::transfer_thread: the transfer actor on its own thread
  /// (the library's default) or on CAF's scheduler.
  bool transfer_thread = true;
  /// More CAF settings for every row (`--caf-set KEY=VALUE`, repeatable).
  std::vector<std::pair<std::string, std::string>> caf_set;
  /// Named wake-up configurations run side by side (`--wakeup-configs`);
  /// empty: one, from --transfer-on-scheduler and --scheduler-policy.
  std::vector<std::string> wakeup_configs;
  /// Touch the stream's memory before the clock starts (the chunk pool, or
  /// the reference's chunk arena), as in a process that already ran a
  /// stream: measures the steady state instead of first-touch page faults.
  bool warm_memory = false;
  /// Directory of the file-backed kinds' unnamed stream files (empty:
  /// $TMPDIR, else /tmp).
  std::string file_dir;
  /// Size of the large file-backed row (0: not run).
  std::uint64_t large_file = 0;
  /// Readers of the large file-backed row.
  std::size_t large_file_readers = 10;
  /// Run every row in a forked child (per-row peak RSS).
  bool fork_rows = true;
  /// Before each row, wait up to this many seconds for the machine to be
  /// idle (0: do not wait).
  double wait_idle_s = 0;
  /// A row that takes longer than this is killed and reported as failed.
  unsigned row_timeout_s = 120;
};

/// What `parse` decided.
enum class parse_status { run, help, error };

/// Parses `argv`; on error writes a message to `err`.
parse_status parse(int argc, char** argv, options& opts, std::ostream& err);

/// Writes the usage text.
void print_help(std::ostream& out);

} // namespace asyncstream::bench
