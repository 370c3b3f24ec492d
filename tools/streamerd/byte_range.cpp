#include "byte_range.hpp"

#include <limits>

namespace streamerd {

namespace {

constexpr auto u64_max = std::numeric_limits<std::uint64_t>::max();

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// OWS = *( SP / HTAB ), RFC 9110 5.6.3.
constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view x) noexcept {
  while (!x.empty() && is_ows(x.front()))
    x.remove_prefix(1);
  while (!x.empty() && is_ows(x.back()))
    x.remove_suffix(1);
  return x;
}

constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Case-insensitive (ASCII) test for a prefix.
bool starts_with_nocase(std::string_view x, std::string_view prefix) noexcept {
  if (x.size() < prefix.size())
    return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (to_lower(x[i]) != to_lower(prefix[i]))
      return false;
  return true;
}

// 1*DIGIT into a uint64; false when empty, on any other byte, or above
// 2^64-1. Leading zeros are fine (their count does not matter).
bool parse_u64(std::string_view text, std::uint64_t& out) noexcept {
  if (text.empty())
    return false;
  std::uint64_t v = 0;
  for (auto c : text) {
    if (!is_digit(c))
      return false;
    auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (u64_max - d) / 10)
      return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

// One byte-range-spec without surrounding OWS: `N-`, `N-M` (M >= N), `-K`.
bool parse_spec(std::string_view spec, byte_range& out) noexcept {
  auto dash = spec.find('-');
  if (dash == std::string_view::npos)
    return false;
  auto first = spec.substr(0, dash);
  auto last = spec.substr(dash + 1);
  byte_range r;
  if (first.empty()) {
    r.form = byte_range::kind::suffix;
    if (!parse_u64(last, r.suffix))
      return false;
  } else {
    r.form = byte_range::kind::from;
    if (!parse_u64(first, r.first))
      return false;
    if (!last.empty()) {
      std::uint64_t l = 0;
      if (!parse_u64(last, l) || l < r.first)
        return false;
      r.last = l;
    }
  }
  out = r;
  return true;
}

} // namespace

bool valid_stream_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_stream_name_length
      || name.front() == '.')
    return false;
  for (auto c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)
              || c == '.' || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

range_parse parse_range(std::string_view value, byte_range& out) noexcept {
  value = trim_ows(value);
  if (value.empty())
    return range_parse::none;
  // Only `bytes=` is ours; any other unit, a bare token, or anything else
  // that is not a ranges-specifier in bytes is ignored (RFC 9110 14.2).
  constexpr std::string_view unit = "bytes=";
  if (!starts_with_nocase(value, unit))
    return range_parse::ignored;
  value.remove_prefix(unit.size());
  // range-set = 1#range-spec: elements separated by OWS "," OWS; empty
  // elements are allowed (RFC 9110 5.6.1) but at least one must be there.
  std::size_t elements = 0;
  std::size_t specs = 0;
  byte_range found;
  for (;;) {
    auto comma = value.find(',');
    auto item = trim_ows(value.substr(0, comma));
    ++elements;
    if (!item.empty()) {
      if (!parse_spec(item, found))
        return range_parse::malformed;
      ++specs;
    }
    if (comma == std::string_view::npos)
      break;
    value.remove_prefix(comma + 1);
  }
  if (specs == 0)
    return range_parse::malformed;
  if (elements > 1)
    return range_parse::multiple;
  out = found;
  return range_parse::ok;
}

range_plan plan_range(const byte_range& r, std::uint64_t size,
                      bool final) noexcept {
  range_plan plan;
  if (r.form == byte_range::kind::suffix) {
    // Final or not: planned against the bytes there are (callers wait for
    // the end of a live stream first).
    if (r.suffix == 0 || size == 0) {
      plan.unsatisfiable = true;
      return plan;
    }
    auto n = r.suffix < size ? r.suffix : size;
    plan.offset = size - n;
    plan.length = n;
    return plan;
  }
  plan.offset = r.first;
  if (r.last && *r.last < r.first) {
    plan.unsatisfiable = true;
    return plan;
  }
  if (final) {
    if (r.first >= size) {
      plan.unsatisfiable = true;
      return plan;
    }
    // first < size, so size - 1 and the lengths below cannot wrap.
    auto last = size - 1;
    if (r.last && *r.last < last)
      last = *r.last;
    plan.length = last - r.first + 1;
    return plan;
  }
  // Live: bounded by `last` alone, if its length fits in uint64.
  if (r.last && *r.last - r.first < u64_max)
    plan.length = *r.last - r.first + 1;
  return plan;
}

std::string content_range(std::uint64_t offset,
                          std::optional<std::uint64_t> length,
                          std::optional<std::uint64_t> total) {
  std::string out = "bytes ";
  out += std::to_string(offset);
  out += '-';
  if (length && *length > 0) {
    auto span = *length - 1;
    out += std::to_string(span > u64_max - offset ? u64_max : offset + span);
  } else {
    out += '*';
  }
  out += '/';
  if (total)
    out += std::to_string(*total);
  else
    out += '*';
  return out;
}

std::string unsatisfied_range(std::uint64_t total) {
  return "bytes */" + std::to_string(total);
}

bool parse_seconds(std::string_view text, std::uint64_t& out) noexcept {
  return parse_u64(text, out);
}

std::optional<std::string> query_param(std::string_view target,
                                       std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto item = rest.substr(0, amp);
    auto eq = item.find('=');
    if (item.substr(0, eq) == key)
      return std::string{eq == std::string_view::npos ? std::string_view{}
                                                      : item.substr(eq + 1)};
    if (amp == std::string_view::npos)
      break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

} // namespace streamerd
