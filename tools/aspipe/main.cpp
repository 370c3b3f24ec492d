// aspipe: a netcat-like pair over a backed pipe (docs/aspipe.md).
//   aspipe listen PORT          serves one peer session
//   aspipe connect HOST:PORT    connects, reconnects after cuts
// Both copy standard input to the peer and the peer to standard output.
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "asyncstream/backed_pipe.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/tcp_pipe.hpp"
#include "cli_values.hpp"
#include "copy_session.hpp"
#include "single_session_route.hpp"

using namespace asyncstream;

namespace {

struct settings {
  // common
  std::string window = "64M";
  bool progress = false;
  std::string log_level = "info";
  double linger_s = 5;
  // connect
  std::string target;
  std::uint64_t max_attempts = 40;
  double backoff_max_s = 2;
  double connect_timeout_s = 10;
  // listen
  std::string port;
  std::string bind = "0.0.0.0";
  double reconnect_timeout_s = 120;
  double accept_timeout_s = 0;
  double handshake_timeout_s = 10;
};

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(
    std::chrono::duration<double>(s));
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("aspipe");
  logger->set_pattern("%H:%M:%S.%e aspipe %^%l%$: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

int run_listen(caf::actor_system& sys, const settings& cfg,
               const pipe_options& popts, const aspipe::copy_options& copts) {
  std::uint16_t port = 0;
  if (auto err = aspipe::parse_port(cfg.port, port); !err.empty()) {
    spdlog::error("{}", err);
    return aspipe::exit_usage;
  }
  auto pipe = backed_pipe::make_passive(sys, popts);
  if (!pipe) {
    spdlog::error("creating the pipe: {}", render(pipe.error()));
    return aspipe::exit_local_error;
  }
  aspipe::single_session_route route{*pipe};
  tcp_pipe_server_options sopts;
  sopts.bind = cfg.bind;
  sopts.port = port;
  sopts.handshake_timeout = seconds(cfg.handshake_timeout_s);
  sopts.on_error = [](const caf::error& err) {
    spdlog::debug("connection dropped in the handshake: {}", render(err));
  };
  auto srv = tcp_pipe_server::start(sopts, [&route](auto t, auto h) {
    route(std::move(t), h);
  });
  if (!srv) {
    spdlog::error("{}", render(srv.error()));
    pipe->close();
    return aspipe::exit_local_error;
  }
  spdlog::info("listening on {}:{} (session {:016x})", cfg.bind, (*srv)->port(),
               route.session());
  auto code = aspipe::run_copy_session(*pipe, copts);
  (*srv)->stop();
  return code;
}

/// What the connector wrapper shares with `run_connect`.
struct refusal_state {
  std::mutex mtx;
  /// The pipe to close on a refusal; null once it is about to go.
  backed_pipe* pipe = nullptr;
  bool refused = false;
};

int run_connect(caf::actor_system& sys, const settings& cfg, pipe_options popts,
                const aspipe::copy_options& copts) {
  std::string host;
  std::uint16_t port = 0;
  if (auto err = aspipe::parse_host_port(cfg.target, host, port);
      !err.empty()) {
    spdlog::error("{}", err);
    return aspipe::exit_usage;
  }
  tcp_connector_options co;
  co.connect_timeout = seconds(cfg.connect_timeout_s);
  co.on_session = [](std::uint64_t s) {
    spdlog::debug("welcomed to session {:016x}", s);
  };
  popts.auto_reconnect = true;
  popts.max_attempts = cfg.max_attempts;
  popts.backoff_max = seconds(cfg.backoff_max_s);
  // A refusal of the session by the listener is final (it was restarted,
  // or serves another peer): the wrapper closes the pipe at once instead of
  // letting it retry up to the limit. Only "too many connections in the
  // handshake" is worth retrying.
  auto refusal = std::make_shared<refusal_state>();
  // Every failed attempt is worth a line: the pipe retries silently.
  auto connector = [inner = tcp_connector(host, port, co), refusal,
                    max = cfg.max_attempts](const connect_request& req) {
    auto result = inner(req);
    if (result || (req.cancel && req.cancel->canceled()))
      return result;
    auto text = render(result.error());
    if (text.find("refused by the peer") != std::string::npos
        && text.find("too many connections") == std::string::npos) {
      spdlog::error("the listener refused the session: {}", text);
      std::lock_guard<std::mutex> guard{refusal->mtx};
      refusal->refused = true;
      if (refusal->pipe)
        refusal->pipe->close(); // returns without waiting for us
      return result;
    }
    spdlog::warn("connect attempt {} failed (giving up after {} in a row): {}",
                 req.attempt, max, text);
    return result;
  };
  auto pipe = backed_pipe::make(sys, connector, popts);
  if (!pipe) {
    spdlog::error("creating the pipe: {}", render(pipe.error()));
    return aspipe::exit_local_error;
  }
  {
    std::lock_guard<std::mutex> guard{refusal->mtx};
    refusal->pipe = &*pipe;
  }
  auto was_refused = [&] {
    std::lock_guard<std::mutex> guard{refusal->mtx};
    refusal->pipe = nullptr; // the pipe goes with this scope
    return refusal->refused;
  };
  if (auto err = pipe->connect()) {
    auto s = pipe->stats();
    pipe->close();
    if (was_refused())
      return aspipe::exit_peer_error;
    spdlog::error("could not connect to {}:{}, gave up after {} attempts: {}",
                  host, port, s.attempts, render(err));
    return aspipe::exit_code_of(err);
  }
  auto code = aspipe::run_copy_session(*pipe, copts);
  return was_refused() ? aspipe::exit_peer_error : code;
}

} // namespace

int main(int argc, char** argv) {
  settings cfg;
  CLI::App app{"aspipe: copies standard input to a peer and the peer to "
               "standard output over a backed pipe that survives cut "
               "connections (docs/aspipe.md)."};
  app.require_subcommand(1);
  app.fallthrough(); // common options also after the subcommand
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app
    .add_option("--window", cfg.window,
                "replay window: bytes sent but not yet acknowledged, and "
                "room for received bytes not yet written out (e.g. 64M)")
    ->capture_default_str();
  app.add_flag("--progress", cfg.progress,
               "print the pipe's counters on stderr every second");
  app.add_option("--log-level", cfg.log_level, "stderr log level")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
    ->capture_default_str();
  app
    .add_option("--linger", cfg.linger_s,
                "seconds to wait for the peer's goodbye once all is done")
    ->check(CLI::Range(0.0, 3600.0))
    ->capture_default_str();
  auto* listen = app.add_subcommand("listen", "serve one peer session on PORT "
                                              "(0 picks a free port)");
  listen->add_option("PORT", cfg.port, "port to listen on")->required();
  listen->add_option("--bind", cfg.bind, "local address to listen on")
    ->capture_default_str();
  listen
    ->add_option("--reconnect-timeout", cfg.reconnect_timeout_s,
                 "give up when the peer stays away this many seconds after "
                 "a cut")
    ->check(CLI::Range(0.1, 1e6))
    ->capture_default_str();
  listen
    ->add_option("--accept-timeout", cfg.accept_timeout_s,
                 "give up when no peer connects this many seconds at the "
                 "start (0: wait forever)")
    ->check(CLI::Range(0.0, 1e6))
    ->capture_default_str();
  listen
    ->add_option("--handshake-timeout", cfg.handshake_timeout_s,
                 "seconds a client has to send its hello")
    ->check(CLI::Range(0.1, 3600.0))
    ->capture_default_str();
  auto* connect = app.add_subcommand("connect", "connect to an aspipe "
                                                "listener at HOST:PORT");
  connect->add_option("HOST:PORT", cfg.target, "where the listener is")
    ->required();
  connect
    ->add_option("--max-attempts", cfg.max_attempts,
                 "failed connect attempts in a row before giving up")
    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}))
    ->capture_default_str();
  connect
    ->add_option("--backoff-max", cfg.backoff_max_s,
                 "longest wait in seconds between two attempts (the wait "
                 "starts at 50 ms and doubles)")
    ->check(CLI::Range(0.05, 3600.0))
    ->capture_default_str();
  connect
    ->add_option("--connect-timeout", cfg.connect_timeout_s,
                 "seconds one attempt (connect and handshake) may take")
    ->check(CLI::Range(0.1, 3600.0))
    ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return aspipe::exit_usage;
  }
  setup_logging(cfg.log_level);
  pipe_options popts;
  if (auto err = aspipe::parse_size(cfg.window, popts.window); !err.empty()) {
    spdlog::error("--window: {}", err);
    return aspipe::exit_usage;
  }
  std::signal(SIGPIPE, SIG_IGN);
  aspipe::copy_options copts;
  copts.progress = cfg.progress;
  copts.linger = seconds(cfg.linger_s);
  if (listen->parsed()) {
    copts.reconnect_timeout = seconds(cfg.reconnect_timeout_s);
    if (cfg.accept_timeout_s > 0)
      copts.first_timeout = seconds(cfg.accept_timeout_s);
  }
  caf::actor_system_config sys_cfg;
  configure(sys_cfg);
  int code;
  {
    caf::actor_system sys{sys_cfg};
    code = listen->parsed() ? run_listen(sys, cfg, popts, copts)
                            : run_connect(sys, cfg, popts, copts);
  }
  spdlog::shutdown();
  return code;
}
