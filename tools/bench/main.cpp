// asyncstream-bench: fan-out throughput and wake-up latency of the kernel,
// each beside a plain mutex + condition variable reference in the same run.
//
// The parent process only parses the command line, fills the source bytes
// and forks: every row (one kind, one reader count, one run) runs in its own
// child, which creates its own CAF actor system, so that VmHWM (the peak
// resident set) is that row's alone and no row inherits another's threads,
// chunk pool or heap. See docs/benchmarks.md.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "common.hpp"
#include "fanout.hpp"
#include "wakeup.hpp"

using namespace asyncstream::bench;

namespace {

bool write_all(int fd, const void* buf, std::size_t n) {
  auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    auto res = ::write(fd, p, n);
    if (res < 0 && errno == EINTR)
      continue;
    if (res <= 0)
      return false;
    p += res;
    n -= static_cast<std::size_t>(res);
  }
  return true;
}

std::size_t read_all(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    auto res = ::read(fd, p + done, n - done);
    if (res < 0 && errno == EINTR)
      continue;
    if (res <= 0)
      break;
    done += static_cast<std::size_t>(res);
  }
  return done;
}

/// Runs `f` (returning a plain record with `ok` and `error`) in a forked
/// child, or in this process when `fork_rows` is false.
template <class Record, class F>
Record run_row(const options& opts, F f) {
  if (opts.wait_idle_s > 0 && !wait_until_idle(0.10, opts.wait_idle_s))
    std::fprintf(stderr, "[bench] note: the machine stayed busy for %.0f s; "
                         "running anyway\n", opts.wait_idle_s);
  auto guarded = [&f]() {
    try {
      return f();
    } catch (const std::exception& e) {
      Record rec;
      set_error(rec.error, std::string{"exception: "} + e.what());
      return rec;
    }
  };
  if (!opts.fork_rows)
    return guarded();
  int fds[2];
  if (::pipe(fds) != 0) {
    Record rec;
    set_error(rec.error, std::string{"pipe: "} + std::strerror(errno));
    return rec;
  }
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  auto pid = ::fork();
  if (pid < 0) {
    Record rec;
    set_error(rec.error, std::string{"fork: "} + std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return rec;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(opts.row_timeout_s);
    Record rec = guarded();
    write_all(fds[1], &rec, sizeof(rec));
    ::close(fds[1]);
    std::fflush(nullptr);
    ::_exit(rec.ok ? 0 : 1);
  }
  ::close(fds[1]);
  Record rec;
  auto got = read_all(fds[0], &rec, sizeof(rec));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    // retry
  }
  if (got != sizeof(rec)) {
    rec = Record{};
    std::string why = "row process ended without a result";
    if (WIFSIGNALED(status)) {
      auto sig = WTERMSIG(status);
      why += sig == SIGALRM ? " (timed out after "
                                + std::to_string(opts.row_timeout_s) + " s)"
                            : std::string{" (signal "} + std::to_string(sig)
                                + ": " + strsignal(sig) + ")";
    } else if (WIFEXITED(status)) {
      why += " (exit code " + std::to_string(WEXITSTATUS(status)) + ")";
    }
    set_error(rec.error, why);
  }
  return rec;
}

std::string fmt(const char* format, double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, x);
  return buf;
}

/// The medians of one (kind, readers) row over its runs.
struct row_summary {
  kind what;
  std::size_t readers;
  std::uint64_t bytes = 0;
  double seconds = 0;
  double gbps = 0;
  double peak_rss_mib = 0;
  double baseline_rss_mib = 0;
  double rss_delta_mib = 0;
  double pool_mapped_mib = 0;
  double foreign_cpu_pct = 0;
  double ratio = -1; // < 0: no reference in this run
  /// kind::filebacked: GB/s against the `writer` row (memory storage).
  double ratio_to_memory = -1;
  /// kind::untethered: the stalled reader of the last run.
  int stalled_data_loss = 0;
  std::uint64_t stalled_read_bytes = 0;
};

/// Readers whose bytes a row's GB/s counts: all but the stalled one of the
/// untethered kind.
std::size_t counted_readers(kind what, std::size_t readers) {
  return what == kind::untethered && readers > 0 ? readers - 1 : readers;
}

row_summary summarize(kind what, std::size_t readers, std::uint64_t bytes,
                      const std::vector<fanout_record>& runs) {
  row_summary sum{what, readers, bytes};
  std::vector<double> secs, peak, base, delta, pool, foreign;
  for (auto& r : runs) {
    secs.push_back(r.seconds);
    peak.push_back(r.peak_rss_mib);
    base.push_back(r.baseline_rss_mib);
    delta.push_back(r.peak_rss_mib - r.baseline_rss_mib);
    pool.push_back(r.pool_mapped_mib);
    foreign.push_back(r.foreign_cpu_pct);
  }
  sum.seconds = median(secs);
  sum.gbps = static_cast<double>(counted_readers(what, readers))
             * static_cast<double>(bytes)
             / sum.seconds / 1e9;
  sum.peak_rss_mib = median(peak);
  sum.baseline_rss_mib = median(base);
  sum.rss_delta_mib = median(delta);
  sum.pool_mapped_mib = median(pool);
  sum.foreign_cpu_pct = median(foreign);
  if (!runs.empty()) {
    sum.stalled_data_loss = runs.back().stalled_data_loss;
    sum.stalled_read_bytes = runs.back().stalled_read_bytes;
  }
  return sum;
}

void print_fanout_header(const options& opts, std::uint64_t bytes) {
  std::printf("fan-out: %s stream, 64 KiB reads, one byte touched per 4 KiB, "
              "median of %d run(s); CAF scheduler: %zu %s worker(s); "
              "transfer actor: %s; memory: %s\n",
              format_size(bytes).c_str(), opts.runs,
              opts.scheduler_threads, opts.scheduler_policy.c_str(),
              opts.transfer_thread ? "own thread" : "on the scheduler",
              opts.warm_memory ? "warm (pre-faulted)" : "fresh (first touch)");
  std::printf("%-10s %7s %9s %8s %9s %13s %14s %9s %10s\n", "kind",
              "readers", "GB/s", "x ref", "seconds", "peak RSS MiB",
              "RSS delta MiB", "pool MiB", "other CPU");
  std::fflush(stdout);
}

/// JSON "bench" and "impl" of a row: the pushed kinds are benchmarks of
/// their own ("writer" with blocking readers, "untethered" counting its
/// fast readers), the others are fan-out implementations.
std::pair<const char*, const char*> json_names(kind what) {
  switch (what) {
    case kind::writer:
      return {"writer", "blocking"};
    case kind::untethered:
      return {"untethered", "fast"};
    case kind::filebacked:
      return {"filebacked", "file"};
    default:
      return {"fanout", to_string(what)};
  }
}

void print_fanout_row(const options& opts, const row_summary& r) {
  if (opts.json) {
    auto [bench, impl] = json_names(r.what);
    std::string extra;
    if (r.what == kind::untethered)
      extra = "\"window\":" + std::to_string(opts.window)
              + ",\"fast_readers\":" + std::to_string(r.readers - 1)
              + ",\"stalled_data_loss\":"
              + (r.stalled_data_loss ? "true" : "false")
              + ",\"stalled_read_bytes\":"
              + std::to_string(r.stalled_read_bytes) + ",";
    if (r.what == kind::filebacked)
      extra += "\"ratio_to_memory\":"
               + (r.ratio_to_memory < 0 ? std::string{"null"}
                                        : fmt("%.3f", r.ratio_to_memory))
               + ",";
    std::printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"readers\":%zu,"
                "\"bytes\":%llu,%s\"runs\":%d,\"seconds\":%.6f,\"gbps\":%.3f,"
                "\"peak_rss_mib\":%.1f,\"rss_delta_mib\":%.1f,"
                "\"baseline_rss_mib\":%.1f,\"pool_mapped_mib\":%.1f,"
                "\"ratio_to_reference\":%s,\"other_cpu_pct\":%.1f,"
                "\"scheduler_threads\":%zu,"
                "\"scheduler_policy\":\"%s\",\"transfer_thread\":%s,"
                "\"warm_memory\":%s,\"forked\":%s,\"checksum_ok\":true}\n",
                bench, impl, r.readers,
                static_cast<unsigned long long>(r.bytes), extra.c_str(),
                opts.runs,
                r.seconds, r.gbps, r.peak_rss_mib, r.rss_delta_mib,
                r.baseline_rss_mib, r.pool_mapped_mib,
                r.ratio < 0 ? "null" : fmt("%.3f", r.ratio).c_str(),
                r.foreign_cpu_pct, opts.scheduler_threads,
                opts.scheduler_policy.c_str(),
                opts.transfer_thread ? "true" : "false",
                opts.warm_memory ? "true" : "false",
                opts.fork_rows ? "true" : "false");
  } else {
    std::printf("%-10s %7zu %9.2f %8s %9.3f %13.1f %14.1f %9s %9.0f%%\n",
                to_string(r.what), r.readers, r.gbps,
                r.ratio < 0 ? "-" : fmt("%.2f", r.ratio).c_str(), r.seconds,
                r.peak_rss_mib, r.rss_delta_mib,
                r.what == kind::reference
                  ? "-"
                  : fmt("%.0f", r.pool_mapped_mib).c_str(),
                r.foreign_cpu_pct);
    if (r.what == kind::untethered)
      std::printf("  untethered: window %s; GB/s counts the %zu fast "
                  "readers; stalled reader 0 read %llu bytes, then %s\n",
                  format_size(opts.window).c_str(), r.readers - 1,
                  static_cast<unsigned long long>(r.stalled_read_bytes),
                  r.stalled_data_loss ? "got data_loss (as it must)"
                                      : "read to the end (no data_loss)");
    if (r.what == kind::filebacked && r.bytes != opts.bytes)
      std::printf("  filebacked: a generated %s stream (never whole in "
                  "memory); peak RSS %.1f MiB (goal <= 128)\n",
                  format_size(r.bytes).c_str(), r.peak_rss_mib);
    else if (r.what == kind::filebacked && r.ratio_to_memory > 0)
      std::printf("  filebacked: %.2fx the writer row (the same with memory "
                  "storage)\n", r.ratio_to_memory);
  }
  std::fflush(stdout);
}

void print_wakeup_header(const options& opts) {
  std::printf("\nwake-up latency: 1 byte, ping-pong, %zu iterations (+200 "
              "warm-up), gap %llu us, load %zu reader(s), priority %s, "
              "median of %d run(s); transfer actor: %s\n",
              opts.wakeup_iterations,
              static_cast<unsigned long long>(opts.wakeup_gap_us),
              opts.wakeup_load, opts.wakeup_priority.c_str(), opts.runs,
              opts.transfer_thread ? "own thread" : "on the scheduler");
  std::printf("%-12s %9s %9s %9s %9s %9s  %s\n", "impl", "p50 us", "p90 us",
              "p99 us", "max us", "mean us", "path");
  std::fflush(stdout);
}

void print_wakeup_row(const options& opts, const char* impl,
                      const char* path, const wakeup_record& r) {
  if (opts.json) {
    std::printf("{\"bench\":\"wakeup\",\"impl\":\"%s\",\"iterations\":%zu,"
                "\"load_readers\":%zu,\"priority\":\"%s\",\"gap_us\":%llu,\"runs\":%d,\"p50_us\":%.2f,\"p90_us\":%.2f,"
                "\"p99_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,"
                "\"transfer_thread\":%s,\"path\":\"%s\"}\n",
                impl, opts.wakeup_iterations, opts.wakeup_load,
                opts.wakeup_priority.c_str(),
                static_cast<unsigned long long>(opts.wakeup_gap_us),
                opts.runs, r.p50_us, r.p90_us, r.p99_us, r.max_us, r.mean_us,
                opts.transfer_thread ? "true" : "false", path);
  } else {
    std::printf("%-12s %9.2f %9.2f %9.2f %9.1f %9.2f  %s\n", impl, r.p50_us,
                r.p90_us, r.p99_us, r.max_us, r.mean_us, path);
  }
  std::fflush(stdout);
}

/// The settings of one fan-out row, from the command line.
fanout_config make_config(const options& opts, kind what, std::size_t readers,
                          const source_data& src) {
  fanout_config cfg;
  cfg.what = what;
  cfg.readers = readers;
  cfg.source = &src;
  cfg.scheduler_threads = opts.scheduler_threads;
  cfg.scheduler_policy = opts.scheduler_policy;
  cfg.transfer_thread = opts.transfer_thread;
  cfg.settings = opts.caf_set;
  cfg.warm_memory = opts.warm_memory;
  cfg.window = opts.window;
  cfg.file_dir = opts.file_dir;
  return cfg;
}

bool run_fanout(const options& opts) {
  std::fprintf(stderr, "[bench] filling %s of source bytes\n",
               format_size(opts.bytes).c_str());
  auto src = make_source_data(static_cast<std::size_t>(opts.bytes));
  bool ok = true;
  if (!opts.json)
    print_fanout_header(opts, opts.bytes);
  for (auto n : opts.readers) {
    std::map<kind, std::vector<fanout_record>> runs;
    for (int run = 1; run <= opts.runs; ++run) {
      for (auto k : opts.kinds) {
        auto cfg = make_config(opts, k, n, src);
        if (k == kind::untethered && n < 2) {
          if (run == 1)
            std::fprintf(stderr,
                         "[bench] note: untethered skipped for %zu reader(s): "
                         "it needs a stalled reader and at least one fast "
                         "one (meant for N = 100)\n", n);
          continue;
        }
        auto rec = run_row<fanout_record>(opts,
                                          [&] { return run_fanout_row(cfg); });
        if (!rec.ok) {
          std::fprintf(stderr,
                       "[bench] FAILED: %s, %zu readers, run %d: %s\n",
                       to_string(k), n, run, rec.error);
          ok = false;
          continue;
        }
        std::fprintf(stderr,
                     "[bench] %-9s readers=%-3zu run %d/%d: %.3f s, "
                     "%.2f GB/s, peak RSS %.1f MiB, other CPU %.0f%%\n",
                     to_string(k), n, run, opts.runs, rec.seconds,
                     static_cast<double>(counted_readers(k, n))
                       * static_cast<double>(opts.bytes)
                       / rec.seconds / 1e9,
                     rec.peak_rss_mib, rec.foreign_cpu_pct);
        if (k == kind::untethered)
          std::fprintf(stderr,
                       "[bench]   stalled reader: %s after %llu bytes\n",
                       rec.stalled_data_loss ? "data_loss" : "no data_loss",
                       static_cast<unsigned long long>(
                         rec.stalled_read_bytes));
        runs[k].push_back(rec);
      }
    }
    double ref_gbps = -1;
    if (auto i = runs.find(kind::reference);
        i != runs.end() && !i->second.empty())
      ref_gbps = summarize(kind::reference, n, opts.bytes, i->second).gbps;
    double memory_gbps = -1;
    if (auto i = runs.find(kind::writer);
        i != runs.end() && !i->second.empty())
      memory_gbps = summarize(kind::writer, n, opts.bytes, i->second).gbps;
    for (auto k : opts.kinds) {
      auto i = runs.find(k);
      if (i == runs.end() || i->second.empty())
        continue;
      auto sum = summarize(k, n, opts.bytes, i->second);
      if (ref_gbps > 0)
        sum.ratio = sum.gbps / ref_gbps;
      if (k == kind::filebacked && memory_gbps > 0)
        sum.ratio_to_memory = sum.gbps / memory_gbps;
      print_fanout_row(opts, sum);
    }
  }
  return ok;
}

/// The large file-backed row: a generated stream of --large-file bytes
/// that never exists whole in memory. Runs before the fan-out source is
/// filled, so the forked row's peak RSS holds only its own memory.
bool run_large_file(const options& opts) {
  auto cycle = make_source_data((std::size_t{1} << 20) + read_size);
  // The last 64 KiB repeat the first, so that a write at any offset of the
  // 1 MiB cycle is one contiguous piece.
  std::memcpy(cycle.bytes.data() + (std::size_t{1} << 20), cycle.bytes.data(),
              read_size);
  auto cfg = make_config(opts, kind::filebacked, opts.large_file_readers,
                         cycle);
  cfg.warm_memory = false; // the point of the row is what it needs itself
  cfg.generated_bytes = opts.large_file;
  std::vector<fanout_record> runs;
  bool ok = true;
  for (int run = 1; run <= opts.runs; ++run) {
    auto rec = run_row<fanout_record>(opts,
                                      [&] { return run_fanout_row(cfg); });
    if (!rec.ok) {
      std::fprintf(stderr, "[bench] FAILED: large filebacked, %zu readers, "
                           "run %d: %s\n", cfg.readers, run, rec.error);
      ok = false;
      continue;
    }
    std::fprintf(stderr,
                 "[bench] filebacked %s readers=%zu run %d/%d: %.3f s, "
                 "%.2f GB/s, peak RSS %.1f MiB\n",
                 format_size(opts.large_file).c_str(), cfg.readers, run,
                 opts.runs, rec.seconds,
                 static_cast<double>(cfg.readers)
                   * static_cast<double>(opts.large_file) / rec.seconds / 1e9,
                 rec.peak_rss_mib);
    runs.push_back(rec);
  }
  if (!runs.empty()) {
    if (!opts.json)
      print_fanout_header(opts, opts.large_file);
    print_fanout_row(opts, summarize(kind::filebacked, cfg.readers,
                                     opts.large_file, runs));
    if (!opts.json)
      std::printf("\n");
  }
  return ok;
}

/// The median of every figure of `rs`.
wakeup_record median_of(const std::vector<wakeup_record>& rs) {
  std::vector<double> p50, p90, p99, mx, mean, foreign;
  for (auto& r : rs) {
    p50.push_back(r.p50_us);
    p90.push_back(r.p90_us);
    p99.push_back(r.p99_us);
    mx.push_back(r.max_us);
    mean.push_back(r.mean_us);
    foreign.push_back(r.foreign_cpu_pct);
  }
  wakeup_record m;
  m.ok = 1;
  m.p50_us = median(p50);
  m.p90_us = median(p90);
  m.p99_us = median(p99);
  m.max_us = median(mx);
  m.mean_us = median(mean);
  m.foreign_cpu_pct = median(foreign);
  m.hops = rs.empty() ? 0 : rs.front().hops;
  for (int h = 0; h < m.hops; ++h) {
    std::vector<double> xs;
    for (auto& r : rs)
      xs.push_back(r.hop_p50_us[h]);
    m.hop_p50_us[h] = median(xs);
  }
  return m;
}

/// The names of detail::wake_trace's hops, in order.
constexpr const char* hop_names[] = {"produced", "queued",        "host_woke",
                                     "handler",  "answered",      "reader_queued",
                                     "reader_woke"};

/// With a traced build: one line per row, each hop's p50 after the write.
void print_hops(const char* impl, const wakeup_record& r) {
  if (r.hops == 0)
    return;
  std::printf("  %-9s hops (p50 us after the write):", impl);
  for (int h = 0; h < r.hops; ++h) {
    if (r.hop_p50_us[h] < 0)
      std::printf(" %s -", hop_names[h]);
    else
      std::printf(" %s %.2f", hop_names[h], r.hop_p50_us[h]);
  }
  std::printf("\n");
}

/// One wake-up row: an implementation in a configuration.
struct wakeup_row {
  std::string config; // "-" for the reference
  const char* impl;
  const char* path;
  wakeup_record (*fn)(const wakeup_config&);
  wakeup_config cfg;
  std::vector<wakeup_record> runs;
};

bool run_wakeups(const options& opts) {
  bool ok = true;
  wakeup_config base;
  base.iterations = opts.wakeup_iterations;
  base.gap_us = opts.wakeup_gap_us;
  base.scheduler_threads = opts.scheduler_threads;
  base.scheduler_policy = opts.scheduler_policy;
  base.transfer_thread = opts.transfer_thread;
  base.settings = opts.caf_set;
  base.load_readers = opts.wakeup_load;
  base.priority = opts.wakeup_priority;
  // The configurations of the kernel's rows: the named ones side by side,
  // or the one the other options describe.
  std::vector<wakeup_variant> variants;
  for (auto& name : opts.wakeup_configs) {
    wakeup_variant v;
    wakeup_variant_by_name(name, opts.scheduler_policy, v);
    variants.push_back(std::move(v));
  }
  bool named = !variants.empty();
  if (!named) {
    wakeup_variant v;
    v.name = opts.transfer_thread ? "thread" : opts.scheduler_policy;
    v.transfer_thread = opts.transfer_thread;
    v.policy = opts.scheduler_policy;
    variants.push_back(std::move(v));
  }
  std::vector<wakeup_row> rows;
  for (auto& v : variants) {
    auto cfg = base;
    cfg.transfer_thread = v.transfer_thread;
    cfg.scheduler_policy = v.policy;
    cfg.settings.insert(cfg.settings.end(), v.settings.begin(),
                        v.settings.end());
    rows.push_back({v.name, "kernel", kernel_wakeup_path, run_wakeup_kernel,
                    cfg, {}});
    rows.push_back({v.name, "writer", writer_wakeup_path, run_wakeup_writer,
                    cfg, {}});
    rows.push_back({v.name, "async", async_wakeup_path, run_wakeup_async, cfg,
                    {}});
    rows.push_back({v.name, "pingpong", pingpong_wakeup_path,
                    run_pingpong_kernel, cfg, {}});
  }
  rows.push_back({"-", "reference", reference_wakeup_path,
                  run_wakeup_reference, base, {}});
  rows.push_back({"-", "ref-pipe", ref_pipe_wakeup_path, run_wakeup_ref_pipe,
                  base, {}});
  rows.push_back({"-", "ref-actor", ref_actor_wakeup_path,
                  run_wakeup_ref_actor, base, {}});
  rows.push_back({"-", "ref-pingpong", ref_pingpong_wakeup_path,
                  run_pingpong_reference, base, {}});
  if (!opts.wakeup_rows.empty()) {
    auto& keep = opts.wakeup_rows;
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [&](const wakeup_row& row) {
                                return std::find(keep.begin(), keep.end(),
                                                 row.impl)
                                       == keep.end();
                              }),
               rows.end());
  }
  // Run by run, every row once per run: foreign load hits them alike.
  for (int run = 1; run <= opts.runs; ++run) {
    for (auto& row : rows) {
      auto rec = run_row<wakeup_record>(opts,
                                        [&] { return row.fn(row.cfg); });
      if (!rec.ok) {
        std::fprintf(stderr, "[bench] FAILED: wake-up %s %s, run %d: %s\n",
                     row.config.c_str(), row.impl, run, rec.error);
        ok = false;
        continue;
      }
      std::fprintf(stderr,
                   "[bench] wake-up %-14s %-9s run %d/%d: p50 %.2f us, p99 "
                   "%.2f us, other CPU %.0f%%\n",
                   row.config.c_str(), row.impl, run, opts.runs, rec.p50_us,
                   rec.p99_us, rec.foreign_cpu_pct);
      row.runs.push_back(rec);
    }
  }
  if (!named) {
    if (!opts.json)
      print_wakeup_header(opts);
    for (auto& row : rows)
      if (!row.runs.empty())
        print_wakeup_row(opts, row.impl, row.path, median_of(row.runs));
    if (!opts.json)
      for (auto& row : rows)
        if (!row.runs.empty())
          print_hops(row.impl, median_of(row.runs));
    return ok;
  }
  // Side by side: p50 against the own-thread configuration's, if it ran.
  auto p50_of = [&](const std::string& config, const char* impl) {
    for (auto& row : rows)
      if (row.config == config && std::strcmp(row.impl, impl) == 0
          && !row.runs.empty())
        return median_of(row.runs).p50_us;
    return -1.0;
  };
  if (!opts.json) {
    std::printf("\nwake-up latency by configuration: 1 byte, ping-pong, %zu "
                "iterations (+200 warm-up), gap %llu us, median of %d "
                "run(s), %zu scheduler worker(s)\n",
                opts.wakeup_iterations,
                static_cast<unsigned long long>(opts.wakeup_gap_us),
                opts.runs, opts.scheduler_threads);
    for (auto& v : variants)
      std::printf("  %-14s %s\n", v.name.c_str(), v.describe.c_str());
    std::printf("%-14s %-9s %9s %9s %9s %9s %9s %10s %10s\n", "config",
                "impl", "p50 us", "p90 us", "p99 us", "max us", "mean us",
                "p50/thread", "other CPU");
  }
  for (auto& row : rows) {
    if (row.runs.empty())
      continue;
    auto m = median_of(row.runs);
    auto own = row.config == "-" ? -1.0 : p50_of("thread", row.impl);
    if (opts.json) {
      std::printf("{\"bench\":\"wakeup\",\"config\":\"%s\",\"impl\":"
                  "\"%s\",\"iterations\":%zu,\"gap_us\":%llu,\"runs\":%d,"
                  "\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
                  "\"max_us\":%.2f,\"mean_us\":%.2f,"
                  "\"p50_ratio_to_thread\":%s,\"other_cpu_pct\":%.1f,"
                  "\"transfer_thread\":%s,\"scheduler_policy\":\"%s\"}\n",
                  row.config.c_str(), row.impl, opts.wakeup_iterations,
                  static_cast<unsigned long long>(opts.wakeup_gap_us),
                  opts.runs, m.p50_us, m.p90_us, m.p99_us, m.max_us,
                  m.mean_us,
                  own > 0 ? fmt("%.3f", m.p50_us / own).c_str() : "null",
                  m.foreign_cpu_pct, row.cfg.transfer_thread ? "true" : "false",
                  row.cfg.scheduler_policy.c_str());
    } else {
      std::printf("%-14s %-9s %9.2f %9.2f %9.2f %9.1f %9.2f %10s %9.0f%%\n",
                  row.config.c_str(), row.impl, m.p50_us, m.p90_us, m.p99_us,
                  m.max_us, m.mean_us,
                  own > 0 ? fmt("%.2f", m.p50_us / own).c_str() : "-",
                  m.foreign_cpu_pct);
    }
  }
  std::fflush(stdout);
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  switch (parse(argc, argv, opts, std::cerr)) {
    case parse_status::help:
      print_help(std::cout);
      return 0;
    case parse_status::error:
      return 2;
    case parse_status::run:
      break;
  }
  bool ok = true;
  if (opts.large_file > 0)
    ok = run_large_file(opts) && ok;
  if (!opts.skip_fanout && !opts.kinds.empty() && !opts.readers.empty())
    ok = run_fanout(opts) && ok;
  if (!opts.skip_wakeup)
    ok = run_wakeups(opts) && ok;
  if (!ok) {
    std::fprintf(stderr, "[bench] FAILED: see the lines above\n");
    return 1;
  }
  return 0;
}
