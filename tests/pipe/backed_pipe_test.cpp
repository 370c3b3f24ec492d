// The backed pipe (backed_pipe.hpp): delivery, reconnection, the window,
// the checks of the sequence exchange, close in every state, and the two
// defects of the original design as regression tests.
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "asyncstream/error.hpp"
#include "asyncstream/pipe_frames.hpp"
#include "pipe_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;
using namespace std::chrono_literals;

namespace {

/// A connector the test steers: each attempt calls `body`.
struct steered_connector {
  std::mutex mtx;
  std::function<caf::expected<pipe_connection>(const connect_request&)> body;

  pipe_connector make() {
    return [this](const connect_request& req) {
      std::function<caf::expected<pipe_connection>(const connect_request&)> f;
      {
        std::lock_guard<std::mutex> guard{mtx};
        f = body;
      }
      return f(req);
    };
  }

  void
  set(std::function<caf::expected<pipe_connection>(const connect_request&)> f) {
    std::lock_guard<std::mutex> guard{mtx};
    body = std::move(f);
  }
};

/// Connects to `passive` through a fresh in-process pair; remembers the
/// client end in `last` (wrapped in a probe).
caf::expected<pipe_connection>
connect_to(backed_pipe& passive, const connect_request& req,
           std::shared_ptr<probe_transport>* last = nullptr) {
  auto [a, b] = make_memory_transport_pair(64 * 1024, "test connection");
  auto probe = std::make_shared<probe_transport>(a);
  if (last)
    *last = probe;
  std::thread srv{[&passive, b = b] {
    auto hello = read_hello(*b);
    if (hello)
      passive.accept(b, *hello, 1);
    else
      b->close();
  }};
  auto welcome = client_handshake(*a, 1, req.local_position);
  srv.join();
  if (!welcome)
    return std::move(welcome.error());
  // The pipe must see the probe, not the raw end: count only its use.
  probe->reads = 0;
  probe->writes = 0;
  return pipe_connection{probe, welcome->position};
}

/// A bounded wait for a pipe's counters to say something.
template <class Pred>
bool eventually(backed_pipe& p, Pred pred, std::chrono::seconds limit = 10s) {
  // Observed through events would be nicer; counters change without one,
  // so this waits on a condition the pipe's own ack traffic advances.
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(p.stats()))
      return true;
    if (p.wait_acknowledged(10ms))
      continue; // waited on the pipe's own condition
    std::this_thread::yield();
  }
  return pred(p.stats());
}

pipe_options small_window(std::uint64_t w = 4096) {
  pipe_options o;
  o.window = w;
  o.max_frame = 512;
  o.backoff_initial = 1ms;
  o.backoff_max = 20ms;
  return o;
}

} // namespace

TEST_SUITE("backed pipe") {
  TEST_CASE("frames: headers round-trip and malformed frames are "
            "protocol errors") {
    struct recorder : frame_handler {
      std::string data;
      std::vector<std::pair<char, std::uint64_t>> controls;
      caf::error on_data(std::uint64_t, const std::byte* p,
                         std::size_t n) override {
        data.append(reinterpret_cast<const char*>(p), n);
        return {};
      }
      caf::error on_control(frame_type t, std::uint64_t v) override {
        controls.emplace_back(static_cast<char>(t), v);
        return {};
      }
    };
    std::vector<std::byte> wire(frame_header_size * 3 + 5);
    write_frame_header(wire.data(), frame_type::data, 7, 5);
    std::memcpy(wire.data() + frame_header_size, "hello", 5);
    write_frame_header(wire.data() + frame_header_size + 5, frame_type::ack, 42,
                       0);
    write_frame_header(wire.data() + 2 * frame_header_size + 5, frame_type::fin,
                       12, 0);
    recorder r;
    frame_parser fp;
    // One byte at a time: every split point of every frame.
    for (auto b : wire)
      REQUIRE_FALSE(fp.feed(&b, 1, r));
    CHECK(fp.at_boundary());
    CHECK(r.data == "hello");
    REQUIRE(r.controls.size() == 2);
    CHECK(r.controls[0] == std::make_pair('A', std::uint64_t{42}));
    CHECK(r.controls[1] == std::make_pair('F', std::uint64_t{12}));
    auto bad = [](frame_type t, std::uint64_t v, std::uint32_t len) {
      std::byte h[frame_header_size];
      write_frame_header(h, t, v, len);
      recorder r;
      frame_parser fp;
      auto err = fp.feed(h, sizeof(h), r);
      CHECK(is(err, errc::protocol_error));
      CHECK(fp.feed(h, 1, r) == err); // nothing more after an error
      return err;
    };
    bad(static_cast<frame_type>('X'), 0, 0);
    bad(frame_type::data, 0, 0);
    bad(frame_type::data, 0, max_frame_payload + 1);
    bad(frame_type::data, UINT64_MAX - 2, 10);
    bad(frame_type::ack, 1, 3);
    bad(frame_type::bye, 1, 0);
  }

  TEST_CASE("bytes cross both ways exactly once and in order: each side "
            "ends its direction and both see the goodbye") {
    system_fixture f;
    pipe_pair pp{f.sys, small_window()};
    REQUIRE_FALSE(pp.active.connect());
    auto a2p = pattern(100000, 1);
    auto p2a = pattern(70000, 2);
    auto wa = std::async(std::launch::async, [&] {
      for (std::size_t i = 0; i < a2p.size(); i += 999)
        REQUIRE_FALSE(pp.active.write(
          a2p.data() + i, std::min<std::size_t>(999, a2p.size() - i)));
      return pp.active.close_write();
    });
    auto wp = std::async(std::launch::async, [&] {
      REQUIRE_FALSE(pp.passive.write(p2a));
      return pp.passive.close_write();
    });
    auto at_passive = read_to_end(pp.passive);
    auto at_active = read_to_end(pp.active);
    CHECK_FALSE(wa.get());
    CHECK_FALSE(wp.get());
    REQUIRE(at_passive);
    REQUIRE(at_active);
    CHECK(*at_passive == a2p);
    CHECK(*at_active == p2a);
    CHECK_FALSE(pp.active.wait_acknowledged(10s));
    CHECK_FALSE(pp.passive.wait_acknowledged(10s));
    CHECK(pp.active.wait_peer_done(10s));
    CHECK(pp.passive.wait_peer_done(10s));
    auto st = pp.active.stats();
    CHECK(st.written == a2p.size());
    CHECK(st.acknowledged == a2p.size());
    CHECK(st.received == p2a.size());
    CHECK(st.read == p2a.size());
    CHECK(st.write_closed_acknowledged);
    CHECK(st.peer_closed);
    CAPTURE(render(st.last_error));
    CHECK(st.generation == 1); // no fault, so no reconnection
    CHECK(pp.passive.stats().generation == 1);
    // Once the direction is closed, a write is refused.
    CHECK(is(pp.active.write("x"), errc::closed));
  }

  TEST_CASE("zero-copy: write(slice) hands bytes over, read_slices hands "
            "them out: both count like read and write") {
    system_fixture f;
    pipe_pair pp{f.sys, small_window(1 << 16)};
    REQUIRE_FALSE(pp.active.connect());
    auto text = std::make_shared<const std::string>(pattern(50000, 9));
    auto chunk = adopt_buffer(text);
    REQUIRE_FALSE(pp.active.write(slice{chunk, 0, text->size()}));
    REQUIRE_FALSE(pp.active.close_write());
    std::string got;
    for (;;) {
      auto xs = pp.passive.read_slices(7000);
      REQUIRE(xs);
      if (xs->empty())
        break;
      std::size_t n = 0;
      for (auto& x : *xs) {
        got.append(x.as_string_view());
        n += x.size();
      }
      CHECK(n <= 7000);
    }
    CHECK(got == *text);
    CHECK(pp.passive.stats().read == text->size());
    CHECK_FALSE(pp.active.wait_acknowledged(10s));
    pp.active.close();
    CHECK(is(pp.active.read_slices(1).error(), errc::closed));
    CHECK(is(pp.active.write(slice{chunk, 0, 1}), errc::closed));
  }

  TEST_CASE("reads block while disconnected and resume after the "
            "reconnection: writes meanwhile are kept and replayed") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window());
    REQUIRE(p);
    steered_connector sc;
    std::shared_ptr<probe_transport> last;
    sc.set(
      [&](const connect_request& req) { return connect_to(*p, req, &last); });
    auto opts = small_window();
    opts.auto_reconnect = false;
    auto a = backed_pipe::make(f.sys, sc.make(), opts);
    REQUIRE(a);
    event_probe ev{f.sys};
    a->observe(ev.handle());
    REQUIRE_FALSE(a->connect());
    REQUIRE(ev.await(pipe_state::connected));
    REQUIRE_FALSE(a->write("before"));
    CHECK(read_exactly(*p, 6) == "before");
    // Cut the connection under both halves.
    last->close();
    pipe_event gone;
    REQUIRE(ev.await(pipe_state::disconnected, &gone));
    CHECK(gone.reason);
    CHECK(a->state() == pipe_state::disconnected);
    // A read on the passive side waits; a write on the active side is
    // accepted into the window while nothing carries it.
    auto reader = std::async(std::launch::async,
                             [&] { return read_exactly(*p, 6); });
    CHECK(reader.wait_for(50ms) == std::future_status::timeout);
    REQUIRE_FALSE(a->write("during"));
    CHECK(a->stats().written == 12);
    REQUIRE_FALSE(a->reconnect());
    CHECK(reader.get() == "during");
    CHECK(a->stats().generation == 2);
    a->close();
    p->close();
  }

  TEST_CASE("one failure seen by both halves causes exactly one "
            "reconnection") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window(1 << 16));
    REQUIRE(p);
    steered_connector sc;
    std::shared_ptr<probe_transport> last;
    sc.set(
      [&](const connect_request& req) { return connect_to(*p, req, &last); });
    auto a = backed_pipe::make(f.sys, sc.make(), small_window(1 << 16));
    REQUIRE(a);
    event_probe ev{f.sys};
    a->observe(ev.handle());
    REQUIRE_FALSE(a->connect());
    REQUIRE(ev.await(pipe_state::connected));
    // Traffic both ways, so both halves are busy when the cut comes.
    REQUIRE_FALSE(a->write(pattern(20000, 3)));
    REQUIRE_FALSE(p->write(pattern(20000, 4)));
    last->close();
    pipe_event back;
    REQUIRE(ev.await(pipe_state::connected, &back));
    CHECK(back.generation == 2);
    CHECK(read_exactly(*p, 20000) == pattern(20000, 3));
    CHECK(read_exactly(*a, 20000) == pattern(20000, 4));
    // A round trip after the reconnection: no second attempt came.
    REQUIRE_FALSE(a->write("ping"));
    CHECK(read_exactly(*p, 4) == "ping");
    CHECK_FALSE(a->wait_acknowledged(10s));
    auto st = a->stats();
    CHECK(st.attempts == 2);
    CHECK(st.generation == 2);
    a->close();
    p->close();
  }

  TEST_CASE("concurrent forced reconnects share one attempt and all see "
            "its result") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window());
    REQUIRE(p);
    steered_connector sc;
    sc.set([&](const connect_request& req) { return connect_to(*p, req); });
    auto opts = small_window();
    opts.auto_reconnect = false;
    auto a = backed_pipe::make(f.sys, sc.make(), opts);
    REQUIRE(a);
    REQUIRE_FALSE(a->connect());
    // The next attempt waits for the test, then fails with a marker.
    std::promise<void> entered;
    std::promise<void> go;
    auto go_f = go.get_future().share();
    sc.set([&, go_f](const connect_request&) -> caf::expected<pipe_connection> {
      entered.set_value();
      go_f.wait();
      return make_error(errc::io_error, "marker");
    });
    auto first = std::async(std::launch::async, [&] { return a->reconnect(); });
    entered.get_future().wait();
    std::vector<std::future<caf::error>> others;
    for (int i = 0; i < 3; ++i)
      others.push_back(
        std::async(std::launch::async, [&] { return a->reconnect(); }));
    REQUIRE(eventually(*a, [](const pipe_stats& s) { return s.waiting == 4; }));
    go.set_value();
    auto res = first.get();
    CHECK(is(res, errc::io_error));
    for (auto& o : others)
      CHECK(o.get() == res);
    CHECK(a->stats().attempts == 2);
    CHECK(a->state() == pipe_state::disconnected);
    a->close();
    p->close();
  }

  TEST_CASE("a peer position beyond what was written fails the attempt as a "
            "whole: protocol error, transport closed and unused "
            "(the original's reader stayed attached)") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window());
    REQUIRE(p);
    steered_connector sc;
    sc.set([&](const connect_request& req) { return connect_to(*p, req); });
    auto opts = small_window();
    opts.auto_reconnect = false;
    auto a = backed_pipe::make(f.sys, sc.make(), opts);
    REQUIRE(a);
    REQUIRE_FALSE(a->connect());
    REQUIRE_FALSE(a->write("0123456789"));
    CHECK(read_exactly(*p, 10) == "0123456789");
    // A connection whose peer claims 1000 bytes we never wrote.
    std::shared_ptr<probe_transport> bad;
    std::shared_ptr<pipe_transport> peer_end;
    sc.set([&](const connect_request&) -> caf::expected<pipe_connection> {
      auto [x, y] = make_memory_transport_pair();
      bad = std::make_shared<probe_transport>(x);
      peer_end = y;
      return pipe_connection{bad, 1000};
    });
    auto err = a->reconnect();
    CHECK(is(err, errc::protocol_error));
    CHECK(a->state() == pipe_state::disconnected);
    REQUIRE(bad);
    CHECK(bad->closed);
    CHECK(bad->reads == 0);
    CHECK(bad->writes == 0);
    // Nothing reached the peer end either, and the pipe still works.
    char c;
    CHECK_FALSE(peer_end->read(&c, 1));
    sc.set([&](const connect_request& req) { return connect_to(*p, req); });
    REQUIRE_FALSE(a->write("abc"));
    REQUIRE_FALSE(a->reconnect());
    CHECK(read_exactly(*p, 3) == "abc");
    a->close();
    p->close();
  }

  TEST_CASE("a peer position below the window is data_loss with the lost "
            "range: the attempt fails as a whole") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window(1024));
    REQUIRE(p);
    steered_connector sc;
    sc.set([&](const connect_request& req) { return connect_to(*p, req); });
    auto opts = small_window(1024);
    opts.auto_reconnect = false;
    auto a = backed_pipe::make(f.sys, sc.make(), opts);
    REQUIRE(a);
    REQUIRE_FALSE(a->connect());
    auto w = std::async(std::launch::async,
                        [&] { return a->write(pattern(4096, 5)); });
    CHECK(read_exactly(*p, 4096) == pattern(4096, 5));
    REQUIRE_FALSE(w.get());
    CHECK_FALSE(a->wait_acknowledged(10s));
    std::shared_ptr<probe_transport> bad;
    sc.set([&](const connect_request&) -> caf::expected<pipe_connection> {
      auto [x, y] = make_memory_transport_pair();
      bad = std::make_shared<probe_transport>(x);
      return pipe_connection{bad, 100};
    });
    auto err = a->reconnect();
    REQUIRE(is(err, errc::data_loss));
    auto range = data_loss_range(err);
    REQUIRE(range);
    CHECK(range->offset == 100);
    CHECK(range->oldest == 4096 - 1024);
    CHECK(bad->closed);
    CHECK(bad->writes == 0);
    CHECK(bad->reads == 0);
    CHECK(a->state() == pipe_state::disconnected);
    a->close();
    p->close();
  }

  TEST_CASE("automatic reconnection gives up after max_attempts: reads get "
            "the bytes that came, then the error: writes the error") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window());
    REQUIRE(p);
    steered_connector sc;
    std::shared_ptr<probe_transport> last;
    sc.set(
      [&](const connect_request& req) { return connect_to(*p, req, &last); });
    auto opts = small_window();
    opts.max_attempts = 3;
    auto a = backed_pipe::make(f.sys, sc.make(), opts);
    REQUIRE(a);
    event_probe ev{f.sys};
    a->observe(ev.handle());
    REQUIRE_FALSE(a->connect());
    REQUIRE_FALSE(p->write("last words"));
    CHECK(read_exactly(*a, 10) == "last words");
    REQUIRE(
      eventually(*p, [](const pipe_stats& s) { return s.acknowledged == 10; }));
    sc.set([](const connect_request&) -> caf::expected<pipe_connection> {
      return make_error(errc::io_error, "host unreachable");
    });
    last->close();
    pipe_event ev_gone;
    // Three failed attempts, then the pipe gives up.
    REQUIRE(eventually(*a, [](const pipe_stats& s) {
      return s.attempts == 4 && s.state == pipe_state::disconnected
             && s.last_error && s.waiting == 0;
    }));
    char c;
    auto k = a->read(&c, 1);
    REQUIRE_FALSE(k);
    CHECK(render(k.error()).find("gave up reconnecting after 3")
          != std::string::npos);
    CHECK(render(a->write("x")).find("gave up") != std::string::npos);
    CHECK(a->connect() == a->stats().last_error);
    a->close();
    p->close();
  }

  TEST_CASE("the window: a writer waits while unacknowledged bytes fill it "
            "and goes on once they are acknowledged") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window(1024));
    REQUIRE(p);
    steered_connector sc;
    std::shared_ptr<probe_transport> last;
    sc.set(
      [&](const connect_request& req) { return connect_to(*p, req, &last); });
    auto opts = small_window(1024);
    opts.auto_reconnect = false;
    auto a = backed_pipe::make(f.sys, sc.make(), opts);
    REQUIRE(a);
    event_probe ev{f.sys};
    a->observe(ev.handle());
    REQUIRE_FALSE(a->connect());
    REQUIRE(ev.await(pipe_state::connected));
    last->close();
    REQUIRE(ev.await(pipe_state::disconnected));
    // No peer acknowledges: a window's worth goes in, the next byte waits.
    REQUIRE_FALSE(a->write(pattern(1024, 6)));
    auto more = std::async(std::launch::async,
                           [&] { return a->write(pattern(512, 7)); });
    CHECK(more.wait_for(50ms) == std::future_status::timeout);
    CHECK(a->stats().written == 1024);
    REQUIRE_FALSE(a->reconnect());
    CHECK(read_exactly(*p, 1024) == pattern(1024, 6));
    CHECK(read_exactly(*p, 512) == pattern(512, 7));
    CHECK_FALSE(more.get());
    a->close();
    p->close();
  }

  TEST_CASE("close during a reconnection that waits on its connector "
            "returns promptly and cancels it (the original deadlocked)") {
    system_fixture f;
    std::promise<void> entered;
    std::promise<bool> saw_cancel;
    auto connector
      = [&](const connect_request& req) -> caf::expected<pipe_connection> {
      // Waits for its cancellation, as a connect to a silent host would.
      std::mutex m;
      std::condition_variable cv;
      bool canceled = false;
      req.cancel->on_cancel([&] {
        std::lock_guard<std::mutex> g{m};
        canceled = true;
        cv.notify_all();
      });
      entered.set_value();
      std::unique_lock<std::mutex> lk{m};
      bool ok = cv.wait_for(lk, 30s, [&] { return canceled; });
      saw_cancel.set_value(ok);
      return make_error(errc::canceled, "canceled");
    };
    auto a = backed_pipe::make(f.sys, connector, small_window());
    REQUIRE(a);
    auto connecting = std::async(std::launch::async,
                                 [&] { return a->connect(); });
    entered.get_future().wait();
    CHECK(a->state() == pipe_state::reconnecting);
    a->close();
    CHECK(saw_cancel.get_future().get());
    CHECK(is(connecting.get(), errc::closed));
    CHECK(a->state() == pipe_state::closed);
  }

  TEST_CASE("close returns even when the connector ignores its "
            "cancellation") {
    system_fixture f;
    std::promise<void> entered;
    std::promise<void> release;
    auto rel = release.get_future().share();
    auto [x, y] = make_memory_transport_pair();
    auto probe = std::make_shared<probe_transport>(x);
    auto a = backed_pipe::make(
      f.sys,
      [&, rel,
       probe](const connect_request&) -> caf::expected<pipe_connection> {
        entered.set_value();
        rel.wait();
        return pipe_connection{probe, 0};
      },
      small_window());
    REQUIRE(a);
    auto connecting = std::async(std::launch::async,
                                 [&] { return a->connect(); });
    entered.get_future().wait();
    a->close(); // must not wait for the connector
    CHECK(is(connecting.get(), errc::closed));
    release.set_value();
    // The late connection is closed and used by no one.
    char c;
    CHECK_FALSE(y->read(&c, 1));
    CHECK(probe->closed);
    CHECK(probe->writes == 0);
  }

  TEST_CASE("a connector may close its own pipe (aspipe does after a "
            "refusal): a connector's protocol_error ends the retries") {
    system_fixture f;
    backed_pipe* self = nullptr;
    auto a = backed_pipe::make(
      f.sys,
      [&](const connect_request&) -> caf::expected<pipe_connection> {
        self->close();
        return make_error(errc::closed, "refused by the peer: test");
      },
      small_window());
    REQUIRE(a);
    self = &*a;
    CHECK(is(a->connect(), errc::closed));
    CHECK(a->state() == pipe_state::closed);
    int calls = 0;
    auto b = backed_pipe::make(
      f.sys,
      [&](const connect_request&) -> caf::expected<pipe_connection> {
        ++calls;
        return make_error(errc::protocol_error, "not an aspipe peer");
      },
      small_window());
    REQUIRE(b);
    auto err = b->connect();
    CHECK(is(err, errc::protocol_error));
    CHECK(calls == 1);
    CHECK(b->state() == pipe_state::disconnected);
  }

  TEST_CASE("close in every state: blocked reads and writes return closed, "
            "later calls too") {
    system_fixture f;
    for (int where = 0; where < 4; ++where) {
      CAPTURE(where);
      auto p = backed_pipe::make_passive(f.sys, small_window(1024));
      REQUIRE(p);
      steered_connector sc;
      std::shared_ptr<probe_transport> last;
      sc.set(
        [&](const connect_request& req) { return connect_to(*p, req, &last); });
      auto opts = small_window(1024);
      opts.auto_reconnect = false;
      auto a = backed_pipe::make(f.sys, sc.make(), opts);
      REQUIRE(a);
      if (where >= 1)
        REQUIRE_FALSE(a->connect());
      if (where >= 2) {
        event_probe ev{f.sys};
        a->observe(ev.handle());
        last->close();
        REQUIRE(ev.await(pipe_state::disconnected));
      }
      std::future<caf::error> writer;
      if (where == 3) {
        REQUIRE_FALSE(a->write(pattern(1024)));
        writer = std::async(std::launch::async, [&] { return a->write("x"); });
      }
      auto reader = std::async(std::launch::async, [&] {
        char c;
        return a->read(&c, 1);
      });
      CHECK(reader.wait_for(20ms) == std::future_status::timeout);
      a->close();
      auto r = reader.get();
      REQUIRE_FALSE(r);
      CHECK(is(r.error(), errc::closed));
      if (writer.valid())
        CHECK(is(writer.get(), errc::closed));
      CHECK(is(a->write("y"), errc::closed));
      CHECK(is(a->close_write(), errc::closed));
      CHECK(is(a->connect(), errc::closed));
      CHECK(a->state() == pipe_state::closed);
      a->close(); // idempotent
      p->close();
    }
  }

  TEST_CASE("a malformed frame breaks that connection, not the pipe") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window());
    REQUIRE(p);
    event_probe ev{f.sys};
    p->observe(ev.handle());
    auto [x, y] = make_memory_transport_pair();
    std::thread srv{[&, y = y] {
      auto hello = read_hello(*y);
      REQUIRE(hello);
      CHECK_FALSE(p->accept(y, *hello, 9));
    }};
    auto welcome = client_handshake(*x, 0, 0);
    srv.join();
    REQUIRE(welcome);
    CHECK(welcome->session == 9);
    REQUIRE(ev.await(pipe_state::connected));
    REQUIRE_FALSE(x->write("Zgarbage-garbage", 16));
    pipe_event down;
    REQUIRE(ev.await(pipe_state::disconnected, &down));
    CHECK(is(down.reason, errc::protocol_error));
    // The pipe accepts the next connection and works.
    auto [x2, y2] = make_memory_transport_pair();
    std::thread srv2{[&, y2 = y2] {
      auto hello = read_hello(*y2);
      REQUIRE(hello);
      CHECK_FALSE(p->accept(y2, *hello, 9));
    }};
    auto w2 = client_handshake(*x2, 9, 0);
    srv2.join();
    REQUIRE(w2);
    std::byte hdr[frame_header_size];
    write_frame_header(hdr, frame_type::data, 0, 2);
    REQUIRE_FALSE(x2->write(hdr, sizeof(hdr)));
    REQUIRE_FALSE(x2->write("ok", 2));
    CHECK(read_exactly(*p, 2) == "ok");
    p->close();
  }

  TEST_CASE("no goodbye while the peer still has bytes to read: a cut then "
            "brings a reconnection and the last acknowledgement (soak seed "
            "89 of the first 300)") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window());
    REQUIRE(p);
    steered_connector sc;
    std::shared_ptr<probe_transport> last;
    sc.set(
      [&](const connect_request& req) { return connect_to(*p, req, &last); });
    auto a = backed_pipe::make(f.sys, sc.make(), small_window());
    REQUIRE(a);
    REQUIRE_FALSE(a->connect());
    REQUIRE_FALSE(a->write("abc"));
    REQUIRE_FALSE(a->close_write());
    REQUIRE_FALSE(p->close_write());
    auto at_active = read_to_end(*a);
    REQUIRE(at_active);
    CHECK(at_active->empty());
    // Both ends were exchanged, but the passive side has not read "abc":
    // no goodbye may come yet (before the fix one came here, and the cut
    // below then ended the pipe without the last acknowledgement).
    CHECK_FALSE(a->wait_peer_done(200ms));
    auto first = last;
    first->close();
    auto at_passive = read_to_end(*p);
    REQUIRE(at_passive);
    CHECK(*at_passive == "abc");
    CHECK_FALSE(a->wait_acknowledged(10s));
    CHECK(a->wait_peer_done(10s));
    CHECK(p->wait_peer_done(10s));
    CHECK(a->stats().generation >= 2);
    a->close();
    p->close();
  }

  TEST_CASE("a peer sending tiny frames: every byte arrives in order (small "
            "pieces are copied, large ones sliced)") {
    system_fixture f;
    auto p = backed_pipe::make_passive(f.sys, small_window(1 << 20));
    REQUIRE(p);
    auto [x, y] = make_memory_transport_pair();
    std::thread srv{[&, y = y] {
      auto hello = read_hello(*y);
      REQUIRE(hello);
      CHECK_FALSE(p->accept(y, *hello, 5));
    }};
    auto welcome = client_handshake(*x, 0, 0);
    srv.join();
    REQUIRE(welcome);
    auto data = pattern(20000, 11);
    std::vector<std::byte> wire;
    std::size_t i = 0;
    std::size_t step = 1;
    while (i < data.size()) {
      // 1-byte frames, then growing ones up to 8 KiB: both paths.
      auto k = std::min(step, data.size() - i);
      std::byte hdr[frame_header_size];
      write_frame_header(hdr, frame_type::data, i,
                         static_cast<std::uint32_t>(k));
      wire.insert(wire.end(), hdr, hdr + sizeof(hdr));
      auto* b = reinterpret_cast<const std::byte*>(data.data() + i);
      wire.insert(wire.end(), b, b + k);
      i += k;
      step = i < 3000 ? 1 : std::min<std::size_t>(step * 2, 8192);
    }
    auto sender = std::async(std::launch::async, [&, x = x] {
      return x->write(wire.data(), wire.size());
    });
    CHECK(read_exactly(*p, data.size()) == data);
    CHECK_FALSE(sender.get());
    CHECK(p->stats().received == data.size());
    p->close();
  }

  TEST_CASE("an observer sees connected, disconnected, reconnecting, "
            "connected and closed") {
    system_fixture f;
    pipe_pair pp{f.sys, small_window()};
    event_probe ev{f.sys};
    pp.active.observe(ev.handle());
    REQUIRE(ev.await(pipe_state::disconnected)); // the current state first
    REQUIRE_FALSE(pp.active.connect());
    REQUIRE(ev.await(pipe_state::connected));
    REQUIRE_FALSE(pp.active.reconnect());
    pipe_event e;
    REQUIRE(ev.await(pipe_state::connected, &e));
    CHECK(e.generation == 2);
    pp.active.close();
    REQUIRE(ev.await(pipe_state::closed));
  }

  TEST_CASE("invalid handles and arguments answer invalid_argument") {
    system_fixture f;
    backed_pipe none;
    CHECK(is(none.write("x"), errc::invalid_argument));
    char c;
    CHECK_FALSE(none.read(&c, 1));
    CHECK(is(none.connect(), errc::invalid_argument));
    none.close();
    CHECK(is(backed_pipe::make(f.sys, {}, {}).error(), errc::invalid_argument));
    pipe_options zero;
    zero.window = 0;
    CHECK(is(backed_pipe::make_passive(f.sys, zero).error(),
             errc::invalid_argument));
    auto p = backed_pipe::make_passive(f.sys);
    REQUIRE(p);
    CHECK(is(p->connect(), errc::invalid_argument));
    CHECK(is(p->reconnect(), errc::invalid_argument));
  }
}
