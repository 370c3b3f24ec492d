// The TCP transport, connector and server of the backed pipe
// (actors/include/asyncstream/tcp_pipe*.hpp), on loopback. Every wait is
// bounded; none sleeps for a condition.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "asyncstream/chunk.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/tcp_pipe.hpp"

using namespace asyncstream;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

/// Polls `pred` until it holds or `limit` passed; returns whether it held.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = clock_type::now() + limit;
  while (!pred()) {
    if (clock_type::now() > deadline)
      return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// Transports handed to a route, for the test to take.
struct inbox {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::pair<pipe_transport_ptr, pipe_hello>> items;

  void put(pipe_transport_ptr t, pipe_hello h) {
    std::lock_guard<std::mutex> guard{mtx};
    items.emplace_back(std::move(t), h);
    cv.notify_all();
  }

  std::pair<pipe_transport_ptr, pipe_hello>
  take(std::chrono::milliseconds limit = 5000ms) {
    std::unique_lock<std::mutex> guard{mtx};
    if (!cv.wait_for(guard, limit, [&] { return !items.empty(); }))
      return {};
    auto x = std::move(items.front());
    items.pop_front();
    return x;
  }
};

tcp_pipe_server_options loopback(caf::timespan handshake = 5s) {
  tcp_pipe_server_options opts;
  opts.bind = "127.0.0.1";
  opts.port = 0;
  opts.handshake_timeout = handshake;
  return opts;
}

/// A server whose route welcomes every hello (new sessions get 42) and
/// puts the transport into `box`.
std::unique_ptr<tcp_pipe_server> welcoming_server(inbox& box,
                                                  std::uint64_t position = 0) {
  auto srv = tcp_pipe_server::start(
    loopback(), [&box, position](pipe_transport_ptr t, pipe_hello h) {
      auto session = h.session == 0 ? 42 : h.session;
      if (send_welcome(*t, session, position)) {
        t->close();
        return;
      }
      box.put(std::move(t), h);
    });
  REQUIRE(srv);
  return std::move(*srv);
}

/// Reads exactly `n` bytes (bounded by the transport's behavior).
std::vector<char> read_exactly(pipe_transport& t, std::size_t n) {
  std::vector<char> out(n);
  std::size_t got = 0;
  while (got < n) {
    auto k = t.read(out.data() + got, n - got);
    REQUIRE(k);
    REQUIRE(*k > 0);
    got += *k;
  }
  return out;
}

std::vector<char> pattern(std::size_t n, unsigned seed) {
  std::vector<char> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return out;
}

/// A listening socket that never accepts, with its backlog full, so that
/// one more connect hangs (Linux drops the SYN). Returns the port, or 0 if
/// the backlog did not fill within 64 connections.
struct full_listener {
  int fd = -1;
  std::vector<int> clients;
  std::uint16_t port = 0;

  full_listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd, 0) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    auto p = ntohs(addr.sin_port);
    for (int i = 0; i < 64; ++i) {
      auto c = tcp_connect("127.0.0.1", p, 200ms);
      if (!c) {
        port = p; // this connect hung: the backlog is full
        return;
      }
      holders.push_back(std::move(*c));
    }
  }

  ~full_listener() {
    holders.clear();
    ::close(fd);
  }

  std::vector<pipe_transport_ptr> holders;
};

} // namespace

TEST_CASE("tcp: bytes go both ways, gathered slices included") {
  inbox box;
  auto srv = welcoming_server(box, 7);
  auto connector = tcp_connector("127.0.0.1", srv->port());
  connect_request req;
  req.local_position = 3;
  req.attempt = 1;
  req.cancel = std::make_shared<cancel_token>();
  auto conn = connector(req);
  if (!conn)
    FAIL(render(conn.error()));
  CHECK(conn->remote_position == 7);
  auto [server_side, hello] = box.take();
  REQUIRE(server_side);
  CHECK(hello.session == 0);
  CHECK(hello.position == 3);
  auto client = conn->transport;
  CHECK(client->describe().find("tcp 127.0.0.1:") == 0);
  // 4 MiB each way at once (more than the socket buffers hold).
  auto up = pattern(4 << 20, 1);
  auto down = pattern(4 << 20, 2);
  auto writer = std::async(std::launch::async,
                           [&] { return client->write(up.data(), up.size()); });
  auto back = std::async(std::launch::async, [&] {
    return server_side->write(down.data(), down.size());
  });
  CHECK(read_exactly(*server_side, up.size()) == up);
  CHECK(read_exactly(*client, down.size()) == down);
  CHECK(!writer.get());
  CHECK(!back.get());
  // A gather write of 3000 slices (more than one sendmsg batch).
  std::vector<slice> xs;
  std::vector<char> expected;
  auto buf = new std::byte[3000 * 7];
  auto ck = std::make_shared<chunk>(
    buf, 3000 * 7, [](std::byte* p, std::size_t) { delete[] p; });
  for (std::size_t i = 0; i < 3000 * 7; ++i)
    ck->mutable_data()[i] = static_cast<std::byte>(i % 251);
  for (std::size_t i = 0; i < 3000; ++i) {
    auto n = i % 7; // some empty slices too
    xs.emplace_back(ck, i * 7, n);
    for (std::size_t j = 0; j < n; ++j)
      expected.push_back(static_cast<char>((i * 7 + j) % 251));
  }
  CHECK(!client->write(xs));
  CHECK(read_exactly(*server_side, expected.size()) == expected);
  // An orderly end reads as 0.
  server_side->close();
  char c;
  auto k = client->read(&c, 1);
  // The peer's close: an end (0) or a reset, never a hang.
  CHECK((!k || *k == 0));
}

TEST_CASE("tcp: close wakes a blocked read and a blocked write") {
  inbox box;
  auto srv = welcoming_server(box);
  connect_request req;
  req.cancel = std::make_shared<cancel_token>();
  auto conn = tcp_connector("127.0.0.1", srv->port())(req);
  REQUIRE(conn);
  auto [peer, hello] = box.take();
  REQUIRE(peer);
  auto t = conn->transport;
  std::promise<caf::expected<std::size_t>> read_done;
  std::thread reader{[&] {
    char buf[16];
    read_done.set_value(t->read(buf, sizeof(buf)));
  }};
  // 64 MiB that nobody reads: the write blocks once the buffers are full.
  std::vector<char> big(64 << 20, 'x');
  std::atomic<bool> write_returned{false};
  std::promise<caf::error> write_done;
  std::thread writer{[&] {
    write_done.set_value(t->write(big.data(), big.size()));
    write_returned = true;
  }};
  // Give both a chance to block (the write cannot finish: nobody reads).
  auto read_f = read_done.get_future();
  auto write_f = write_done.get_future();
  CHECK(read_f.wait_for(100ms) == std::future_status::timeout);
  CHECK(!write_returned.load());
  auto start = clock_type::now();
  t->close();
  REQUIRE(read_f.wait_for(2s) == std::future_status::ready);
  REQUIRE(write_f.wait_for(2s) == std::future_status::ready);
  CHECK(clock_type::now() - start < 2s);
  auto r = read_f.get();
  REQUIRE(!r);
  CHECK(is(r.error(), errc::closed));
  CHECK(is(write_f.get(), errc::closed));
  reader.join();
  writer.join();
  // Later calls fail at once too; close is idempotent.
  char c;
  CHECK(is(t->read(&c, 1).error(), errc::closed));
  CHECK(is(t->write("x", 1), errc::closed));
  t->close();
}

TEST_CASE("tcp: a connect times out and a cancel ends it promptly") {
  full_listener full;
  if (full.port == 0) {
    MESSAGE("the listen backlog never filled; skipping the hanging connect");
    CHECK(full.holders.size() == 64);
    return;
  }
  // Timeout.
  auto start = clock_type::now();
  auto r = tcp_connect("127.0.0.1", full.port, 300ms);
  REQUIRE(!r);
  CHECK(is(r.error(), errc::timeout));
  CHECK(clock_type::now() - start < 3s);
  // Cancel from another thread while it hangs.
  auto token = std::make_shared<cancel_token>();
  auto f = std::async(std::launch::async, [&] {
    return tcp_connect("127.0.0.1", full.port, 30s, token);
  });
  CHECK(f.wait_for(100ms) == std::future_status::timeout);
  start = clock_type::now();
  token->cancel();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  auto c = f.get();
  REQUIRE(!c);
  CHECK(is(c.error(), errc::canceled));
  // Canceled before it starts: at once.
  auto r2 = tcp_connect("127.0.0.1", full.port, 30s, token);
  REQUIRE(!r2);
  CHECK(is(r2.error(), errc::canceled));
}

TEST_CASE("tcp: a refused connect fails with the system's reason") {
  // A port that was just free: bind, note it, close.
  auto srv = tcp_pipe_server::start(loopback(), [](auto, auto) {});
  REQUIRE(srv);
  auto port = (*srv)->port();
  (*srv)->stop();
  srv->reset();
  auto r = tcp_connect("127.0.0.1", port, 2s);
  REQUIRE(!r);
  CHECK(is(r.error(), errc::io_error));
  CHECK(render(r.error()).find("127.0.0.1:" + std::to_string(port))
        != std::string::npos);
}

TEST_CASE("tcp: the connector's handshake times out and is canceled") {
  // A server that reads the hello and never answers.
  inbox box;
  auto srv = tcp_pipe_server::start(loopback(), [&box](auto t, auto h) {
    box.put(std::move(t), h);
  });
  REQUIRE(srv);
  tcp_connector_options opts;
  opts.connect_timeout = 300ms;
  auto connector = tcp_connector("127.0.0.1", (*srv)->port(), opts);
  connect_request req;
  req.cancel = std::make_shared<cancel_token>();
  auto start = clock_type::now();
  auto r = connector(req);
  REQUIRE(!r);
  CHECK(is(r.error(), errc::timeout));
  CHECK(clock_type::now() - start < 3s);
  // With a long deadline, a cancel ends the wait for the answer.
  opts.connect_timeout = 30s;
  auto slow = tcp_connector("127.0.0.1", (*srv)->port(), opts);
  connect_request req2;
  req2.cancel = std::make_shared<cancel_token>();
  auto f = std::async(std::launch::async, [&] { return slow(req2); });
  REQUIRE(box.take().first);
  REQUIRE(box.take().first); // the second attempt's hello arrived
  start = clock_type::now();
  req2.cancel->cancel();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  auto c = f.get();
  REQUIRE(!c);
  CHECK(is(c.error(), errc::canceled));
}

TEST_CASE("tcp: the connector resumes the session of its first welcome") {
  inbox box;
  auto srv = welcoming_server(box);
  std::vector<std::uint64_t> seen;
  tcp_connector_options opts;
  opts.on_session = [&](std::uint64_t s) { seen.push_back(s); };
  auto connector = tcp_connector("127.0.0.1", srv->port(), opts);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    connect_request req;
    req.attempt = i;
    req.local_position = i * 100;
    req.cancel = std::make_shared<cancel_token>();
    auto conn = connector(req);
    REQUIRE(conn);
    auto [t, hello] = box.take();
    REQUIRE(t);
    CHECK(hello.session == (i == 1 ? 0u : 42u));
    CHECK(hello.position == i * 100);
    conn->transport->close();
  }
  CHECK(seen == std::vector<std::uint64_t>{42, 42, 42});
}

TEST_CASE("tcp: an unknown session is refused with the route's reason") {
  auto srv = tcp_pipe_server::start(loopback(), [](auto t, pipe_hello h) {
    if (h.session != 5) {
      tcp_pipe_server::refuse(*t,
                              "unknown session " + std::to_string(h.session));
      return;
    }
    send_welcome(*t, 5, 0);
  });
  REQUIRE(srv);
  auto connector = tcp_connector("127.0.0.1", (*srv)->port());
  connect_request req;
  req.cancel = std::make_shared<cancel_token>();
  auto r = connector(req);
  REQUIRE(!r);
  CHECK(is(r.error(), errc::closed));
  auto text = render(r.error());
  CHECK(text.find("refused by the peer: unknown session 0")
        != std::string::npos);
}

TEST_CASE("tcp: a silent client is closed after the handshake timeout") {
  std::atomic<int> routed{0};
  std::mutex mtx;
  std::vector<caf::error> errors;
  auto opts = loopback(200ms);
  opts.on_error = [&](const caf::error& e) {
    std::lock_guard<std::mutex> guard{mtx};
    errors.push_back(e);
  };
  auto srv = tcp_pipe_server::start(opts, [&](auto t, auto) {
    ++routed;
    t->close();
  });
  REQUIRE(srv);
  auto c = tcp_connect("127.0.0.1", (*srv)->port(), 2s);
  REQUIRE(c);
  // Half a hello, then silence.
  REQUIRE(!(*c)->write("ASPIPE", 6));
  auto start = clock_type::now();
  char buf[64];
  auto k = (*c)->read(buf, sizeof(buf));
  auto waited = clock_type::now() - start;
  CHECK((!k || *k == 0)); // the server closed it
  CHECK(waited < 3s);
  CHECK(routed == 0);
  REQUIRE(eventually([&] { return (*srv)->stats().failed == 1; }));
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(errors.size() == 1);
  CHECK(is(errors[0], errc::timeout));
}

TEST_CASE("tcp: a malformed hello is refused as a protocol error") {
  auto srv = tcp_pipe_server::start(loopback(),
                                    [](auto t, auto) { t->close(); });
  REQUIRE(srv);
  auto c = tcp_connect("127.0.0.1", (*srv)->port(), 2s);
  REQUIRE(c);
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(!(*c)->write(junk.data(), junk.size()));
  std::string answer;
  char buf[256];
  for (int i = 0; i < 100; ++i) {
    auto k = (*c)->read(buf, sizeof(buf));
    if (!k || *k == 0)
      break;
    answer.append(buf, *k);
  }
  CHECK(answer.rfind("ASPIPENO", 0) == 0);
  CHECK(answer.find("expected a pipe hello") != std::string::npos);
}

TEST_CASE("tcp: stop closes the connections in the handshake") {
  auto srv = tcp_pipe_server::start(loopback(60s),
                                    [](auto t, auto) { t->close(); });
  REQUIRE(srv);
  std::vector<pipe_transport_ptr> silent;
  for (int i = 0; i < 3; ++i) {
    auto c = tcp_connect("127.0.0.1", (*srv)->port(), 2s);
    REQUIRE(c);
    silent.push_back(*c);
  }
  REQUIRE(eventually([&] { return (*srv)->stats().in_handshake == 3; }));
  auto start = clock_type::now();
  (*srv)->stop();
  CHECK(clock_type::now() - start < 2s);
  for (auto& t : silent) {
    char c;
    auto k = t->read(&c, 1);
    CHECK((!k || *k == 0));
  }
  CHECK((*srv)->stats().failed == 3);
  // No longer listening.
  auto again = tcp_connect("127.0.0.1", (*srv)->port(), 2s);
  CHECK(!again);
}

TEST_CASE("tcp: the server bounds the connections in the handshake") {
  auto opts = loopback(60s);
  opts.max_handshakes = 2;
  inbox box;
  auto srv = tcp_pipe_server::start(opts, [&](auto t, pipe_hello h) {
    send_welcome(*t, 9, 0);
    box.put(std::move(t), h);
  });
  REQUIRE(srv);
  auto port = (*srv)->port();
  std::vector<pipe_transport_ptr> silent;
  for (int i = 0; i < 2; ++i) {
    auto c = tcp_connect("127.0.0.1", port, 2s);
    REQUIRE(c);
    silent.push_back(*c);
  }
  REQUIRE(eventually([&] { return (*srv)->stats().in_handshake == 2; }));
  connect_request req;
  req.cancel = std::make_shared<cancel_token>();
  auto r = tcp_connector("127.0.0.1", port)(req);
  REQUIRE(!r);
  CHECK(render(r.error()).find("too many connections in the handshake")
        != std::string::npos);
  CHECK((*srv)->stats().refused_busy == 1);
  // A slot frees up when a silent client leaves.
  silent[0]->close();
  REQUIRE(eventually([&] { return (*srv)->stats().in_handshake == 1; }));
  auto ok = tcp_connector("127.0.0.1", port)(req);
  REQUIRE(ok);
  CHECK(ok->transport);
  CHECK(box.take().first);
}
