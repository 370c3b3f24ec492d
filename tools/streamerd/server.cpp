#include "server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include "connection.hpp"
#include "context.hpp"
#include "tcp_transport.hpp"
#include "version.hpp"

namespace streamerd {

using tcp = net::ip::tcp;

namespace {

/// The answer to a connection that came while no descriptor was free.
constexpr std::string_view out_of_descriptors
  = "HTTP/1.1 503 Service Unavailable\r\n"
    "Server: streamerd/" STREAMERD_VERSION "\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "Content-Length: 31\r\n"
    "\r\n"
    "out of descriptors, retry later\n";

/// The answer to a connection over --max-connections.
constexpr std::string_view over_capacity
  = "HTTP/1.1 503 Service Unavailable\r\n"
    "Server: streamerd/" STREAMERD_VERSION "\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "Content-Length: 29\r\n"
    "\r\n"
    "too many connections, retry\r\n";

constexpr auto min_backoff = std::chrono::milliseconds{10};
constexpr auto max_backoff = std::chrono::milliseconds{1000};
constexpr auto log_interval = std::chrono::seconds{10};

/// Whether an accept(2) error says the process is out of something.
bool out_of_resources(const error_code& ec) {
  auto v = ec.value();
  return ec.category() == boost::system::system_category()
         && (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
}

} // namespace

struct server::state {
  net::io_context ioc;
  std::shared_ptr<server_context> ctx;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer drain_timer;
  net::steady_timer backoff_timer;
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point last_accept_log{};
  std::uint64_t unlogged_accept_errors = 0;
  /// A descriptor kept free (on /dev/null) for the moment the process runs
  /// out: closing it lets the acceptor take the waiting connection and
  /// answer it with a 503 instead of leaving it hanging in the backlog.
  int reserve_fd = -1;

  state(caf::actor_system& sys, const config& cfg, registry& reg)
    : ioc(static_cast<int>(cfg.threads)),
      ctx(std::make_shared<server_context>(sys, cfg, reg)),
      acceptor(net::make_strand(ioc)),
      signals(ioc, SIGINT, SIGTERM),
      drain_timer(ioc),
      backoff_timer(acceptor.get_executor()) {
    reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  ~state() {
    if (reserve_fd >= 0)
      ::close(reserve_fd);
  }

  void accept();
  void on_accept(error_code ec, tcp_transport::socket_type socket);
  void reject(tcp_transport::socket_type& socket);
  bool refuse_with_reserve();
  void note_accept_error(const error_code& ec);
  void drain(int signal_number);
  void maybe_stop();
};

void server::state::accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        [this](error_code ec,
                               tcp_transport::socket_type socket) {
                          on_accept(ec, std::move(socket));
                        });
}

void server::state::on_accept(error_code ec,
                              tcp_transport::socket_type socket) {
  if (!acceptor.is_open())
    return;
  if (ec == net::error::operation_aborted)
    return;
  if (ec) {
    note_accept_error(ec);
    if (out_of_resources(ec) && refuse_with_reserve()) {
      accept();
      return;
    }
    if (out_of_resources(ec)) {
      // The pending connection stays in the backlog; retrying at once
      // would spin. Wait, doubling the wait while it lasts.
      backoff = std::clamp(backoff * 2, min_backoff, max_backoff);
      backoff_timer.expires_after(backoff);
      backoff_timer.async_wait([this](error_code ec) {
        if (!ec && acceptor.is_open())
          accept();
      });
      return;
    }
    accept();
    return;
  }
  backoff = std::chrono::milliseconds{0};
  auto& lim = ctx->cfg.limits;
  if (static_cast<std::size_t>(ctx->stats.connections.load())
      >= lim.max_connections) {
    reject(socket);
  } else {
    auto conn = std::make_shared<connection>(
      ctx, std::make_unique<tcp_transport>(std::move(socket)));
    conn->start();
  }
  accept();
}

void server::state::reject(tcp_transport::socket_type& socket) {
  auto n = ctx->stats.connections_rejected.fetch_add(1) + 1;
  // Best effort, never waits: the socket buffer of a new connection is
  // empty, so the short answer fits.
  [[maybe_unused]] auto res
    = ::send(socket.native_handle(), over_capacity.data(), over_capacity.size(),
             MSG_DONTWAIT | MSG_NOSIGNAL);
  error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
  if (n == 1 || n % 1000 == 0)
    spdlog::warn("{} connection(s) refused so far: --max-connections {} "
                 "reached",
                 n, ctx->cfg.limits.max_connections);
}

bool server::state::refuse_with_reserve() {
  if (reserve_fd < 0)
    return false;
  ::close(reserve_fd);
  reserve_fd = -1;
  int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    [[maybe_unused]] auto res
      = ::send(fd, out_of_descriptors.data(), out_of_descriptors.size(),
               MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
  reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // Without the reserve back (another thread took the descriptor), the
  // acceptor backs off instead.
  return fd >= 0 && reserve_fd >= 0;
}

void server::state::note_accept_error(const error_code& ec) {
  ctx->stats.accept_errors.fetch_add(1, std::memory_order_relaxed);
  ++unlogged_accept_errors;
  auto now = std::chrono::steady_clock::now();
  if (now - last_accept_log < log_interval)
    return;
  spdlog::warn("accept: {} ({} failure(s) since the last report; backing "
               "off)",
               ec.message(), unlogged_accept_errors);
  last_accept_log = now;
  unlogged_accept_errors = 0;
}

void server::state::drain(int signal_number) {
  if (ctx->draining.exchange(true))
    return;
  spdlog::info("signal {}: draining (at most {} s)", signal_number,
               ctx->cfg.drain_timeout_s);
  // The acceptor lives on its own strand: close it there.
  net::post(acceptor.get_executor(), [this] {
    error_code ec;
    acceptor.close(ec);
    backoff_timer.cancel(ec);
  });
  for (auto& c : ctx->open_connections())
    c->drain(false);
  drain_timer.expires_after(std::chrono::seconds{ctx->cfg.drain_timeout_s});
  drain_timer.async_wait([this](error_code ec) {
    if (ec)
      return;
    auto left = ctx->open_connections();
    if (!left.empty())
      spdlog::warn("drain deadline: closing {} connection(s)", left.size());
    for (auto& c : left)
      c->drain(true);
    // Let the closes run, then stop.
    net::post(ioc, [this] { ioc.stop(); });
  });
  maybe_stop();
}

void server::state::maybe_stop() {
  if (ctx->connection_count() == 0) {
    spdlog::info("drained: no connection left");
    ioc.stop();
    return;
  }
  // Check again shortly: connections end on their own strands.
  auto t = std::make_shared<net::steady_timer>(ioc);
  t->expires_after(std::chrono::milliseconds{50});
  t->async_wait([this, t](error_code ec) {
    if (!ec)
      maybe_stop();
  });
}

server::server(caf::actor_system& sys, const config& cfg, registry& reg)
  : state_(std::make_shared<state>(sys, cfg, reg)) {
  // nop
}

server::~server() {
  shutdown();
}

std::string server::listen() {
  auto& st = *state_;
  auto& cfg = st.ctx->cfg;
  error_code ec;
  auto addr = net::ip::make_address(cfg.host, ec);
  if (ec)
    return "invalid listen address '" + cfg.host + "': " + ec.message();
  tcp::endpoint ep{addr, cfg.port};
  st.acceptor.open(ep.protocol(), ec);
  if (!ec)
    st.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    st.acceptor.bind(ep, ec);
  if (!ec)
    st.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + cfg.host + ":" + std::to_string(cfg.port)
           + ": " + ec.message();
  return {};
}

void server::run() {
  auto& st = *state_;
  st.signals.async_wait([&st](error_code ec, int sig) {
    if (!ec)
      st.drain(sig);
  });
  net::post(st.acceptor.get_executor(), [&st] { st.accept(); });
  // A handler that throws (say, std::bad_alloc) ends that one handler, not
  // the network thread: log it and run on.
  auto serve = [&st] {
    for (;;) {
      try {
        st.ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("network thread: a handler failed: {}", e.what());
      }
    }
  };
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < st.ctx->cfg.threads; ++i)
    extra.emplace_back(serve);
  serve();
  for (auto& t : extra)
    t.join();
}

void server::shutdown() {
  if (!state_)
    return;
  auto& st = *state_;
  error_code ec;
  st.acceptor.close(ec);
  st.signals.cancel(ec);
  st.backoff_timer.cancel(ec);
  // Connections still open hold readers and writers: end them now and run
  // their handlers until they are gone (download actors may still post to
  // them meanwhile), for at most a few seconds.
  for (auto& c : st.ctx->open_connections())
    c->drain(true);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  do {
    st.ioc.restart();
    st.ioc.run_for(std::chrono::milliseconds{10});
  } while (st.ctx->connection_count() > 0
           && std::chrono::steady_clock::now() < deadline);
  if (auto n = st.ctx->connection_count(); n > 0)
    spdlog::warn("{} connection(s) still open at shutdown", n);
}

} // namespace streamerd
