// streamerd relays' pure parts: `--relay NAME=URL` parsing, what an
// upstream's response head and the end of its body mean, the resume range,
// the backoff and its bound (tools/streamerd/relay_spec.hpp,
// relay_policy.hpp).
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "relay_policy.hpp"
#include "relay_spec.hpp"
#include "traffic_history.hpp"

using namespace streamerd;
using namespace std::chrono_literals;

namespace {

std::string parse_error(std::string_view arg) {
  relay_spec spec;
  spec.name = "untouched";
  auto err = parse_relay_arg(arg, spec);
  if (!err.empty())
    CHECK(spec.name == "untouched");
  return err;
}

upstream_head head(unsigned status) {
  upstream_head h;
  h.status = status;
  return h;
}

upstream_head live_range(std::uint64_t from) {
  auto h = head(206);
  h.state = "live";
  h.content_range = "bytes " + std::to_string(from) + "-*/*";
  return h;
}

upstream_head failed(unsigned status, std::uint64_t at) {
  auto h = head(status);
  h.state = "failed";
  h.failed_at = std::to_string(at);
  h.error = "io_error: upload connection ended";
  return h;
}

} // namespace

TEST_SUITE("streamerd") {
  TEST_CASE("relay: NAME=URL with host, port and upstream name") {
    relay_spec spec;
    REQUIRE(parse_relay_arg("mirror=http://10.0.0.1:8080/streams/up.1", spec)
            == "");
    CHECK(spec.name == "mirror");
    CHECK(spec.url == "http://10.0.0.1:8080/streams/up.1");
    CHECK(spec.host == "10.0.0.1");
    CHECK(spec.port == 8080);
    CHECK(spec.upstream_name == "up.1");
    CHECK(spec.target == "/streams/up.1");
    CHECK(spec.host_header == "10.0.0.1:8080");
  }

  TEST_CASE("relay: the port defaults to 80, names and IPv6 hosts work") {
    relay_spec spec;
    REQUIRE(parse_relay_arg("a=http://origin.example/streams/b", spec) == "");
    CHECK(spec.host == "origin.example");
    CHECK(spec.port == 80);
    CHECK(spec.host_header == "origin.example:80");
    REQUIRE(parse_relay_arg("v6=http://[::1]:9000/streams/x", spec) == "");
    CHECK(spec.host == "::1");
    CHECK(spec.port == 9000);
    CHECK(spec.host_header == "[::1]:9000");
    REQUIRE(parse_relay_arg("v6=http://[fe80::1]/streams/x", spec) == "");
    CHECK(spec.port == 80);
  }

  TEST_CASE("relay: bad arguments are refused with a reason") {
    CHECK(parse_error("").find("expected NAME=URL") != std::string::npos);
    CHECK(parse_error("name").find("expected NAME=URL") != std::string::npos);
    CHECK(parse_error("=http://h/streams/a").find("expected NAME=URL")
          != std::string::npos);
    CHECK(parse_error("a=").find("expected NAME=URL") != std::string::npos);
    CHECK(parse_error(".a=http://h/streams/a").find("invalid stream name")
          != std::string::npos);
    CHECK(parse_error("a/b=http://h/streams/a").find("invalid stream name")
          != std::string::npos);
    CHECK(parse_error("a=https://h/streams/a").find("only http://")
          != std::string::npos);
    CHECK(parse_error("a=h:80/streams/a").find("expected a URL")
          != std::string::npos);
    CHECK(parse_error("a=http://h").find("no path") != std::string::npos);
    CHECK(parse_error("a=http://:80/streams/a").find("no host")
          != std::string::npos);
    CHECK(parse_error("a=http://h:/streams/a").find("empty port")
          != std::string::npos);
    CHECK(parse_error("a=http://h:0/streams/a").find("invalid port '0'")
          != std::string::npos);
    CHECK(parse_error("a=http://h:65536/streams/a").find("invalid port")
          != std::string::npos);
    CHECK(parse_error("a=http://h:8x/streams/a").find("invalid port")
          != std::string::npos);
    CHECK(parse_error("a=http://u@h/streams/a").find("user information")
          != std::string::npos);
    CHECK(parse_error("a=http://h_x/streams/a").find("invalid host")
          != std::string::npos);
    CHECK(parse_error("a=http://[::1/streams/a").find("unclosed")
          != std::string::npos);
    CHECK(parse_error("a=http://[]:1/streams/a").find("empty IPv6")
          != std::string::npos);
    CHECK(parse_error("a=http://h/other/a").find("/streams/NAME")
          != std::string::npos);
    CHECK(parse_error("a=http://h/streams/").find("invalid upstream stream")
          != std::string::npos);
    CHECK(parse_error("a=http://h/streams/a/b").find("invalid upstream")
          != std::string::npos);
    CHECK(parse_error("a=http://h/streams/a?wait=1").find("query")
          != std::string::npos);
    // The message names the URL it refuses.
    CHECK(parse_error("a=http://h:99999/streams/a").find("http://h:99999")
          == 0);
  }

  TEST_CASE("relay: a first request asks from 0, a resumed one one byte "
            "back") {
    CHECK(resume_offset(0) == 0);
    CHECK(resume_offset(1) == 0);
    CHECK(resume_offset(1000) == 999);
  }

  TEST_CASE("relay: 200 and 206 heads start a body, the overlap skipped") {
    auto first = head(200);
    first.state = "live";
    auto v = judge_head(first, 0, 0);
    CHECK(v.step == relay_step::body);
    CHECK(v.skip == 0);
    CHECK(!v.total);
    v = judge_head(live_range(999), 999, 1000);
    CHECK(v.step == relay_step::body);
    CHECK(v.skip == 1);
    // An ended stream's 200 says its length; a 206 of it too.
    auto ended = head(200);
    ended.state = "ended";
    ended.content_length = "5000";
    v = judge_head(ended, 0, 0);
    REQUIRE(v.total);
    CHECK(*v.total == 5000);
    auto tail = head(206);
    tail.state = "ended";
    tail.content_range = "bytes 999-4999/5000";
    v = judge_head(tail, 999, 1000);
    CHECK(v.step == relay_step::body);
    CHECK(v.total == 5000);
    // An upstream that ignores the Range (200 from 0): the relayed bytes are
    // skipped.
    first.state = "live";
    v = judge_head(first, 999, 1000);
    CHECK(v.step == relay_step::body);
    CHECK(v.skip == 1000);
  }

  TEST_CASE("relay: a 206 of another range, or without Content-Range, is "
            "retried") {
    CHECK(judge_head(live_range(5), 999, 1000).step == relay_step::retry);
    auto bad = head(206);
    CHECK(judge_head(bad, 999, 1000).step == relay_step::retry);
    bad.content_range = "bytes */*";
    CHECK(judge_head(bad, 999, 1000).step == relay_step::retry);
    bad.content_range = "items 999-*/*";
    CHECK(judge_head(bad, 999, 1000).step == relay_step::retry);
  }

  TEST_CASE("relay: 416 at the end of an ended stream ends cleanly") {
    auto h = head(416);
    h.content_range = "bytes */1000";
    auto v = judge_head(h, 1000, 1000);
    CHECK(v.step == relay_step::end);
    // Shorter than what was relayed: another stream.
    h.content_range = "bytes */10";
    v = judge_head(h, 999, 1000);
    CHECK(v.step == relay_step::fail);
    CHECK(v.reason.find("not the same stream") != std::string::npos);
    // A 416 without the length says nothing: retried.
    CHECK(judge_head(head(416), 999, 1000).step == relay_step::retry);
  }

  TEST_CASE("relay: 404 is retried before the first byte, fatal after") {
    auto v = judge_head(head(404), 0, 0);
    CHECK(v.step == relay_step::retry);
    CHECK(v.reason.find("404") != std::string::npos);
    v = judge_head(head(404), 999, 1000);
    CHECK(v.step == relay_step::fail);
    CHECK(v.reason.find("gone") != std::string::npos);
  }

  TEST_CASE("relay: 503, 500 without the signal and others are retried") {
    for (unsigned s : {500u, 502u, 503u, 400u, 302u})
      CHECK(judge_head(head(s), 0, 0).step == relay_step::retry);
  }

  TEST_CASE("relay: the failure signal fails at the failure's byte") {
    // The 500 of a range at the failure point: fail now.
    auto v = judge_head(failed(500, 1000), 999, 1000);
    CHECK(v.step == relay_step::fail);
    CHECK(v.reason.find("upload connection ended") != std::string::npos);
    // A 206 of a failed stream with bytes still to relay: read them, then
    // fail at byte 1500.
    auto h = failed(206, 1500);
    h.content_range = "bytes 999-*/*";
    v = judge_head(h, 999, 1000);
    CHECK(v.step == relay_step::body);
    REQUIRE(v.failed_at);
    CHECK(*v.failed_at == 1500);
    auto end = judge_end(false, v, 1500);
    CHECK(end.step == relay_step::fail);
    CHECK(end.reason.find("1500") != std::string::npos);
    // Cut before the failure's byte: a broken connection, retried.
    CHECK(judge_end(false, v, 1200).step == relay_step::retry);
    // The upstream failed before what was relayed: not the same stream.
    CHECK(judge_head(failed(206, 10), 999, 1000).step == relay_step::fail);
    // "failed" without where: retried (it cannot be placed).
    auto vague = head(500);
    vague.state = "failed";
    CHECK(judge_head(vague, 0, 0).step == relay_step::retry);
  }

  TEST_CASE("relay: a complete body ends cleanly, a cut one is retried") {
    auto live = judge_head(live_range(999), 999, 1000);
    CHECK(judge_end(true, live, 5000).step == relay_step::end);
    CHECK(judge_end(false, live, 5000).step == relay_step::retry);
    auto ended = head(200);
    ended.state = "ended";
    ended.content_length = "5000";
    auto v = judge_head(ended, 0, 0);
    CHECK(judge_end(true, v, 5000).step == relay_step::end);
    CHECK(judge_end(true, v, 4000).step == relay_step::retry);
  }

  TEST_CASE("relay: exponential backoff, capped, and the bound") {
    relay_limits lim;
    lim.backoff = 100ms;
    lim.backoff_max = 1000ms;
    lim.retries = 3;
    CHECK(backoff_delay(0, lim) == 100ms);
    CHECK(backoff_delay(1, lim) == 100ms);
    CHECK(backoff_delay(2, lim) == 200ms);
    CHECK(backoff_delay(3, lim) == 400ms);
    CHECK(backoff_delay(4, lim) == 800ms);
    CHECK(backoff_delay(5, lim) == 1000ms);
    CHECK(backoff_delay(1000000, lim) == 1000ms);
    CHECK(!gives_up(0, lim));
    CHECK(!gives_up(3, lim));
    CHECK(gives_up(4, lim));
    lim.retries = 0;
    CHECK(gives_up(1, lim));
  }

  TEST_CASE("relay: Content-Range as streamerd sends it") {
    std::optional<std::uint64_t> first;
    std::optional<std::uint64_t> total;
    REQUIRE(parse_content_range("bytes 5-*/*", first, total));
    CHECK(first == 5);
    CHECK(!total);
    REQUIRE(parse_content_range("bytes 5-9/10", first, total));
    CHECK(first == 5);
    CHECK(total == 10);
    REQUIRE(parse_content_range("bytes */10", first, total));
    CHECK(!first);
    CHECK(total == 10);
    CHECK(!parse_content_range("bytes 9-5/10", first, total));
    CHECK(!parse_content_range("bytes */*", first, total));
    CHECK(!parse_content_range("bytes 5-9", first, total));
    CHECK(!parse_content_range("bytes x-9/10", first, total));
    CHECK(!parse_content_range("bytes 18446744073709551616-*/*", first, total));
  }

  TEST_CASE("relay: the upstream's size from its /status.json") {
    std::string json = R"({"streams":[{"name":"a","origin":"x","state":"live",)"
                       R"("bytes":12,"readers":0},{"name":"ab","origin":)"
                       R"("y","state":"live","bytes":345}]})";
    CHECK(stream_bytes_in_status(json, "a") == 12);
    CHECK(stream_bytes_in_status(json, "ab") == 345);
    CHECK(!stream_bytes_in_status(json, "b"));
    CHECK(!stream_bytes_in_status("", "a"));
  }

  TEST_CASE("traffic history: rates per second over the last minute") {
    traffic_history h;
    auto t0 = traffic_history::clock::now();
    CHECK(h.sample(t0, 0, 0).in.empty());
    auto r = h.sample(t0 + 1s, 1000, 500);
    REQUIRE(r.in.size() == 1);
    CHECK(r.in[0] == 1000);
    CHECK(r.out[0] == 500);
    // Younger than a second: no new sample.
    CHECK(h.sample(t0 + 1500ms, 5000, 5000).in.size() == 1);
    r = h.sample(t0 + 3s, 3000, 500);
    REQUIRE(r.in.size() == 2);
    CHECK(r.in[1] == 1000); // 2000 bytes over 2 s
    CHECK(r.out[1] == 0);
    // Two minutes later the window holds the last samples only.
    for (int i = 4; i <= 124; ++i)
      r = h.sample(t0 + std::chrono::seconds{i}, 3000u + i, 500);
    CHECK(r.in.size() <= 61);
    CHECK(r.in.size() >= 59);
  }

} // TEST_SUITE
