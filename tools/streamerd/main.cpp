// streamerd: serves live asyncstream streams over HTTP. See docs/streamerd.md.
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <algorithm>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "byte_range.hpp"
#include "config.hpp"
#include "registry.hpp"
#include "relay.hpp"
#include "relay_spec.hpp"
#include "server.hpp"
#include "sources.hpp"
#include "version.hpp"

namespace {

using streamerd::config;
using streamerd::relay_spec;
using streamerd::source_spec;

/// Parses "HOST:PORT" ("[v6]:PORT" for IPv6) into `cfg`.
std::string parse_listen(const std::string& text, config& cfg) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size())
    return "expected HOST:PORT";
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  std::uint64_t port = 0;
  if (!streamerd::parse_seconds(text.substr(colon + 1), port) || port == 0
      || port > 65535)
    return "invalid port '" + text.substr(colon + 1) + "'";
  cfg.host = host.empty() ? "127.0.0.1" : host;
  cfg.port = static_cast<std::uint16_t>(port);
  return {};
}

/// Parses "256M", "1G", "4096" (binary units).
bool parse_size(const std::string& text, std::uint64_t& out) {
  if (text.empty())
    return false;
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  std::uint64_t n = 0;
  if (digits == 0 || !streamerd::parse_seconds(text.substr(0, digits), n))
    return false;
  auto unit = text.substr(digits);
  int shift = 0;
  if (unit.empty() || unit == "B")
    shift = 0;
  else if (unit == "K" || unit == "KiB")
    shift = 10;
  else if (unit == "M" || unit == "MiB")
    shift = 20;
  else if (unit == "G" || unit == "GiB")
    shift = 30;
  else
    return false;
  if (shift > 0 && n > (UINT64_MAX >> shift))
    return false;
  out = n << shift;
  return out > 0;
}

/// Splits "NAME=VALUE" of --source and --exec.
std::string parse_spec(const std::string& text, source_spec::kind what,
                       const char* option, config& cfg) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq + 1 == text.size())
    return std::string{option} + " " + text + ": expected NAME=VALUE";
  source_spec spec;
  spec.name = text.substr(0, eq);
  spec.arg = text.substr(eq + 1);
  spec.what = what;
  if (!streamerd::valid_stream_name(spec.name))
    return std::string{option} + " " + text + ": invalid stream name '"
           + spec.name + "'";
  if (what == source_spec::kind::file && spec.arg == "-")
    spec.what = source_spec::kind::stdin_fd;
  cfg.sources.push_back(std::move(spec));
  return {};
}

/// Raises the soft descriptor limit to the hard one (as nginx's
/// worker_rlimit_nofile would) and says when the limits cannot all be met.
void raise_descriptor_limit(const config& cfg) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  // A connection takes one descriptor, a file-backed stream one more.
  auto need = cfg.limits.max_connections
              + (cfg.storage == "file" ? cfg.limits.max_streams : 0) + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need)
    spdlog::warn("the descriptor limit ({}) is below what --max-connections "
                 "and --max-streams may take ({}): past it, new connections "
                 "wait and new streams get a 503",
                 lim.rlim_cur, need);
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  CLI::App app{"streamerd " STREAMERD_VERSION
               ": serves live byte streams over HTTP; many readers, one copy "
               "of the bytes. See docs/streamerd.md.",
               "streamerd"};
  std::string listen = "127.0.0.1:8080";
  std::vector<std::string> sources;
  std::vector<std::string> execs;
  std::vector<std::string> relays;
  double relay_idle_timeout_s = 30;
  std::uint64_t relay_backoff_ms = 100;
  std::uint64_t relay_backoff_max_ms = 5000;
  std::string retention;
  bool no_demo = false;
  app.set_version_flag("--version", "streamerd " STREAMERD_VERSION);
  // An option given twice: the last one wins (as in most daemons), so a
  // wrapper script's defaults can be overridden on its command line.
  app.option_defaults()->multi_option_policy(
    CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--listen", listen, "address to listen on, HOST:PORT")
    ->capture_default_str();
  app.add_option("--source", sources,
                 "serve a file (NAME=PATH) or standard input (NAME=-) as "
                 "stream NAME; repeatable")
    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--exec", execs,
                 "serve the standard output of `/bin/sh -c COMMAND` as "
                 "stream NAME (NAME=COMMAND); repeatable")
    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--relay", relays,
                 "mirror stream UPNAME of another streamerd as local stream "
                 "NAME while it is produced (NAME=http://HOST:PORT/streams/"
                 "UPNAME); resumes cut connections with a Range request; "
                 "repeatable (docs/relays.md)")
    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
    ->group("Relays");
  app.add_option("--relay-retries", cfg.relay.retries,
                 "failed attempts in a row (no response head: refused, "
                 "reset, timeout, 404, 5xx) after the first that a relay "
                 "makes before it fails its stream")
    ->capture_default_str()
    ->check(CLI::Range(0u, 1000000u))
    ->group("Relays");
  app.add_option("--relay-backoff-ms", relay_backoff_ms,
                 "wait before a relay's first retry; doubled per failed "
                 "attempt")
    ->capture_default_str()
    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}))
    ->group("Relays");
  app.add_option("--relay-backoff-max-ms", relay_backoff_max_ms,
                 "longest wait between a relay's attempts")
    ->capture_default_str()
    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}))
    ->group("Relays");
  app.add_option("--relay-idle-timeout", relay_idle_timeout_s,
                 "seconds a relay waits for a connection, a response head or "
                 "the next body byte before it counts the connection as "
                 "broken and resumes (fractions allowed)")
    ->capture_default_str()
    ->check(CLI::Range(0.05, 86400.0))
    ->group("Relays");
  app
    .add_flag("--relay-on-demand", cfg.relay_on_demand,
              "start each relay on the first GET of its stream instead of "
              "at the start")
    ->group("Relays");
  app.add_flag("--no-demo", no_demo, "do not create the built-in demo stream");
  app.add_option("--max-readers", cfg.max_readers,
                 "concurrent readers per stream")
    ->capture_default_str()
    ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  app.add_option("--queue-timeout", cfg.queue_timeout_s,
                 "seconds a reader over the cap waits, then 503")
    ->capture_default_str();
  app.add_option("--retry-after", cfg.retry_after_s,
                 "Retry-After seconds of that 503")
    ->capture_default_str();
  app.add_option("--max-wait", cfg.max_wait_s,
                 "longest ?wait= (seconds) for a stream that does not exist "
                 "yet")
    ->capture_default_str();
  app.add_option("--storage", cfg.storage, "where stream bodies live")
    ->capture_default_str()
    ->check(CLI::IsMember({"memory", "file"}));
  app.add_option("--file-dir", cfg.file_dir,
                 "directory of the stream files (--storage file); default "
                 "$TMPDIR or /tmp")
    ->check(CLI::ExistingDirectory);
  app.add_option("--retention", retention,
                 "keep only the newest SIZE bytes per stream (K, M, G "
                 "suffixes); slower readers get cut off");
  app.add_option("--drain-timeout", cfg.drain_timeout_s,
                 "seconds open responses may run on after SIGTERM/SIGINT")
    ->capture_default_str();
  auto& lim = cfg.limits;
  app.add_option("--header-timeout", lim.header_timeout_s,
                 "seconds a client has to send a request's headers")
    ->capture_default_str()
    ->group("Limits");
  app.add_option("--keepalive-timeout", lim.keepalive_timeout_s,
                 "seconds a keep-alive connection may stay idle between "
                 "requests")
    ->capture_default_str()
    ->group("Limits");
  app.add_option("--send-timeout", lim.send_timeout_s,
                 "seconds a consumer may accept no bytes before it is "
                 "dropped (its reader slot freed)")
    ->capture_default_str()
    ->group("Limits");
  app.add_option("--body-timeout", lim.body_timeout_s,
                 "seconds an upload may send no body bytes before it fails")
    ->capture_default_str()
    ->group("Limits");
  app.add_option("--max-connections", lim.max_connections,
                 "connections open at once; the next one gets a 503")
    ->capture_default_str()
    ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
    ->group("Limits");
  app.add_option("--max-streams", lim.max_streams,
                 "streams listed at once; uploads over it get a 503")
    ->capture_default_str()
    ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
    ->group("Limits");
  std::string max_stream_size;
  app.add_option("--max-stream-size", max_stream_size,
                 "largest stream an upload may make (K, M, G suffixes); "
                 "past it the upload gets a 413 and the stream fails "
                 "[unlimited]")
    ->group("Limits");
  std::string pool_cache;
  app.add_option("--pool-cache", pool_cache,
                 "free chunk memory kept for reuse (K, M, G suffixes); the "
                 "rest goes back to the kernel [64M]")
    ->group("Limits");
  app.add_option("--threads", cfg.threads,
                 "network threads (default: one per core)")
    ->check(CLI::Range(std::size_t{1}, std::size_t{64}));
  app.add_option("--log-level", cfg.log_level,
                 "trace, debug, info, warn, error or off")
    ->capture_default_str()
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print to stdout and exit 0; errors go to stderr.
    return app.exit(e);
  }
  cfg.demo = !no_demo;
  if (cfg.threads == 0)
    cfg.threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(),
                                          1, 64);
  std::string err = parse_listen(listen, cfg);
  if (!err.empty()) {
    std::cerr << "streamerd: --listen " << listen << ": " << err << "\n";
    return 2;
  }
  for (auto& s : sources)
    if (err = parse_spec(s, source_spec::kind::file, "--source", cfg);
        !err.empty())
      break;
  for (auto& s : execs)
    if (err.empty())
      err = parse_spec(s, source_spec::kind::command, "--exec", cfg);
  for (auto& r : relays) {
    if (!err.empty())
      break;
    relay_spec spec;
    if (auto e = streamerd::parse_relay_arg(r, spec); !e.empty())
      err = "--relay " + r + ": " + e;
    else
      cfg.relays.push_back(std::move(spec));
  }
  if (!err.empty()) {
    std::cerr << "streamerd: " << err << "\n";
    return 2;
  }
  cfg.relay.backoff = std::chrono::milliseconds{relay_backoff_ms};
  cfg.relay.backoff_max = std::chrono::milliseconds{
    std::max(relay_backoff_ms, relay_backoff_max_ms)};
  cfg.relay.idle_timeout = std::chrono::milliseconds{
    static_cast<std::int64_t>(relay_idle_timeout_s * 1000)};
  if (!max_stream_size.empty()) {
    std::uint64_t n = 0;
    if (!parse_size(max_stream_size, n)) {
      std::cerr << "streamerd: --max-stream-size " << max_stream_size
                << ": expected a size like 10G\n";
      return 2;
    }
    cfg.limits.max_stream_bytes = n;
  }
  if (!pool_cache.empty()
      && !parse_size(pool_cache, cfg.limits.pool_cache_bytes)) {
    std::cerr << "streamerd: --pool-cache " << pool_cache
              << ": expected a size like 64M\n";
    return 2;
  }
  if (!retention.empty()) {
    std::uint64_t n = 0;
    if (!parse_size(retention, n)) {
      std::cerr << "streamerd: --retention " << retention
                << ": expected a size like 64M\n";
      return 2;
    }
    cfg.retention = n;
  }
  auto logger = spdlog::stderr_color_mt("streamerd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  // A client that goes away mid-write must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit(cfg);
  // Chunks of deleted streams go back to the kernel past this bound.
  asyncstream::chunk_pool::set_shared_max_cached(
    static_cast<std::size_t>(cfg.limits.pool_cache_bytes));
  caf::actor_system_config caf_cfg;
  asyncstream::configure(caf_cfg);
  // Every stream's actors share CAF's workers (no thread per stream). The
  // sharing policy wakes an idle worker with a condition variable at once;
  // CAF's default (stealing) polls and sleeps in steps, which a reader at
  // the live edge waits out (docs/benchmarks.md, "One thread per stream or
  // none"). One worker per core, as the benchmark found best.
  caf_cfg.set("scheduler.policy", caf::atom("sharing"));
  caf_cfg.set("scheduler.max-threads",
              static_cast<int>(std::clamp<unsigned>(
                std::thread::hardware_concurrency(), 2, 64)));
  {
    caf::actor_system sys{caf_cfg};
    streamerd::registry reg;
    {
      streamerd::server srv{sys, cfg, reg};
      if (auto e = srv.listen(); !e.empty()) {
        spdlog::error("{}", e);
        return 1;
      }
      if (auto e = streamerd::start_sources(sys, cfg, reg); !e.empty()) {
        spdlog::error("{}", e);
        reg.clear();
        return 1;
      }
      streamerd::relay_service relays{sys, cfg, reg};
      if (auto e = relays.start(); !e.empty()) {
        spdlog::error("{}", e);
        relays.stop();
        for (auto& x : reg.clear())
          x->stream.abort();
        return 1;
      }
      spdlog::info("streamerd {} listening on http://{}:{}/ ({} stream(s); "
                   "try: curl -N http://{}:{}/streams/{})",
                   STREAMERD_VERSION, cfg.host, cfg.port, reg.list().size(),
                   cfg.host, cfg.port,
                   cfg.demo ? "demo" : "NAME");
      srv.run();
      // The relays fed their streams through the drain; now they stop
      // (their streams fail, so nothing reads them as complete).
      relays.stop();
      srv.shutdown();
      // Streams go before the actor system; their sources are stopped and
      // any open still waiting for a reader slot is refused at once.
      for (auto& e : reg.clear())
        e->stream.abort();
      sys.await_all_actors_done();
    } // the server (its io_context) goes after the last download actor
  }
  spdlog::info("streamerd stopped");
  return 0;
}
