// http_rules: the parts of HTTP/1.1 (RFC 9110, RFC 9112) that streamerd
// decides from values alone: which requests it refuses before routing them,
// how a target maps to a path, and how a response head is written.
//
// Contract: plain functions and values; no network, no actors; thread-safe
// (the Date cache is per thread). Unit-tested in tests/streamerd_http_test.cpp
// and fuzzed through the request fuzzer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

namespace streamerd {

/// A refusal decided before routing: the status and a line for the body.
struct refusal {
  unsigned status = 400;
  std::string text;
};

/// Maps an error of Beast's request parser to the answer (431 for a header
/// block over the limit, 505 for a version other than HTTP/1.x, 400 for
/// anything else malformed).
refusal refusal_for(boost::beast::error_code ec);

/// Checks a parsed request header: HTTP/1.0 or 1.1 only (505), Host exactly
/// once for HTTP/1.1 (400), no transfer coding but `chunked` (501), a target
/// in origin or absolute form (400).
std::optional<refusal>
check_request(const boost::beast::http::request_header<>& req);

/// Returns the path of a request target (origin form `/p?q`, or absolute
/// form `http://host/p?q`), without its query; none if it is neither.
std::optional<std::string_view> target_path(std::string_view target);

/// Returns the query of a target (after `?`), empty if none.
std::string_view target_query(std::string_view target);

/// The head of a response: status line and fields, rendered by `render`.
class response_head {
public:
  explicit response_head(unsigned status);

  /// Adds a field (no check for duplicates).
  response_head& set(std::string_view name, std::string value);

  unsigned status() const noexcept {
    return status_;
  }

  /// Returns the value of the first field `name` (case-insensitive).
  std::optional<std::string> get(std::string_view name) const;

  /// The head as sent: `HTTP/1.1 ...\r\n`, the fields, the common fields
  /// (Server, Date) and the empty line.
  std::string render() const;

private:
  unsigned status_;
  std::vector<std::pair<std::string, std::string>> fields_;
};

/// The current time as an HTTP date (IMF-fixdate), cached per second.
std::string http_date();

/// The header of one chunk of a chunked body: hex size and CRLF.
std::string chunk_header(std::uint64_t size);

/// The last chunk and the end of a chunked body.
constexpr std::string_view last_chunk = "0\r\n\r\n";

/// The end of one chunk's data.
constexpr std::string_view chunk_end = "\r\n";

} // namespace streamerd
