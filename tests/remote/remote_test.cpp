// Remote streams across a process boundary: the test process and child
// processes of this binary (roles.cpp) talk over CAF's middleman on
// loopback. Every wait is bounded.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <future>
#include <thread>

#include <caf/actor_system.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/remote.hpp"
#include "asyncstream/remote_protocol.hpp"
#include "asyncstream/stream_writer.hpp"

#include "child_process.hpp"
#include "netns_suite.hpp"
#include "roles.hpp"

using namespace std::chrono_literals;

namespace asyncstream::test {
namespace {

/// The test process's side: a system with the middleman and a publisher.
struct node {
  remote_config cfg;
  caf::actor_system sys{cfg};
  remote::publisher pub;

  node() {
    auto p = remote::publisher::publish(sys, 0);
    REQUIRE(p);
    pub = std::move(*p);
  }

  std::string port() const {
    return std::to_string(pub.port());
  }
};

/// Parses `bytes=N hash=H error=E`.
struct read_result {
  std::uint64_t bytes = 0;
  std::uint64_t hash = 0;
  std::string error;
};

read_result parse(const std::string& line) {
  read_result res;
  char err[64] = {0};
  unsigned long long b = 0;
  unsigned long long h = 0;
  if (std::sscanf(line.c_str(), "bytes=%llu hash=%llu error=%63s", &b, &h, err)
      == 3) {
    res.bytes = b;
    res.hash = h;
    res.error = err;
  }
  return res;
}

} // namespace

TEST_SUITE("remote") {
  TEST_CASE("errors cross the wire with their code, text and data-loss "
            "range") {
    auto loss = make_data_loss(100, 4196);
    auto back = remote::from_wire(remote::to_wire(loss));
    CHECK(is(back, errc::data_loss));
    auto range = data_loss_range(back);
    REQUIRE(range);
    CHECK(range->offset == 100);
    CHECK(range->oldest == 4196);
    auto io = remote::from_wire(
      remote::to_wire(make_error(errc::io_error, "disk full")));
    CHECK(is(io, errc::io_error));
    CHECK(render(io) == render(make_error(errc::io_error, "disk full")));
    CHECK_FALSE(remote::from_wire(remote::to_wire(caf::error{})));
    auto long_text
      = remote::to_wire(make_error(errc::io_error, std::string(100000, 'x')));
    CHECK(long_text.text.size() == remote::max_error_text);
  }

  TEST_CASE("a reader in another process gets every byte in order while the "
            "stream is written, then the end") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("live", *s));
    constexpr std::uint64_t total = 48u << 20;
    child_process child{{"--read", "127.0.0.1", n.port(), "live", "4194304"}};
    REQUIRE(child.started());
    // Written while the child reads: pieces of odd sizes.
    std::uint64_t at = 0;
    std::size_t piece = 1;
    while (at < total) {
      auto k
        = static_cast<std::size_t>(std::min<std::uint64_t>(total - at, piece));
      auto data = pattern(at, k);
      REQUIRE_FALSE(w->write(data.data(), k));
      at += k;
      piece = piece * 3 % 700001 + 1;
    }
    REQUIRE_FALSE(w->close());
    auto line = child.expect("RESULT ");
    REQUIRE(line);
    auto res = parse(*line);
    CHECK(res.error == "none");
    CHECK(res.bytes == total);
    CHECK(res.hash == pattern_hash(total));
    CHECK(child.wait() == 0);
  }

  TEST_CASE("an actor in another process reads a remote stream with "
            "async_reader") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("live", *s));
    child_process child{{"--async-read", "127.0.0.1", n.port(), "live"}};
    constexpr std::uint64_t total = 8u << 20;
    for (std::uint64_t at = 0; at < total; at += 100000) {
      auto k
        = static_cast<std::size_t>(std::min<std::uint64_t>(total - at, 100000));
      auto data = pattern(at, k);
      REQUIRE_FALSE(w->write(data.data(), k));
    }
    REQUIRE_FALSE(w->close());
    auto line = child.expect("RESULT ");
    REQUIRE(line);
    auto res = parse(*line);
    CHECK(res.error == "none");
    CHECK(res.bytes == total);
    CHECK(res.hash == pattern_hash(total));
  }

  TEST_CASE("an error reaches a remote reader at its byte") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("failing", *s));
    auto data = pattern(0, 100000);
    REQUIRE_FALSE(w->write(data.data(), data.size()));
    REQUIRE_FALSE(w->close_with_error(make_error(errc::io_error, "disk")));
    child_process child{{"--read", "127.0.0.1", n.port(), "failing", "65536"}};
    auto line = child.expect("RESULT ");
    REQUIRE(line);
    auto res = parse(*line);
    CHECK(res.bytes == 100000);
    CHECK(res.hash == pattern_hash(100000));
    CHECK(res.error == "io_error");
  }

  TEST_CASE("removing a published stream ends its remote readers after "
            "their bytes with disconnected, and new opens find nothing") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("going", *s));
    auto data = pattern(0, 50000);
    REQUIRE_FALSE(w->write(data.data(), data.size()));
    child_process reader{{"--read", "127.0.0.1", n.port(), "going", "65536"}};
    REQUIRE(reader.expect("STARTED"));
    CHECK(n.pub.sessions() == 1);
    CHECK(n.pub.remove("going"));
    CHECK_FALSE(n.pub.remove("going"));
    auto line = reader.expect("RESULT ");
    REQUIRE(line);
    auto res = parse(*line);
    CHECK(res.error == "disconnected");
    CHECK(res.bytes == 50000);
    CHECK(res.hash == pattern_hash(50000));
    // A new open finds nothing.
    child_process late{{"--read", "127.0.0.1", n.port(), "going", "65536"}};
    line = late.expect("RESULT ");
    REQUIRE(line);
    CHECK(parse(*line).error == "not_found");
  }

  TEST_CASE("a name the node does not publish is not_found, a port nobody "
            "listens on is disconnected") {
    node n;
    child_process missing{{"--read", "127.0.0.1", n.port(), "nope", "65536"}};
    auto line = missing.expect("RESULT ");
    REQUIRE(line);
    CHECK(parse(*line).error == "not_found");
    // The publisher's port, once closed, has nobody behind it.
    auto port = n.port();
    n.pub.close();
    child_process gone{{"--read", "127.0.0.1", port, "nope", "65536"}};
    line = gone.expect("RESULT ");
    REQUIRE(line);
    CHECK(parse(*line).error == "disconnected");
  }

  TEST_CASE("another protocol version is refused with protocol_error") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    REQUIRE_FALSE(n.pub.add("v", *s));
    child_process child{{"--raw-open", "127.0.0.1", n.port(), "v"}};
    auto line = child.expect("RAW ");
    REQUIRE(line);
    CHECK(*line == "protocol_error");
    CHECK(n.pub.sessions() == 0);
  }

  TEST_CASE("remote readers count against the stream's cap: a second one "
            "waits and times out, and gets the slot once the first closes") {
    node n;
    stream_options opts;
    opts.max_readers = 1;
    auto s = stream::make(n.sys, source::push(), opts);
    REQUIRE(s);
    REQUIRE_FALSE(n.pub.add("capped", *s));
    child_process child{{"--cap", "127.0.0.1", n.port(), "capped"}};
    CHECK(child.expect("FIRST ") == std::optional<std::string>{"ok"});
    CHECK(child.expect("SECOND ") == std::optional<std::string>{"timeout"});
    CHECK(child.expect("THIRD ") == std::optional<std::string>{"ok"});
    CHECK(child.wait() == 0);
  }

  TEST_CASE("a seek to the largest offset of an ended stream reads its end, "
            "and a peer's seek near 2^64 does not wrap the session's limit") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("ended", *s));
    auto data = pattern(0, 1000);
    REQUIRE_FALSE(w->write(data.data(), data.size()));
    REQUIRE_FALSE(w->close());
    child_process child{{"--seek-far", "127.0.0.1", n.port(), "ended"}};
    CHECK(child.expect("FAR ") == std::optional<std::string>{"0"});
    // A peer that seeks its session to 2^64 - 11 with an allowance of
    // 2^64 - 1 gets the end too (the session's limit saturates).
    child_process raw{{"--raw-seek", "127.0.0.1", n.port(), "ended"}};
    CHECK(raw.expect("RAWSEEK ") == std::optional<std::string>{"end"});
  }

  TEST_CASE("a publisher's session limit refuses the next open with "
            "resource_exhausted") {
    remote_config cfg;
    caf::actor_system sys{cfg};
    remote::publish_options popts;
    popts.max_sessions = 1;
    auto pub = remote::publisher::publish(sys, 0, popts);
    REQUIRE(pub);
    auto s = stream::make(sys, source::push());
    REQUIRE(s);
    REQUIRE_FALSE(pub->add("one", *s));
    child_process child{
      {"--cap", "127.0.0.1", std::to_string(pub->port()), "one"}};
    CHECK(child.expect("FIRST ") == std::optional<std::string>{"ok"});
    CHECK(child.expect("SECOND ")
          == std::optional<std::string>{"resource_exhausted"});
    CHECK(pub->sessions() == 1);
    child.kill();
  }

  TEST_CASE("positional reads, wait_for and seeks work remotely and do not "
            "move the position") {
    node n;
    auto s = stream::make(n.sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("pos", *s));
    auto data = pattern(0, 300000);
    REQUIRE_FALSE(w->write(data.data(), data.size()));
    child_process child{{"--positional", "127.0.0.1", n.port(), "pos"}};
    CHECK(child.expect("POSITIONAL ") == std::optional<std::string>{"ok"});
  }

  TEST_CASE("a reader process killed mid-read frees its slot and its tether") {
    node n;
    stream_options opts;
    opts.retention = 256u << 10;
    opts.policy = retention_policy::tethered;
    auto s = stream::make(n.sys, source::push(), opts);
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(n.pub.add("tethered", *s));
    child_process child{{"--hold", "127.0.0.1", n.port(), "tethered"}};
    auto first = pattern(0, 1000);
    REQUIRE_FALSE(w->write(first.data(), first.size()));
    REQUIRE(child.expect("READY"));
    CHECK(s->stats().readers == 1);
    // The remote reader holds the producer: this write cannot finish while
    // the reader lives (its window, 64 KiB, is far below 4 MiB).
    auto writing = std::async(std::launch::async, [&] {
      auto more = pattern(1000, 4u << 20);
      return w->write(more.data(), more.size());
    });
    CHECK(writing.wait_for(200ms) == std::future_status::timeout);
    child.kill();
    // Its node is gone: the session ends, the slot and the tether go.
    CHECK(writing.wait_for(30s) == std::future_status::ready);
    CHECK_FALSE(writing.get());
    auto closing = std::async(std::launch::async, [&] { return s->close(); });
    CHECK(closing.wait_for(30s) == std::future_status::ready);
    CHECK(s->stats().readers == 0);
    CHECK(n.pub.sessions() == 0);
  }

  TEST_CASE("a reader whose node dies gets the bytes that came, then "
            "disconnected, and can reopen elsewhere at its position") {
    remote_config cfg;
    caf::actor_system sys{cfg};
    child_process server{{"--serve", "300000"}};
    auto port = server.expect("PORT ");
    REQUIRE(port);
    auto s = remote::open(
      sys, "127.0.0.1", static_cast<std::uint16_t>(std::stoul(*port)), "live");
    REQUIRE(s);
    auto r = s->open_reader();
    REQUIRE(r);
    std::vector<std::byte> buf(300000);
    auto n = r->read_exact(buf.data(), buf.size());
    REQUIRE(n);
    CHECK(*n == buf.size());
    CHECK(buf == pattern(0, buf.size()));
    server.kill();
    std::byte b;
    auto more = r->read(&b, 1);
    REQUIRE_FALSE(more);
    CHECK(is(more.error(), errc::disconnected));
    CHECK(r->position() == 300000);
    // Opening again fails while the node is down: a clear error, no hang.
    auto again = remote::open(
      sys, "127.0.0.1", static_cast<std::uint16_t>(std::stoul(*port)), "live");
    REQUIRE_FALSE(again);
    CHECK(is(again.error(), errc::disconnected));
  }

  TEST_CASE("a remote handle's abort fails a parked read with canceled, a "
            "reader's close wakes only its own read, and the stream on its "
            "node is untouched") {
    remote_config cfg;
    caf::actor_system sys{cfg};
    child_process server{{"--serve", "1000"}};
    auto port = server.expect("PORT ");
    REQUIRE(port);
    auto p = static_cast<std::uint16_t>(std::stoul(*port));
    auto s = remote::open(sys, "127.0.0.1", p, "live");
    REQUIRE(s);
    auto r1 = s->open_reader();
    auto r2 = s->open_reader();
    REQUIRE(r1);
    REQUIRE(r2);
    std::vector<std::byte> buf(1000);
    REQUIRE(r1->read_exact(buf.data(), buf.size()));
    REQUIRE(r2->read_exact(buf.data(), buf.size()));
    CHECK(s->stats().readers == 2);
    // Both park at the live end; closing r1 wakes only r1.
    auto parked1 = std::async(std::launch::async, [&] {
      std::byte b;
      return r1->read(&b, 1);
    });
    auto parked2 = std::async(std::launch::async, [&] {
      std::byte b;
      return r2->read(&b, 1);
    });
    CHECK(parked1.wait_for(100ms) == std::future_status::timeout);
    r1->close();
    auto res1 = parked1.get();
    REQUIRE_FALSE(res1);
    CHECK(is(res1.error(), errc::closed));
    CHECK(parked2.wait_for(100ms) == std::future_status::timeout);
    s->abort();
    auto res2 = parked2.get();
    REQUIRE_FALSE(res2);
    CHECK(is(res2.error(), errc::canceled));
    CHECK(s->stats().readers == 0);
    // A reader with a timeout gives up at the live end with `timeout` and
    // stays usable: its next read times out the same way.
    auto again_handle = remote::open(sys, "127.0.0.1", p, "live");
    REQUIRE(again_handle);
    reader_options ropts;
    ropts.timeout = std::chrono::milliseconds{100};
    auto timed = again_handle->open_reader(ropts);
    REQUIRE(timed);
    REQUIRE(timed->read_exact(buf.data(), buf.size()));
    for (int i = 0; i < 2; ++i) {
      std::byte b;
      auto t = timed->read(&b, 1);
      REQUIRE_FALSE(t);
      CHECK(is(t.error(), errc::timeout));
    }
    timed->close();
    // The stream on its node is untouched: a new handle reads it.
    auto again = remote::open(sys, "127.0.0.1", p, "live");
    REQUIRE(again);
    auto r3 = again->open_reader();
    REQUIRE(r3);
    auto n = r3->read_exact(buf.data(), buf.size());
    REQUIRE(n);
    CHECK(buf == pattern(0, 1000));
  }

} // TEST_SUITE

} // namespace asyncstream::test

int main(int argc, char** argv) {
  if (argc == 2 && std::string{argv[1]} == "--netns")
    return asyncstream::test::run_netns_suite();
  if (argc > 1 && asyncstream::test::is_role(argv[1]))
    return asyncstream::test::run_role(argc, argv);
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
