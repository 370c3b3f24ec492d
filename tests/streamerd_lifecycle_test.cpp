// streamerd's lifecycles (docs/streamerd.md, "Lifecycles"): every object
// with a lifetime (connection, download, upload) is stopped in each of its
// states: the client leaves, a timeout fires, the daemon drains. Afterwards
// nothing is held: no connection, no reader slot, no wait for a slot or a
// name, no open writer. Also the HTTP semantics that need a whole
// connection (framing, HEAD, ranges on live streams, pipelining). The
// connections run over memory transports (tests/streamerd_harness.hpp).
#include <doctest/doctest.h>

#include <string>

#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"
#include "streamerd_harness.hpp"

using namespace streamerd;
using streamerd::testing::client;
using streamerd::testing::harness;

namespace {

std::string get(const std::string& path, const std::string& extra = {},
                const char* version = "HTTP/1.1") {
  return "GET " + path + " " + version + "\r\nHost: t\r\n" + extra + "\r\n";
}

/// One response parsed from the client's bytes.
struct response {
  unsigned status = 0;
  std::string head;
  std::string body;
  /// The body's framing said it ended (final chunk, all of Content-Length).
  bool complete = false;

  std::string field(const std::string& name) const {
    auto key = "\r\n" + name + ": ";
    auto i = head.find(key);
    if (i == std::string::npos)
      return {};
    i += key.size();
    return head.substr(i, head.find("\r\n", i) - i);
  }
};

/// Parses the responses in `raw` (as many as there are).
std::vector<response> parse(std::string raw, bool head_only = false) {
  std::vector<response> out;
  while (!raw.empty()) {
    auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos)
      break;
    response r;
    r.head = raw.substr(0, end + 2);
    r.status = static_cast<unsigned>(std::stoul(r.head.substr(9, 3)));
    raw.erase(0, end + 4);
    if (r.status == 100) // an interim answer
      continue;
    if (head_only || r.status == 204) {
      r.complete = true;
    } else if (auto cl = r.field("Content-Length"); !cl.empty()) {
      auto n = std::stoull(cl);
      r.body = raw.substr(0, n);
      r.complete = raw.size() >= n;
      raw.erase(0, std::min<std::size_t>(n, raw.size()));
    } else if (r.field("Transfer-Encoding") == "chunked") {
      for (;;) {
        auto eol = raw.find("\r\n");
        if (eol == std::string::npos)
          break;
        auto n = std::stoull(raw.substr(0, eol), nullptr, 16);
        if (n == 0) {
          r.complete = raw.size() >= eol + 4;
          raw.erase(0, std::min(raw.size(), eol + 4));
          break;
        }
        if (raw.size() < eol + 2 + n + 2) {
          r.body += raw.substr(std::min(raw.size(), eol + 2));
          raw.clear();
          break;
        }
        r.body += raw.substr(eol + 2, n);
        raw.erase(0, eol + 2 + n + 2);
      }
    } else {
      r.body = raw; // close-delimited
      raw.clear();
    }
    out.push_back(std::move(r));
  }
  return out;
}

/// Everything a finished client could still hold is back to zero.
bool all_released(harness& h) {
  auto& st = h.ctx().stats;
  return h.ctx().connection_count() == 0 && st.connections.load() == 0
         && st.waiting_slot.load() == 0 && st.waiting_name.load() == 0
         && h.reg().open_readers.load() == 0;
}

bool no_readers(const asyncstream::stream& s) {
  auto st = s.stats();
  return st.readers == 0 && st.waiting == 0 && st.parked == 0;
}

asyncstream::stream complete_stream(harness& h, std::string bytes,
                                    std::size_t max_readers = 100) {
  asyncstream::stream_options opts;
  opts.max_readers = max_readers;
  opts.transfer_thread = false;
  auto s = asyncstream::stream::make(
    h.sys(), asyncstream::source::from_bytes(std::move(bytes)), opts);
  REQUIRE(s);
  return *s;
}

struct live {
  asyncstream::stream s;
  std::optional<asyncstream::stream_writer> w;
};

live live_stream(harness& h, std::size_t max_readers = 100) {
  asyncstream::stream_options opts;
  opts.max_readers = max_readers;
  opts.transfer_thread = false;
  auto s = asyncstream::stream::make(h.sys(), asyncstream::source::push(),
                                     opts);
  REQUIRE(s);
  live out{*s, std::nullopt};
  auto w = s->writer();
  REQUIRE(w);
  out.w.emplace(std::move(*w));
  return out;
}

config with_timeouts(std::uint64_t seconds) {
  auto c = harness::default_config();
  c.limits.header_timeout_s = seconds;
  c.limits.keepalive_timeout_s = seconds;
  c.limits.send_timeout_s = seconds;
  c.limits.body_timeout_s = seconds;
  return c;
}

std::uint64_t timeouts(harness& h, timeout_phase p) {
  return h.ctx().stats.timeouts[static_cast<std::size_t>(p)].load();
}

} // namespace

TEST_SUITE("streamerd_lifecycle") {

// -- connection ---------------------------------------------------------------

TEST_CASE("connection: the client leaves in the middle of a header") {
  harness h;
  auto c = h.connect();
  c.pipe->feed("GET /streams/x HTT");
  c.pipe->end();
  CHECK(h.run_until([&] { return c.gone(); }));
  CHECK(c.pipe->output().empty());
  CHECK(all_released(h));
}

TEST_CASE("connection: the header timeout ends a slow header") {
  harness h{with_timeouts(1)};
  auto c = h.connect();
  c.pipe->feed("GET / HTTP/1.1\r\nHost: a\r\n"); // never finished
  CHECK(h.run_until([&] { return c.gone(); }, 5));
  CHECK(timeouts(h, timeout_phase::header) == 1);
  CHECK(all_released(h));
}

TEST_CASE("connection: the keep-alive timeout ends an idle connection") {
  harness h{with_timeouts(1)};
  h.add("x", complete_stream(h, "abc"));
  auto c = h.connect();
  c.pipe->feed(get("/streams/x"));
  CHECK(h.run_until([&] { return c.gone(); }, 5));
  auto rs = parse(c.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].body == "abc");
  CHECK(timeouts(h, timeout_phase::idle) == 1);
  CHECK(all_released(h));
}

TEST_CASE("connection: pipelined requests get their answers in order") {
  harness h;
  h.add("x", complete_stream(h, "first"));
  auto c = h.connect();
  c.pipe->feed(get("/streams/x") + get("/nope") + get("/streams/x", "Range: bytes=1-2\r\n")
               + get("/streams/x", "Connection: close\r\n"));
  CHECK(h.run_until([&] { return c.gone(); }));
  auto rs = parse(c.pipe->output());
  REQUIRE(rs.size() == 4);
  CHECK(rs[0].body == "first");
  CHECK(rs[1].status == 404);
  CHECK(rs[2].status == 206);
  CHECK(rs[2].body == "ir");
  CHECK(rs[3].body == "first");
  CHECK(rs[3].field("Connection") == "close");
  CHECK(all_released(h));
}

TEST_CASE("connection: a malformed request gets its 4xx and the connection "
          "closes") {
  harness h;
  for (auto raw : {std::string{"GARBAGE\r\n\r\n"},
                   std::string{"GET / HTTP/1.1\r\n\r\n"}, // no Host
                   std::string{"PUT /streams/x HTTP/1.1\r\nHost: a\r\n"
                               "Transfer-Encoding: gzip\r\n\r\n"}}) {
    CAPTURE(raw);
    auto c = h.connect();
    c.pipe->feed(raw + get("/"));
    CHECK(h.run_until([&] { return c.gone(); }));
    auto rs = parse(c.pipe->output());
    REQUIRE(rs.size() == 1); // the request after it is not read
    CHECK(rs[0].status >= 400);
    CHECK(rs[0].field("Connection") == "close");
  }
  CHECK(all_released(h));
}

// -- download -------------------------------------------------------------------

TEST_CASE("download: the client leaves while it waits for a name") {
  harness h;
  auto c = h.connect();
  c.pipe->feed(get("/streams/later?wait=30"));
  CHECK(h.run_until([&] { return h.ctx().stats.waiting_name.load() == 1; }));
  c.pipe->end();
  CHECK(h.run_until([&] { return c.gone(); }));
  CHECK(all_released(h));
  // The name appears later: nobody waits for it any more.
  h.add("later", complete_stream(h, "x"));
  CHECK(h.run_until([&] { return all_released(h); }));
}

TEST_CASE("download: a wait for a name ends with the name, or with a 404") {
  auto cfg = harness::default_config();
  cfg.max_wait_s = 1;
  harness h{cfg};
  auto waiter = h.connect();
  waiter.pipe->feed(get("/streams/soon?wait=30")); // capped to 1 s
  auto other = h.connect();
  other.pipe->feed(get("/streams/never?wait=1"));
  CHECK(h.run_until([&] { return h.ctx().stats.waiting_name.load() == 2; }));
  h.add("soon", complete_stream(h, "here"));
  CHECK(h.run_until([&] {
    return parse(waiter.pipe->output()).size() == 1
           && parse(other.pipe->output()).size() == 1;
  }));
  CHECK(parse(waiter.pipe->output())[0].body == "here");
  CHECK(parse(other.pipe->output())[0].status == 404);
  waiter.pipe->end();
  other.pipe->end();
  CHECK(h.run_until([&] { return all_released(h); }));
}

TEST_CASE("download: the client leaves while queued for a reader slot") {
  harness h;
  auto l = live_stream(h, 1);
  h.add("one", l.s);
  auto first = h.connect();
  first.pipe->feed(get("/streams/one"));
  CHECK(h.run_until([&] { return h.reg().open_readers.load() == 1; }));
  auto queued = h.connect();
  queued.pipe->feed(get("/streams/one"));
  CHECK(h.run_until([&] { return h.ctx().stats.waiting_slot.load() == 1; }));
  CHECK(l.s.stats().waiting == 1);
  queued.pipe->end();
  CHECK(h.run_until([&] { return queued.gone(); }));
  CHECK(h.ctx().stats.waiting_slot.load() == 0);
  // The stream forgets the queued open at once (the download actor's
  // reader goes with the actor), not after --queue-timeout (30 s here),
  // while the first reader still holds the only slot.
  CHECK(h.run_until([&] { return l.s.stats().waiting == 0; }));
  CHECK(l.s.stats().readers == 1);
  first.pipe->end();
  CHECK(h.run_until([&] { return all_released(h) && no_readers(l.s); }));
}

TEST_CASE("download: the client leaves while it waits for bytes: its slot "
          "is free at once") {
  harness h;
  auto l = live_stream(h, 1);
  h.add("one", l.s);
  auto a = h.connect();
  a.pipe->feed(get("/streams/one"));
  CHECK(h.run_until([&] { return l.s.stats().parked == 1; }));
  a.pipe->end();
  CHECK(h.run_until([&] { return no_readers(l.s) && all_released(h); }));
  // The slot passes on: the next reader gets the bytes.
  auto b = h.connect();
  b.pipe->feed(get("/streams/one", "Connection: close\r\n"));
  CHECK(h.run_until([&] { return l.s.stats().parked == 1; }));
  l.w->write("hello", 5);
  l.w->close();
  CHECK(h.run_until([&] { return b.gone(); }));
  auto rs = parse(b.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].body == "hello");
  CHECK(rs[0].complete);
}

TEST_CASE("download: the client leaves right after the response header") {
  harness h;
  auto l = live_stream(h);
  h.add("live", l.s);
  l.w->write("0123456789", 10);
  auto c = h.connect();
  c.pipe->feed(get("/streams/live"));
  CHECK(h.run_until([&] { return !c.pipe->output().empty(); }));
  c.pipe->reset();
  l.w->write("more", 4);
  CHECK(h.run_until([&] { return c.gone() && no_readers(l.s); }));
  CHECK(all_released(h));
}

TEST_CASE("download: a client that accepts no bytes is dropped by the send "
          "timeout") {
  harness h{with_timeouts(1)};
  h.add("x", complete_stream(h, std::string(100000, 'x')));
  auto c = h.connect();
  c.pipe->set_window(50); // part of the header, then nothing
  c.pipe->feed(get("/streams/x"));
  CHECK(h.run_until([&] { return c.gone(); }, 5));
  CHECK(timeouts(h, timeout_phase::send) == 1);
  CHECK(all_released(h));
}

TEST_CASE("download: a drain lets a response finish, a forced one cuts it") {
  harness h;
  auto l = live_stream(h);
  h.add("live", l.s);
  auto busy = h.connect();
  busy.pipe->feed(get("/streams/live"));
  auto idle = h.connect();
  CHECK(h.run_until([&] { return l.s.stats().parked == 1; }));
  h.ctx().draining = true;
  for (auto& conn : h.ctx().open_connections())
    conn->drain(false);
  CHECK(h.run_until([&] { return idle.gone(); }));
  CHECK_FALSE(busy.gone());
  for (auto& conn : h.ctx().open_connections())
    conn->drain(true);
  CHECK(h.run_until([&] { return busy.gone() && no_readers(l.s); }));
  auto rs = parse(busy.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK_FALSE(rs[0].complete); // cut: no final chunk
  CHECK(all_released(h));
}

// -- upload ---------------------------------------------------------------------

TEST_CASE("upload: the client leaves mid-body: the stream fails at its "
          "byte") {
  harness h;
  auto c = h.connect();
  c.pipe->feed("PUT /streams/u HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
               "\r\nabcd");
  CHECK(h.run_until([&] { return h.reg().find("u") != nullptr; }));
  auto e = h.reg().find("u");
  CHECK(h.run_until([&] { return e->stream.stats().size == 4; }));
  c.pipe->end();
  CHECK(h.run_until([&] { return e->stream.stats().final; }));
  auto st = e->stream.stats();
  CHECK(st.size == 4);
  CHECK(asyncstream::is(st.error, asyncstream::errc::io_error));
  CHECK(asyncstream::render(st.error).find("before the body did")
        != std::string::npos);
  CHECK(h.run_until([&] { return all_released(h); }));
}

TEST_CASE("upload: a body that stalls fails its stream after the body "
          "timeout") {
  harness h{with_timeouts(1)};
  auto c = h.connect();
  c.pipe->feed("PUT /streams/u HTTP/1.1\r\nHost: a\r\n"
               "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  CHECK(h.run_until([&] { return c.gone(); }, 5));
  auto e = h.reg().find("u");
  REQUIRE(e);
  CHECK(h.run_until([&] { return e->stream.stats().final; }));
  auto st = e->stream.stats();
  CHECK(st.size == 3);
  CHECK(asyncstream::render(st.error).find("stalled") != std::string::npos);
  CHECK(timeouts(h, timeout_phase::body) == 1);
  CHECK(all_released(h));
}

TEST_CASE("upload: a bad chunk size is a 400 and fails the stream with the "
          "reason") {
  harness h;
  auto c = h.connect();
  c.pipe->feed("PUT /streams/u HTTP/1.1\r\nHost: a\r\n"
               "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n");
  CHECK(h.run_until([&] { return c.gone(); }));
  auto rs = parse(c.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 400);
  auto e = h.reg().find("u");
  REQUIRE(e);
  CHECK(h.run_until([&] { return e->stream.stats().final; }));
  CHECK(e->stream.stats().size == 3);
  CHECK(asyncstream::render(e->stream.stats().error).find("malformed chunked")
        != std::string::npos);
  CHECK(all_released(h));
}

TEST_CASE("upload: a forced drain fails the stream: a complete upload is "
          "201 and kept alive") {
  harness h;
  auto ok = h.connect();
  ok.pipe->feed("PUT /streams/done HTTP/1.1\r\nHost: a\r\nExpect: "
                "100-continue\r\nContent-Length: 3\r\n\r\nxyz"
                + get("/streams/done", "Connection: close\r\n"));
  CHECK(h.run_until([&] { return ok.gone(); }));
  auto rs = parse(ok.pipe->output());
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 201);
  CHECK(rs[1].body == "xyz");
  auto c = h.connect();
  c.pipe->feed("POST /streams/cut HTTP/1.1\r\nHost: a\r\n"
               "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n");
  CHECK(h.run_until([&] {
    auto e = h.reg().find("cut");
    return e && e->stream.stats().size == 2;
  }));
  for (auto& conn : h.ctx().open_connections())
    conn->drain(true);
  CHECK(h.run_until([&] { return c.gone(); }));
  auto e = h.reg().find("cut");
  CHECK(h.run_until([&] { return e->stream.stats().final; }));
  CHECK(asyncstream::render(e->stream.stats().error).find("shut down")
        != std::string::npos);
  CHECK(all_released(h));
}

TEST_CASE("upload: over --max-streams is a 503, and the name stays free") {
  auto cfg = harness::default_config();
  cfg.limits.max_streams = 1;
  harness h{cfg};
  h.add("a", complete_stream(h, "a"));
  auto c = h.connect();
  c.pipe->feed("PUT /streams/b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
               "\r\nb");
  CHECK(h.run_until([&] { return c.gone(); }));
  auto rs = parse(c.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 503);
  CHECK_FALSE(rs[0].field("Retry-After").empty());
  CHECK(h.reg().find("b") == nullptr);
  CHECK(h.reg().size() == 1);
}

TEST_CASE("upload: over --max-stream-size is a 413: the stream keeps the "
          "bytes up to the limit, then fails") {
  auto cfg = harness::default_config();
  cfg.limits.max_stream_bytes = 5;
  harness h{cfg};
  auto big = h.connect();
  big.pipe->feed("PUT /streams/big HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n"
                 "\r\nabcdef");
  CHECK(h.run_until([&] { return big.gone(); }));
  auto rs = parse(big.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 413);
  CHECK(h.reg().find("big") == nullptr); // refused before any stream
  auto c = h.connect();
  c.pipe->feed("PUT /streams/u HTTP/1.1\r\nHost: a\r\n"
               "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n");
  CHECK(h.run_until([&] { return c.gone(); }));
  rs = parse(c.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 413);
  auto e = h.reg().find("u");
  REQUIRE(e);
  CHECK(h.run_until([&] { return e->stream.stats().final; }));
  CHECK(e->stream.stats().size == 5);
  CHECK(asyncstream::is(e->stream.stats().error,
                        asyncstream::errc::buffer_full));
  auto r = h.connect();
  r.pipe->feed(get("/streams/u", "Connection: close\r\n"));
  CHECK(h.run_until([&] { return r.gone(); }));
  rs = parse(r.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].body == "abcde");
  CHECK_FALSE(rs[0].complete); // truncated at the limit
  CHECK(all_released(h));
}

// -- HTTP semantics over a whole connection ------------------------------------

TEST_CASE("HTTP/1.0 gets a close-delimited body for a live stream") {
  harness h;
  auto l = live_stream(h);
  h.add("live", l.s);
  auto c = h.connect();
  c.pipe->feed(get("/streams/live", {}, "HTTP/1.0"));
  CHECK(h.run_until([&] { return l.s.stats().parked == 1; }));
  l.w->write("abc", 3);
  l.w->close();
  CHECK(h.run_until([&] { return c.gone(); }));
  auto out = c.pipe->output();
  CHECK(out.find("Transfer-Encoding") == std::string::npos);
  CHECK(out.find("Content-Length") == std::string::npos);
  CHECK(out.substr(out.size() - 3) == "abc");
}

TEST_CASE("HEAD answers exactly the GET's headers") {
  harness h;
  h.add("x", complete_stream(h, "0123456789"));
  for (auto range : {"", "Range: bytes=-3\r\n", "Range: bytes=2-\r\n",
                     "Range: bytes=-0\r\n", "Range: bytes=abc\r\n",
                     "Range: bytes=20-\r\n"}) {
    CAPTURE(range);
    auto c = h.connect();
    auto extra = std::string{range} + "Connection: close\r\n";
    c.pipe->feed(get("/streams/x", extra));
    auto d = h.connect();
    d.pipe->feed("HEAD /streams/x HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n");
    CHECK(h.run_until([&] { return c.gone() && d.gone(); }));
    auto g = parse(c.pipe->output());
    auto hd = parse(d.pipe->output(), true);
    REQUIRE(g.size() == 1);
    REQUIRE(hd.size() == 1);
    auto strip_date = [](std::string x) {
      auto i = x.find("\r\nDate: ");
      return x.erase(i, x.find("\r\n", i + 2) - i);
    };
    CHECK(strip_date(g[0].head) == strip_date(hd[0].head));
  }
}

TEST_CASE("ranges at the edges: 416 with the length, suffixes, an unknown "
          "unit") {
  harness h;
  h.add("x", complete_stream(h, "0123456789"));
  struct row {
    const char* range;
    unsigned status;
    const char* body;
    const char* content_range;
  };
  for (auto r : {row{"bytes=-0", 416, nullptr, "bytes */10"},
                 row{"bytes=10-", 416, nullptr, "bytes */10"},
                 row{"bytes=18446744073709551615-", 416, nullptr, "bytes */10"},
                 row{"bytes=1-18446744073709551615", 206, "123456789",
                     "bytes 1-9/10"},
                 row{"bytes=9-9", 206, "9", "bytes 9-9/10"},
                 row{"bytes=-1", 206, "9", "bytes 9-9/10"},
                 row{"bytes=-100", 206, "0123456789", "bytes 0-9/10"},
                 row{"BYTES=0-0", 206, "0", "bytes 0-0/10"},
                 row{"items=0-1", 200, "0123456789", nullptr},
                 row{"bytes=0-1,3-4", 200, "0123456789", nullptr},
                 row{"bytes=abc", 416, nullptr, "bytes */10"}}) {
    CAPTURE(r.range);
    auto c = h.connect();
    c.pipe->feed(get("/streams/x", std::string{"Range: "} + r.range
                                     + "\r\nConnection: close\r\n"));
    CHECK(h.run_until([&] { return c.gone(); }));
    auto rs = parse(c.pipe->output());
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == r.status);
    if (r.body)
      CHECK(rs[0].body == r.body);
    CHECK(rs[0].field("Content-Range") == (r.content_range ? r.content_range : ""));
  }
  // A malformed range on a missing stream: 404.
  auto c = h.connect();
  c.pipe->feed(get("/streams/nope", "Range: bytes=abc\r\n"));
  CHECK(h.run_until([&] { return !parse(c.pipe->output()).empty(); }));
  CHECK(parse(c.pipe->output())[0].status == 404);
}

TEST_CASE("a live range: the status line waits for its first byte: the end "
          "cutting it short truncates it") {
  harness h;
  auto l = live_stream(h);
  h.add("live", l.s);
  auto c = h.connect();
  c.pipe->feed(get("/streams/live", "Range: bytes=5-20\r\n"));
  auto past = h.connect();
  past.pipe->feed(get("/streams/live", "Range: bytes=100-\r\n"));
  l.w->write("0123", 4);
  CHECK(h.run_until([&] { return l.s.stats().size == 4 && l.s.stats().parked >= 2; }));
  CHECK(c.pipe->output().empty()); // byte 5 does not exist yet
  l.w->write("456789", 6);
  CHECK(h.run_until([&] { return !parse(c.pipe->output()).empty(); }));
  auto rs = parse(c.pipe->output());
  CHECK(rs[0].status == 206);
  CHECK(rs[0].field("Content-Range") == "bytes 5-20/*");
  l.w->close(); // the stream ends at 10, before byte 20
  CHECK(h.run_until([&] {
    return c.gone() && !parse(past.pipe->output()).empty();
  }));
  rs = parse(c.pipe->output());
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].body == "56789");
  CHECK_FALSE(rs[0].complete); // truncated: no final chunk
  auto ps = parse(past.pipe->output());
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].status == 416); // it starts past the final end
  CHECK(ps[0].field("Content-Range") == "bytes */10");
}

} // TEST_SUITE
