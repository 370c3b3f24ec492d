// libFuzzer target: stream names, query parameters and `?wait=` seconds
// (tools/streamerd/byte_range.hpp).
//
// For every input:
// - valid_stream_name(input) must match the rule spelled out here (1 to 64
//   bytes of A-Z a-z 0-9 . _ -, not starting with a dot);
// - parse_seconds(input) must match a 128-bit reference (digits only, at
//   most 2^64-1) and leave its output alone on failure;
// - query_param(target, key), with the input split at its first newline
//   into key and target (no newline: key "wait"), must match a reference
//   that splits the query into items first.
// Any disagreement traps (FUZZ_CHECK). No CAF.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "byte_range.hpp"
#include "fuzz_check.hpp"

using namespace streamerd;

namespace {

using u128 = unsigned __int128;

bool allowed(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool reference_name(std::string_view x) {
  if (x.size() < 1 || x.size() > 64 || x[0] == '.')
    return false;
  for (unsigned char c : x)
    if (!allowed(c))
      return false;
  return true;
}

std::optional<std::uint64_t> reference_seconds(std::string_view x) {
  if (x.empty())
    return std::nullopt;
  u128 v = 0;
  for (char c : x) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > std::numeric_limits<std::uint64_t>::max())
      return std::nullopt;
  }
  return static_cast<std::uint64_t>(v);
}

std::optional<std::string> reference_query(std::string_view target,
                                           std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  std::vector<std::string_view> items;
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= query.size(); ++i)
    if (i == query.size() || query[i] == '&') {
      items.push_back(query.substr(begin, i - begin));
      begin = i + 1;
    }
  // An empty query, or the empty rest after a last '&', is no item.
  if (items.back().empty())
    items.pop_back();
  for (auto item : items) {
    auto eq = item.find('=');
    auto name = eq == std::string_view::npos ? item : item.substr(0, eq);
    if (name == key)
      return std::string{eq == std::string_view::npos ? std::string_view{}
                                                      : item.substr(eq + 1)};
  }
  return std::nullopt;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};

  bool valid = valid_stream_name(input);
  FUZZ_CHECK(valid == reference_name(input));
  if (valid) {
    FUZZ_CHECK(!input.empty() && input.size() <= max_stream_name_length);
    FUZZ_CHECK(input.front() != '.');
    for (unsigned char c : input)
      FUZZ_CHECK(allowed(c));
    // A valid name is safe in a path and a query: no '/', '?', '&', '%'.
    FUZZ_CHECK(input.find_first_of("/?&%=# \r\n") == std::string_view::npos);
  }

  std::uint64_t secs = 4242;
  bool ok = parse_seconds(input, secs);
  auto want = reference_seconds(input);
  FUZZ_CHECK(ok == want.has_value());
  FUZZ_CHECK(secs == (ok ? *want : 4242));

  std::string_view key = "wait";
  std::string_view target = input;
  if (auto nl = input.find('\n'); nl != std::string_view::npos) {
    key = input.substr(0, nl);
    target = input.substr(nl + 1);
  }
  auto got = query_param(target, key);
  auto ref = reference_query(target, key);
  FUZZ_CHECK(got == ref);
  if (got) {
    FUZZ_CHECK(got->find('&') == std::string::npos);
    FUZZ_CHECK(target.find(*got) != std::string_view::npos);
  }
  return 0;
}
