// streamerd's HTTP rules (tools/streamerd/http_rules.hpp) and the text of
// /metrics and /status.json: requests are parsed by Beast from raw bytes,
// as the daemon does, then checked.
#include <doctest/doctest.h>

#include <string>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http_rules.hpp"
#include "metrics.hpp"

using namespace streamerd;
namespace http = boost::beast::http;

namespace {

/// Parses a request header; returns the parser's error, if any.
struct parsed {
  http::request_parser<http::empty_body> parser;
  boost::beast::error_code ec;
};

std::unique_ptr<parsed> parse(const std::string& raw) {
  auto p = std::make_unique<parsed>();
  p->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  p->parser.put(boost::asio::buffer(raw), p->ec);
  return p;
}

unsigned verdict(const std::string& raw) {
  auto p = parse(raw);
  if (p->ec)
    return refusal_for(p->ec).status;
  REQUIRE(p->parser.is_header_done());
  if (auto r = check_request(p->parser.get()))
    return r->status;
  return 0;
}

} // namespace

TEST_SUITE("streamerd") {

TEST_CASE("requests refused before routing: Host, version, transfer "
          "codings") {
  CHECK(verdict("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  CHECK(verdict("GET / HTTP/1.0\r\n\r\n") == 0); // 1.0 needs no Host
  CHECK(verdict("GET / HTTP/1.1\r\n\r\n") == 400);
  CHECK(verdict("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  CHECK(verdict("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  CHECK(verdict("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505);
  CHECK(verdict("GET / HTTP/0.9\r\nHost: a\r\n\r\n") == 505);
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        == 0);
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\n"
                "Transfer-Encoding: Chunked \r\n\r\n")
        == 0);
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\n"
                "Transfer-Encoding: gzip\r\n\r\n")
        == 501);
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\n"
                "Transfer-Encoding: gzip, chunked\r\n\r\n")
        == 501);
  // Both framings at once (request smuggling): refused by the parser.
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        == 400);
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\n"
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
        == 400);
  CHECK(verdict("PUT /streams/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                "Content-Length: 4\r\n\r\n")
        == 400);
  CHECK(verdict("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(verdict("GET http://a/streams/x HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
}

TEST_CASE("a header over the limit is 431") {
  http::request_parser<http::empty_body> p;
  p.header_limit(64);
  boost::beast::error_code ec;
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(100, 'a')
                    + "\r\n\r\n";
  p.put(boost::asio::buffer(raw), ec);
  CHECK(refusal_for(ec).status == 431);
}

TEST_CASE("request targets: origin and absolute form") {
  CHECK(target_path("/streams/a?wait=1") == std::string_view{"/streams/a"});
  CHECK(target_path("/") == std::string_view{"/"});
  CHECK(target_path("http://host:8080/streams/a?x")
        == std::string_view{"/streams/a"});
  CHECK(target_path("HTTP://host") == std::string_view{"/"});
  CHECK(target_path("https://host?q") == std::string_view{"/"});
  CHECK_FALSE(target_path(""));
  CHECK_FALSE(target_path("*"));
  CHECK_FALSE(target_path("ftp://host/x"));
  CHECK_FALSE(target_path("://x"));
  CHECK(target_query("/a?b=c") == std::string_view{"b=c"});
  CHECK(target_query("/a").empty());
}

TEST_CASE("response heads: status line, common fields, chunk framing") {
  response_head h{206};
  h.set("Content-Range", "bytes 0-1/2");
  auto text = h.render();
  CHECK(text.rfind("HTTP/1.1 206 Partial Content\r\n", 0) == 0);
  CHECK(text.find("\r\nServer: streamerd/") != std::string::npos);
  CHECK(text.find("\r\nDate: ") != std::string::npos);
  CHECK(text.find("\r\nContent-Range: bytes 0-1/2\r\n") != std::string::npos);
  CHECK(text.size() > 4);
  CHECK(text.substr(text.size() - 4) == "\r\n\r\n");
  CHECK(h.get("content-range") == std::string{"bytes 0-1/2"});
  CHECK_FALSE(h.get("Content-Length"));
  CHECK(chunk_header(0) == "0\r\n");
  CHECK(chunk_header(255) == "ff\r\n");
  CHECK(chunk_header(UINT64_MAX) == "ffffffffffffffff\r\n");
  CHECK(http_date().size() == 29); // "Tue, 01 Dec 2026 02:56:10 GMT"
}

TEST_CASE("metrics: Prometheus text with per-stream lag and the daemon's "
          "counters") {
  registry reg;
  counters c;
  c.connections = 4;
  c.timeouts[static_cast<std::size_t>(timeout_phase::send)] = 2;
  c.waiting_slot = 1;
  stream_report r;
  r.name = "a";
  r.stats.size = 1000;
  r.stats.parked = 3;
  r.readers = 2;
  r.lag = 400;
  r.bytes_out = 1600;
  reg.count_request(200);
  reg.count_request(200);
  reg.count_request(503);
  reg.retire(50, 7);
  auto text = render_metrics(reg, c, {r});
  CHECK(text.find("# TYPE streamerd_bytes_in_total counter")
        != std::string::npos);
  CHECK(text.find("streamerd_streams 1\n") != std::string::npos);
  CHECK(text.find("streamerd_bytes_in_total 1050\n") != std::string::npos);
  CHECK(text.find("streamerd_bytes_out_total 1607\n") != std::string::npos);
  CHECK(text.find("streamerd_parked_requests 3\n") != std::string::npos);
  CHECK(text.find("streamerd_connections 4\n") != std::string::npos);
  CHECK(text.find("streamerd_timeouts_total{phase=\"send\"} 2\n")
        != std::string::npos);
  CHECK(text.find("streamerd_waiting{for=\"slot\"} 1\n") != std::string::npos);
  CHECK(text.find("streamerd_requests_total{code=\"200\"} 2\n")
        != std::string::npos);
  CHECK(text.find("streamerd_requests_total{code=\"503\"} 1\n")
        != std::string::npos);
  CHECK(text.find("streamerd_stream_lag_bytes{stream=\"a\"} 400\n")
        != std::string::npos);
  auto json = render_status_json(reg, c, {r});
  CHECK(json.find("\"name\":\"a\"") != std::string::npos);
  CHECK(json.find("\"state\":\"live\"") != std::string::npos);
  CHECK(json.find("\"bytes\":1000") != std::string::npos);
  CHECK(json.find("\"connections\":4") != std::string::npos);
}

TEST_CASE("a gauge hold gives its one back exactly once") {
  std::atomic<std::int64_t> g{0};
  {
    gauge_hold a{g};
    CHECK(g == 1);
    gauge_hold b = std::move(a);
    CHECK(g == 1);
    b.reset();
    CHECK(g == 0);
    b.reset();
    CHECK(g == 0);
    gauge_hold c{g};
    c = gauge_hold{g};
    CHECK(g == 1);
  }
  CHECK(g == 0);
}

} // TEST_SUITE
