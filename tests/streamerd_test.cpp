// streamerd's pure parts: stream names, Range headers and how a range maps
// onto a stream that may still be growing, query parameters, metrics text.
#include <doctest/doctest.h>

#include "byte_range.hpp"
#include "registry.hpp"

using namespace streamerd;

TEST_SUITE("streamerd") {

TEST_CASE("stream names are short safe tokens") {
  CHECK(valid_stream_name("a"));
  CHECK(valid_stream_name("Demo-1.2_x"));
  CHECK(valid_stream_name(std::string(64, 'x')));
  CHECK_FALSE(valid_stream_name(""));
  CHECK_FALSE(valid_stream_name(std::string(65, 'x')));
  CHECK_FALSE(valid_stream_name(".hidden"));
  CHECK_FALSE(valid_stream_name(".."));
  CHECK_FALSE(valid_stream_name("a/b"));
  CHECK_FALSE(valid_stream_name("bad%20name"));
  CHECK_FALSE(valid_stream_name("sp ace"));
}

TEST_CASE("Range headers: the forms we serve and the ones we refuse") {
  byte_range r;
  CHECK(parse_range("", r) == range_parse::none);
  REQUIRE(parse_range("bytes=100-199", r) == range_parse::ok);
  CHECK(r.form == byte_range::kind::from);
  CHECK(r.first == 100);
  CHECK(r.last == 199u);
  REQUIRE(parse_range("bytes=5-", r) == range_parse::ok);
  CHECK(r.first == 5);
  CHECK_FALSE(r.last);
  REQUIRE(parse_range("bytes=-42", r) == range_parse::ok);
  CHECK(r.form == byte_range::kind::suffix);
  CHECK(r.suffix == 42);
  CHECK(parse_range("bytes=abc", r) == range_parse::malformed);
  CHECK(parse_range("bytes=9-3", r) == range_parse::malformed);
  CHECK(parse_range("bytes=-", r) == range_parse::malformed);
  CHECK(parse_range("items=1-2", r) == range_parse::malformed);
  CHECK(parse_range("bytes=1-2,5-6", r) == range_parse::multiple);
  CHECK(parse_range("bytes=99999999999999999999-", r)
        == range_parse::malformed);
}

TEST_CASE("a range on an ended stream is clipped or unsatisfiable") {
  byte_range r;
  REQUIRE(parse_range("bytes=100-199", r) == range_parse::ok);
  auto p = plan_range(r, 150, true);
  CHECK_FALSE(p.unsatisfiable);
  CHECK(p.offset == 100);
  CHECK(p.length == 50u);
  REQUIRE(parse_range("bytes=150-", r) == range_parse::ok);
  CHECK(plan_range(r, 150, true).unsatisfiable); // starts at the end
  REQUIRE(parse_range("bytes=-10", r) == range_parse::ok);
  p = plan_range(r, 150, true);
  CHECK(p.offset == 140);
  CHECK(p.length == 10u);
  REQUIRE(parse_range("bytes=-1000", r) == range_parse::ok);
  p = plan_range(r, 150, true);
  CHECK(p.offset == 0);
  CHECK(p.length == 150u);
  REQUIRE(parse_range("bytes=-0", r) == range_parse::ok);
  CHECK(plan_range(r, 150, true).unsatisfiable);
}

TEST_CASE("a range on a live stream waits for bytes past its end") {
  byte_range r;
  REQUIRE(parse_range("bytes=1000-", r) == range_parse::ok);
  auto p = plan_range(r, 10, false);
  CHECK_FALSE(p.unsatisfiable); // the bytes may still come
  CHECK(p.offset == 1000);
  CHECK_FALSE(p.length); // to the end, whenever that is
  REQUIRE(parse_range("bytes=1000-1999", r) == range_parse::ok);
  p = plan_range(r, 10, false);
  CHECK(p.length == 1000u);
}

TEST_CASE("Content-Range uses * for what is not known yet") {
  CHECK(content_range(100, 100, 5000) == "bytes 100-199/5000");
  CHECK(content_range(100, 100, std::nullopt) == "bytes 100-199/*");
  CHECK(content_range(100, std::nullopt, std::nullopt) == "bytes 100-*/*");
}

TEST_CASE("query parameters") {
  CHECK(query_param("/streams/a?wait=5", "wait") == std::string{"5"});
  CHECK(query_param("/streams/a?x=1&wait=7", "wait") == std::string{"7"});
  CHECK_FALSE(query_param("/streams/a", "wait"));
  CHECK_FALSE(query_param("/streams/a?waiting=1", "wait"));
  std::uint64_t n = 0;
  CHECK(parse_seconds("12", n));
  CHECK(n == 12);
  CHECK_FALSE(parse_seconds("-1", n));
  CHECK_FALSE(parse_seconds("1s", n));
}

TEST_CASE("metrics: Prometheus text with per-stream lag") {
  registry reg;
  stream_report r;
  r.name = "a";
  r.status.size = 1000;
  r.status.parked = 3;
  r.readers = 2;
  r.lag = 400;
  r.bytes_out = 1600;
  reg.count_request(200);
  reg.count_request(200);
  reg.count_request(503);
  reg.retire(50, 7);
  auto text = render_metrics(reg, {r});
  CHECK(text.find("# TYPE streamerd_bytes_in_total counter") != std::string::npos);
  CHECK(text.find("streamerd_streams 1\n") != std::string::npos);
  CHECK(text.find("streamerd_bytes_in_total 1050\n") != std::string::npos);
  CHECK(text.find("streamerd_bytes_out_total 1607\n") != std::string::npos);
  CHECK(text.find("streamerd_parked_requests 3\n") != std::string::npos);
  CHECK(text.find("streamerd_requests_total{code=\"200\"} 2\n")
        != std::string::npos);
  CHECK(text.find("streamerd_requests_total{code=\"503\"} 1\n")
        != std::string::npos);
  CHECK(text.find("streamerd_stream_lag_bytes{stream=\"a\"} 400\n")
        != std::string::npos);
  auto json = render_status_json(reg, {r});
  CHECK(json.find("\"name\":\"a\"") != std::string::npos);
  CHECK(json.find("\"state\":\"live\"") != std::string::npos);
  CHECK(json.find("\"bytes\":1000") != std::string::npos);
}

TEST_CASE("the lag follows the slowest consumer") {
  stream_entry e;
  CHECK(e.consumers().first == 0);
  e.track(1, 500);
  e.track(2, 200);
  e.track(1, 900);
  auto [n, slowest] = e.consumers();
  CHECK(n == 2);
  CHECK(slowest == 200u);
  e.untrack(2);
  CHECK(e.consumers().second == 900u);
}

TEST_CASE("waiting for a name: called once it is added, or never after "
          "cancel") {
  registry reg;
  int called = 0;
  auto token = reg.await("x", [&] { ++called; });
  CHECK(token != 0);
  auto other = reg.await("y", [&] { called += 100; });
  reg.cancel_await(other);
  auto e = std::make_shared<stream_entry>();
  e->name = "x";
  CHECK(reg.add(e));
  CHECK(called == 1);
  CHECK_FALSE(reg.add(e)); // the name is taken
  auto y = std::make_shared<stream_entry>();
  y->name = "y";
  CHECK(reg.add(y));
  CHECK(called == 1);
  CHECK(reg.await("x", [&] { ++called; }) == 0); // exists: at once
  CHECK(called == 2);
  CHECK(reg.remove("x") == e);
  CHECK_FALSE(reg.find("x"));
}

} // TEST_SUITE
