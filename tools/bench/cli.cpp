#include "cli.hpp"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "common.hpp"
#include "wakeup.hpp"

namespace asyncstream::bench {

const char* to_string(kind k) noexcept {
  switch (k) {
    case kind::blocking:
      return "blocking";
    case kind::actor:
      return "actor";
    case kind::zerocopy:
      return "zerocopy";
    case kind::reference:
      return "reference";
    case kind::writer:
      return "writer";
    case kind::untethered:
      return "untethered";
    case kind::filebacked:
      return "filebacked";
  }
  return "?";
}

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (auto c : text) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

bool parse_uint(const std::string& text, std::uint64_t max,
                std::uint64_t& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+')
    return false;
  errno = 0;
  char* end = nullptr;
  auto x = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0' || x > max)
    return false;
  out = x;
  return true;
}

} // namespace

void print_help(std::ostream& out) {
  out << R"(Usage: asyncstream-bench [options]

Fan-out throughput: an in-memory source of --bytes pseudo-random bytes
(source::from_function, 64 KiB per call) is read in full from offset 0 by N
readers at once, 64 KiB per read, touching one byte per 4 KiB and checking a
checksum. A fresh stream per row; each row runs in its own forked process so
that its peak RSS (VmHWM) is its own. Wake-up latency: a writer makes one
byte available, a blocked reader returns; p50/p99 over the iterations.

Options:
  --readers LIST          reader counts, comma separated      [1,10,100]
  --bytes SIZE            stream size; K, M, G suffixes (binary units)
                                                               [256M]
  --runs R                repeat each row R times, report the median  [1]
  --kinds LIST            fan-out kinds, comma separated, any of
                          blocking,actor,zerocopy,reference,writer,
                          untethered,filebacked (the last three only when
                          asked for)
                                                 [blocking,actor,zerocopy,reference]
  --window SIZE           retention window of the untethered kind  [64M]
  --file-dir DIR          where the file-backed rows put their (unnamed)
                          stream files                  [$TMPDIR or /tmp]
  --large-file SIZE       also run one large file-backed row first: a
                          generated SIZE-byte stream (never in memory
                          whole) read by --large-file-readers readers;
                          reports its peak RSS                [off]
  --large-file-readers N  readers of the large file-backed row   [10]
  --json                  one JSON object per row on stdout (no table)
  --skip-fanout           run only the wake-up benchmark
  --skip-wakeup           run only the fan-out benchmark
  --wakeup-iterations N   wake-up iterations                  [10000]
  --wakeup-gap-us N       sleep N microseconds before each wake-up, so
                          that the waiting side has gone idle  [0]
  --wakeup-priority P     how the rows' own threads (writer, blocking
                          reader, echo; not CAF's workers nor the
                          stream's threads) ask to be scheduled:
                          normal; slice (SCHED_OTHER with a 100 us
                          slice, Linux 6.12+); fifo (SCHED_FIFO 10,
                          needs CAP_SYS_NICE)                 [normal]
  --wakeup-rows LIST      wake-up rows to run, comma separated, any of
                          kernel,writer,async,pingpong,reference,
                          ref-pipe,ref-actor,ref-pingpong         [all]
  --wakeup-load N         while each wake-up row runs (references too),
                          N blocking readers stream a stream of their
                          own at full speed in the same process
                          (latency under load; at most 100)     [0]
  --scheduler-threads N   CAF scheduler workers (scheduler.max-threads) [2]
  --scheduler-policy P    CAF scheduler policy: sharing or stealing [sharing]
  --warm-memory           pre-fault the stream's memory before the clock
                          starts (chunk pool / reference arena): steady
                          state of a long-running process, no first-touch
                          page faults in the timed part
  --transfer-on-scheduler run the transfer actor on CAF's scheduler
                          (stream_options::transfer_thread = false)
  --wakeup-configs LIST   run the kernel's wake-up rows once per named
                          configuration, side by side with one reference
                          row (overrides --transfer-on-scheduler and
                          --scheduler-policy for them), any of
                          thread,sharing,stealing,stealing-tuned:
                            thread          transfer actor on its own thread
                            sharing         on the scheduler, sharing policy
                            stealing        on the scheduler, stealing policy
                                            (CAF's defaults)
                            stealing-tuned  stealing with
                                            work-stealing.moderate-poll-attempts=0
  --caf-set KEY=VALUE     one more CAF setting for every row, e.g.
                          work-stealing.moderate-sleep-duration=10us
                          (an integer, or a duration in ns/us/ms/s);
                          repeatable
  --no-fork               run every row in this process (for profilers;
                          peak RSS is then cumulative, see rss_delta)
  --wait-idle S           before each row wait up to S seconds until the
                          CPUs are idle (others' builds skew results) [0]
  --row-timeout S         kill a row after S seconds, report failure [120]
  --help                  this text

Kinds:
  blocking   asyncstream::blocking_reader::read() on std::threads
  actor      event-based CAF actors, async_reader::read() chained in handlers
  zerocopy   blocking_reader::read_slices(64 KiB), bytes touched in place
  reference  one std::mutex + std::condition_variable chunk list; a writer
             thread appends copied 64 KiB chunks, N threads memcpy each
             chunk into their own buffer
  writer     push mode: source::push(), one producer thread copies the
             source bytes in with stream_writer::write (64 KiB per call)
             and closes; N blocking readers as in "blocking"
  untethered push mode as "writer" with an untethered retention window of
             --window bytes; reader 0 is stalled (reads 1 byte, waits for
             the close, must then get data_loss when --bytes > --window),
             the other N-1 read everything; GB/s counts those N-1 only.
             Meant for N = 100; skipped for N < 2
  filebacked push mode as "writer", with file-backed storage
             (stream_options::file: an unnamed stream file in --file-dir,
             4 MiB memory cache, 2 MiB mapped windows); readers behind
             the memory cache read the file through mappings. Compare
             with "writer" (the same with memory storage)

Output: a table on stdout (progress on stderr), or with --json lines like
  {"bench":"fanout","impl":"blocking","readers":100,"bytes":268435456,
   "gbps":20.1,"peak_rss_mib":530.2,"ratio_to_reference":2.1,...}
  {"bench":"writer","impl":"blocking","readers":100,...}
  {"bench":"untethered","impl":"fast","readers":100,"window":67108864,...}
  {"bench":"filebacked","impl":"file","readers":10,"bytes":4294967296,
   "gbps":9.1,"peak_rss_mib":80.2,"ratio_to_memory":0.9,...}
  {"bench":"wakeup","impl":"kernel","p50_us":12.3,"p99_us":40.1,...}
Exit status: 0 on success, 1 if a checksum or a row failed, 2 on bad usage.
)";
}

parse_status parse(int argc, char** argv, options& opts, std::ostream& err) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need_value = [&]() -> bool {
      if (has_value)
        return true;
      if (i + 1 >= args.size()) {
        err << "asyncstream-bench: " << arg << " needs a value\n";
        return false;
      }
      value = args[++i];
      return true;
    };
    auto bad = [&](const char* what) {
      err << "asyncstream-bench: invalid " << what << " for " << arg << ": '"
          << value << "'\n";
      return parse_status::error;
    };
    auto no_value = [&]() {
      if (has_value) {
        err << "asyncstream-bench: " << arg << " takes no value\n";
        return false;
      }
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      return parse_status::help;
    } else if (arg == "--json") {
      if (!no_value())
        return parse_status::error;
      opts.json = true;
    } else if (arg == "--skip-wakeup") {
      if (!no_value())
        return parse_status::error;
      opts.skip_wakeup = true;
    } else if (arg == "--skip-fanout") {
      if (!no_value())
        return parse_status::error;
      opts.skip_fanout = true;
    } else if (arg == "--warm-memory") {
      if (!no_value())
        return parse_status::error;
      opts.warm_memory = true;
    } else if (arg == "--transfer-on-scheduler") {
      if (!no_value())
        return parse_status::error;
      opts.transfer_thread = false;
    } else if (arg == "--no-fork") {
      if (!no_value())
        return parse_status::error;
      opts.fork_rows = false;
    } else if (arg == "--readers") {
      if (!need_value())
        return parse_status::error;
      opts.readers.clear();
      for (auto& item : split(value)) {
        std::uint64_t n = 0;
        if (!parse_uint(item, 100000, n) || n == 0)
          return bad("reader count");
        opts.readers.push_back(static_cast<std::size_t>(n));
      }
    } else if (arg == "--bytes") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_size(value, n) || n == 0)
        return bad("size");
      opts.bytes = n;
    } else if (arg == "--window") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_size(value, n) || n == 0)
        return bad("size");
      opts.window = n;
    } else if (arg == "--file-dir") {
      if (!need_value())
        return parse_status::error;
      if (value.empty())
        return bad("directory");
      opts.file_dir = value;
    } else if (arg == "--large-file") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_size(value, n))
        return bad("size");
      opts.large_file = n;
    } else if (arg == "--large-file-readers") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 100000, n) || n == 0)
        return bad("reader count");
      opts.large_file_readers = static_cast<std::size_t>(n);
    } else if (arg == "--runs") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 1000, n) || n == 0)
        return bad("run count");
      opts.runs = static_cast<int>(n);
    } else if (arg == "--kinds") {
      if (!need_value())
        return parse_status::error;
      opts.kinds.clear();
      for (auto& item : split(value)) {
        if (item == "blocking")
          opts.kinds.push_back(kind::blocking);
        else if (item == "actor")
          opts.kinds.push_back(kind::actor);
        else if (item == "zerocopy")
          opts.kinds.push_back(kind::zerocopy);
        else if (item == "reference")
          opts.kinds.push_back(kind::reference);
        else if (item == "writer")
          opts.kinds.push_back(kind::writer);
        else if (item == "untethered")
          opts.kinds.push_back(kind::untethered);
        else if (item == "filebacked")
          opts.kinds.push_back(kind::filebacked);
        else
          return bad("kind");
      }
    } else if (arg == "--wakeup-iterations") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 100000000, n) || n == 0)
        return bad("iteration count");
      opts.wakeup_iterations = static_cast<std::size_t>(n);
    } else if (arg == "--wakeup-gap-us") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 10000000, n))
        return bad("gap");
      opts.wakeup_gap_us = n;
    } else if (arg == "--wakeup-load") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 100, n))
        return bad("load reader count");
      opts.wakeup_load = static_cast<std::size_t>(n);
    } else if (arg == "--scheduler-threads") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 256, n) || n == 0)
        return bad("thread count");
      opts.scheduler_threads = static_cast<std::size_t>(n);
    } else if (arg == "--scheduler-policy") {
      if (!need_value())
        return parse_status::error;
      if (value != "stealing" && value != "sharing")
        return bad("policy");
      opts.scheduler_policy = value;
    } else if (arg == "--wakeup-configs") {
      if (!need_value())
        return parse_status::error;
      opts.wakeup_configs.clear();
      for (auto& item : split(value)) {
        wakeup_variant v;
        if (!wakeup_variant_by_name(item, "sharing", v))
          return bad("wake-up configuration");
        opts.wakeup_configs.push_back(item);
      }
    } else if (arg == "--wakeup-priority") {
      if (!need_value())
        return parse_status::error;
      if (value != "normal" && value != "slice" && value != "fifo")
        return bad("priority");
      opts.wakeup_priority = value;
    } else if (arg == "--wakeup-rows") {
      if (!need_value())
        return parse_status::error;
      opts.wakeup_rows.clear();
      for (auto& item : split(value)) {
        if (item != "kernel" && item != "writer" && item != "async"
            && item != "pingpong" && item != "reference"
            && item != "ref-pipe" && item != "ref-actor"
            && item != "ref-pingpong")
          return bad("wake-up row");
        opts.wakeup_rows.push_back(item);
      }
    } else if (arg == "--caf-set") {
      if (!need_value())
        return parse_status::error;
      auto eq = value.find('=');
      std::uint64_t n = 0;
      std::string unit;
      if (eq == std::string::npos || eq == 0
          || !split_setting(value.substr(eq + 1), n, unit))
        return bad("KEY=VALUE");
      opts.caf_set.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (arg == "--wait-idle") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 86400, n))
        return bad("seconds");
      opts.wait_idle_s = static_cast<double>(n);
    } else if (arg == "--row-timeout") {
      if (!need_value())
        return parse_status::error;
      std::uint64_t n = 0;
      if (!parse_uint(value, 86400, n) || n == 0)
        return bad("timeout");
      opts.row_timeout_s = static_cast<unsigned>(n);
    } else {
      err << "asyncstream-bench: unknown argument '" << args[i]
          << "' (see --help)\n";
      return parse_status::error;
    }
  }
  return parse_status::run;
}

} // namespace asyncstream::bench
