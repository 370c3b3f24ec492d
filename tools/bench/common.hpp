// Shared pieces of asyncstream-bench: the workload (touch + checksum), clocks,
// /proc/self/status readers, and the plain result records that a forked row
// sends back to the parent through a pipe.
//
// Contract: no CAF here; every function is usable in the parent before any
// thread or actor system exists (the parent forks one child per row).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace asyncstream::bench {

/// Size of one read (and of one reference chunk).
constexpr std::size_t read_size = 64 * 1024;

/// One byte is touched per this many stream bytes.
constexpr std::uint64_t touch_stride = 4096;

using clock = std::chrono::steady_clock;

/// The bytes every row streams, filled once in the parent before forking.
struct source_data {
  std::vector<std::byte> bytes;
  /// Checksum of `bytes` as a reader computes it.
  std::uint64_t checksum = 0;
};

/// Fills `n` pseudo-random bytes (xorshift64*, fixed seed) and their checksum.
source_data make_source_data(std::size_t n);

/// What one reader accumulates while it reads the stream in order.
struct reader_tally {
  /// Stream offset of the next byte.
  std::uint64_t pos = 0;
  /// Position-weighted sum of the touched bytes.
  std::uint64_t sum = 0;

  /// Touches the bytes of `[pos, pos + n)` that sit at a multiple of
  /// `touch_stride` (one per 4 KiB, wherever the read boundaries fall) and
  /// moves on. `p` points at the byte at `pos`.
  void touch(const std::byte* p, std::size_t n) noexcept {
    auto first = (pos + touch_stride - 1) & ~(touch_stride - 1);
    auto stop = pos + n;
    for (auto k = first; k < stop; k += touch_stride)
      sum += (static_cast<std::uint64_t>(p[k - pos]) + 1)
             * (k / touch_stride + 1);
    pos = stop;
  }
};

/// Reads a "Name:   1234 kB" line of /proc/self/status, in MiB (-1 if absent).
double proc_status_mib(const char* name);

/// System-wide CPU time from /proc/stat, in seconds (all CPUs added up).
struct cpu_times {
  double busy = 0;
  double total = 0;
};

/// Reads the "cpu" line of /proc/stat (zeros if unreadable).
cpu_times read_cpu_times();

/// CPU seconds (user + system) this process used so far.
double own_cpu_seconds();

/// Number of online CPUs.
unsigned cpu_count();

/// What the machine did while a row ran: its own CPU time against
/// everybody's, to tell a quiet run from one that shared the CPUs.
struct cpu_meter {
  cpu_times sys0 = read_cpu_times();
  double own0 = own_cpu_seconds();

  /// Share of all CPUs used by other processes since construction, over
  /// `wall` seconds, in percent.
  double foreign_pct(double wall) const {
    auto sys1 = read_cpu_times();
    auto own1 = own_cpu_seconds();
    auto foreign = (sys1.busy - sys0.busy) - (own1 - own0);
    if (foreign < 0 || wall <= 0)
      return 0;
    return 100.0 * foreign / (wall * cpu_count());
  }
};

/// Waits until the machine is idle (less than `max_busy` of all CPUs busy
/// over 300 ms), at most `limit_s` seconds. Returns false if it never was.
bool wait_until_idle(double max_busy, double limit_s);

/// Median of `xs` (mean of the two middle values for an even count).
double median(std::vector<double> xs);

/// Parses "256M", "64K", "1G", "100" (binary units; "MiB"/"MB" also
/// accepted). Returns false on garbage or overflow.
bool parse_size(const std::string& text, std::uint64_t& out);

/// Formats a byte count as "256 MiB" (or plain bytes when not a multiple).
std::string format_size(std::uint64_t n);

/// CAF settings given as text (`--caf-set KEY=VALUE`): an integer, or a
/// duration with a unit (ns, us, ms, s). cli.cpp checks the form.
using caf_settings = std::vector<std::pair<std::string, std::string>>;

/// Splits "123us" into 123 and "us"; false if it is not a number with an
/// optional unit of ns, us, ms or s.
inline bool split_setting(const std::string& text, std::uint64_t& n,
                          std::string& unit) {
  std::size_t i = 0;
  n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
    if (n > (std::uint64_t{1} << 40))
      return false;
    ++i;
  }
  if (i == 0)
    return false;
  unit = text.substr(i);
  return unit.empty() || unit == "ns" || unit == "us" || unit == "ms"
         || unit == "s";
}


// -- records a forked row sends back to the parent (plain bytes) -------------

struct fanout_record {
  /// Seconds from stream creation to the last reader done.
  double seconds = 0;
  /// VmHWM at the end of the row, MiB (the whole process, source included).
  double peak_rss_mib = 0;
  /// VmRSS when the row started (before the actor system), MiB.
  double baseline_rss_mib = 0;
  /// Share of all CPUs used by other processes during the row, percent.
  double foreign_cpu_pct = 0;
  /// Bytes the chunk pool mapped for the stream body, MiB (kernel rows).
  double pool_mapped_mib = 0;
  /// 1 if every reader saw exactly the source's bytes and checksum.
  int ok = 0;
  /// kind::untethered: 1 if the stalled reader got data_loss.
  int stalled_data_loss = 0;
  /// kind::untethered: bytes the stalled reader read (all checked) before
  /// the data_loss error or the end.
  std::uint64_t stalled_read_bytes = 0;
  /// What went wrong, if anything.
  char error[512] = {};
};

struct wakeup_record {
  int ok = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double max_us = 0;
  double mean_us = 0;
  /// Share of all CPUs used by other processes during the row, percent.
  double foreign_cpu_pct = 0;
  /// With a library built with ASYNCSTREAM_WAKE_TRACE: for each hop of
  /// detail::wake_trace, the p50 of its time after the write, microseconds
  /// (negative: the hop was not reached in most iterations).
  static constexpr int max_hops = 8;
  int hops = 0;
  double hop_p50_us[max_hops] = {};
  char error[512] = {};
};

/// Copies `msg` into a fixed-size error field.
void set_error(char (&field)[512], const std::string& msg);

} // namespace asyncstream::bench
