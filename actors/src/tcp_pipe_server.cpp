#include "asyncstream/tcp_pipe_server.hpp"

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "asyncstream/error.hpp"
#include "tcp_pipe_socket.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace asyncstream {

namespace {

/// Phases of one connection in the handshake.
enum phase : int {
  reading = 0, // the thread reads the hello
  routed = 1,  // the hello arrived; the route owns the transport
  expired = 2, // the deadline or stop() closed it
};

} // namespace

/// One connection in the handshake.
struct handshake {
  pipe_transport_ptr transport;
  std::atomic<int> state{reading};
  std::unique_ptr<asio::steady_timer> timer; // touched on the I/O thread only
  std::thread thread;
  bool done = false; // guarded by the server's mutex
};

struct tcp_pipe_server::impl {
  tcp_pipe_server_options opts;
  route_fn route;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer retry{ioc};
  std::uint16_t port = 0;
  std::thread io_thread;

  mutable std::mutex mtx;
  std::list<std::shared_ptr<handshake>> handshakes; // guarded by mtx
  bool stopping = false;                            // guarded by mtx
  tcp_pipe_server_stats counters;                   // guarded by mtx

  void report(const caf::error& err) {
    if (opts.on_error)
      opts.on_error(err);
  }

  /// Joins the threads of finished handshakes; requires mtx.
  std::vector<std::thread> take_finished() {
    std::vector<std::thread> out;
    for (auto i = handshakes.begin(); i != handshakes.end();) {
      if ((*i)->done) {
        out.push_back(std::move((*i)->thread));
        i = handshakes.erase(i);
      } else {
        ++i;
      }
    }
    return out;
  }

  void start_accept() {
    acceptor.async_accept(
      [this](const boost::system::error_code& ec, tcp::socket sock) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
          return;
        if (ec) {
          // Out of descriptors or similar: try again a little later instead
          // of spinning.
          report(make_error(errc::resource_exhausted,
                            "accepting a pipe connection: " + ec.message()));
          retry.expires_after(std::chrono::milliseconds(100));
          retry.async_wait([this](const boost::system::error_code& ec) {
            if (!ec)
              start_accept();
          });
          return;
        }
        on_accept(std::move(sock));
        start_accept();
      });
  }

  void on_accept(tcp::socket sock) {
    boost::system::error_code ec;
    auto fd = sock.release(ec);
    if (ec) {
      report(make_error(errc::io_error,
                        "accepting a pipe connection: " + ec.message()));
      return;
    }
    auto conn = make_tcp_transport(fd, opts.socket);
    if (!conn) {
      report(conn.error());
      return;
    }
    auto transport = std::move(*conn);
    auto hs = std::make_shared<handshake>();
    hs->transport = transport;
    std::vector<std::thread> finished;
    bool busy = false;
    {
      std::lock_guard<std::mutex> guard{mtx};
      ++counters.accepted;
      finished = take_finished();
      if (stopping) {
        busy = true;
      } else if (handshakes.size()
                 >= std::max<std::size_t>(opts.max_handshakes, 1)) {
        ++counters.refused_busy;
        busy = true;
      } else {
        handshakes.push_back(hs);
      }
    }
    for (auto& t : finished)
      t.join();
    if (busy) {
      // A refusal of a few bytes on a fresh socket does not block; the
      // timeout bounds it anyway.
      auto& s = static_cast<detail::tcp_socket_transport&>(*transport);
      s.set_io_timeout(std::chrono::seconds(1));
      report(make_error(errc::resource_exhausted,
                        transport->describe()
                          + ": refused: " + std::to_string(opts.max_handshakes)
                          + " connections in the handshake already"));
      refuse(*transport, "too many connections in the handshake");
      return;
    }
    hs->timer = std::make_unique<asio::steady_timer>(ioc);
    hs->timer->expires_after(opts.handshake_timeout);
    hs->timer->async_wait([hs](const boost::system::error_code& ec) {
      if (ec)
        return;
      int expected = reading;
      if (hs->state.compare_exchange_strong(expected, expired))
        hs->transport->close();
    });
    try {
      hs->thread = std::thread{[this, hs] { run_handshake(hs); }};
    } catch (const std::system_error& e) {
      int expected = reading;
      hs->state.compare_exchange_strong(expected, expired);
      transport->close();
      std::lock_guard<std::mutex> guard{mtx};
      hs->done = true;
      ++counters.failed;
      report(
        make_error(errc::resource_exhausted,
                   "starting a handshake thread: " + std::string{e.what()}));
    }
  }

  void run_handshake(std::shared_ptr<handshake> hs) {
    auto& t = *hs->transport;
    auto hello = read_hello(t);
    int expected = reading;
    bool mine = hs->state.compare_exchange_strong(expected, routed);
    // The deadline timer lives on the I/O thread: cancel it there.
    asio::post(ioc, [hs] {
      if (hs->timer)
        hs->timer->cancel();
    });
    bool stop_now = false;
    {
      std::lock_guard<std::mutex> guard{mtx};
      stop_now = stopping;
    }
    if (!mine || !hello || stop_now) {
      caf::error err;
      if (!mine)
        err = make_error(errc::timeout,
                         t.describe() + ": no complete hello within "
                           + detail::show_duration(opts.handshake_timeout));
      else if (!hello)
        err = std::move(hello.error());
      else
        err = make_error(errc::closed, t.describe() + ": server stopping");
      // A malformed hello gets a refusal that says why.
      if (mine && !hello && is(err, errc::protocol_error))
        refuse(t, render(err));
      t.close();
      report(err);
      std::lock_guard<std::mutex> guard{mtx};
      ++counters.failed;
      hs->done = true;
      return;
    }
    {
      std::lock_guard<std::mutex> guard{mtx};
      ++counters.routed;
    }
    route(hs->transport, *hello);
    std::lock_guard<std::mutex> guard{mtx};
    hs->done = true;
  }
};

tcp_pipe_server::tcp_pipe_server(std::unique_ptr<impl> ptr)
  : impl_(std::move(ptr)) {
  // nop
}

tcp_pipe_server::~tcp_pipe_server() {
  stop();
}

caf::expected<std::unique_ptr<tcp_pipe_server>>
tcp_pipe_server::start(tcp_pipe_server_options opts, route_fn route) {
  if (!route)
    return make_error(errc::invalid_argument, "tcp_pipe_server: no route");
  auto st = std::make_unique<impl>();
  st->opts = std::move(opts);
  st->route = std::move(route);
  auto where = st->opts.bind + ":" + std::to_string(st->opts.port);
  boost::system::error_code ec;
  tcp::resolver resolver{st->ioc};
  auto endpoints = resolver.resolve(
    st->opts.bind, std::to_string(st->opts.port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty())
    return make_error(errc::io_error,
                      "listening on " + where + ": resolving the address: "
                        + (ec ? ec.message() : std::string{"no address"}));
  auto ep = endpoints.begin()->endpoint();
  st->acceptor.open(ep.protocol(), ec);
  if (!ec)
    st->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec)
    st->acceptor.bind(ep, ec);
  if (!ec)
    st->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(errc::io_error,
                      "listening on " + where + ": " + ec.message());
  st->port = st->acceptor.local_endpoint(ec).port();
  st->start_accept();
  auto* raw = st.get();
  try {
    st->io_thread = std::thread{[raw] { raw->ioc.run(); }};
  } catch (const std::system_error& e) {
    return make_error(errc::resource_exhausted,
                      "listening on " + where
                        + ": starting the accept thread: " + e.what());
  }
  return std::unique_ptr<tcp_pipe_server>{new tcp_pipe_server(std::move(st))};
}

std::uint16_t tcp_pipe_server::port() const {
  return impl_->port;
}

tcp_pipe_server_stats tcp_pipe_server::stats() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto result = impl_->counters;
  result.in_handshake = static_cast<std::size_t>(std::count_if(
    impl_->handshakes.begin(), impl_->handshakes.end(),
    [](auto& hs) { return hs->state.load() == reading && !hs->done; }));
  return result;
}

void tcp_pipe_server::stop() {
  auto& st = *impl_;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    if (st.stopping)
      return;
    st.stopping = true;
  }
  // Stop the I/O thread: no more accepts, no more deadlines.
  asio::post(st.ioc, [&st] {
    boost::system::error_code ignored;
    st.acceptor.close(ignored);
    st.retry.cancel();
    st.ioc.stop();
  });
  if (st.io_thread.joinable())
    st.io_thread.join();
  // Close what is still in the handshake, then wait for every thread.
  std::list<std::shared_ptr<handshake>> all;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    all.swap(st.handshakes);
  }
  for (auto& hs : all) {
    int expected = reading;
    if (hs->state.compare_exchange_strong(expected, expired))
      hs->transport->close();
  }
  for (auto& hs : all)
    if (hs->thread.joinable())
      hs->thread.join();
  // Timers belong to the I/O context: drop them before it goes.
  for (auto& hs : all)
    hs->timer.reset();
}

void tcp_pipe_server::refuse(pipe_transport& transport,
                             const std::string& reason) {
  send_refusal(transport, reason);
  transport.close();
}

} // namespace asyncstream
