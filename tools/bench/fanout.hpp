// The fan-out rows: N readers read one S-byte stream in full at once.
//
// Contract: `run_fanout_row` runs one row in the calling process (the
// caller forks first when it wants a per-row peak RSS): it creates the CAF
// actor system (kernel kinds only), times the row from `stream::make` (or the
// reference writer's start) until the last reader is done, checks every
// reader's byte count and checksum, and reads VmHWM before tearing down.
#pragma once

#include <cstddef>
#include <string>

#include "cli.hpp"
#include "common.hpp"

namespace asyncstream::bench {

struct fanout_config {
  kind what = kind::blocking;
  std::size_t readers = 1;
  const source_data* source = nullptr;
  std::size_t scheduler_threads = 2;
  std::string scheduler_policy = "sharing";
  bool transfer_thread = true;
  /// More CAF settings (`--caf-set`).
  caf_settings settings;
  bool warm_memory = false;
  /// Retention window of kind::untethered.
  std::uint64_t window = std::uint64_t{64} << 20;
  /// Directory of kind::filebacked's stream file (empty: the default).
  std::string file_dir;
  /// Push kinds: if not 0, the producer writes this many bytes, cycling
  /// through `source` (which must hold at least 1 MiB + 64 KiB), and the
  /// readers are checked against the producer's own checksum.
  std::uint64_t generated_bytes = 0;
};

fanout_record run_fanout_row(const fanout_config& cfg);

} // namespace asyncstream::bench
