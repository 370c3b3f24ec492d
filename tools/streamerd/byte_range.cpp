#include "byte_range.hpp"

#include <charconv>
#include <limits>

namespace streamerd {

namespace {

bool parse_u64(std::string_view text, std::uint64_t& out) noexcept {
  if (text.empty())
    return false;
  for (auto c : text)
    if (c < '0' || c > '9')
      return false;
  auto res = std::from_chars(text.data(), text.data() + text.size(), out);
  return res.ec == std::errc{} && res.ptr == text.data() + text.size();
}

std::string_view trim(std::string_view x) noexcept {
  while (!x.empty() && (x.front() == ' ' || x.front() == '\t'))
    x.remove_prefix(1);
  while (!x.empty() && (x.back() == ' ' || x.back() == '\t'))
    x.remove_suffix(1);
  return x;
}

} // namespace

bool valid_stream_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name.front() == '.')
    return false;
  for (auto c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

range_parse parse_range(std::string_view value, byte_range& out) noexcept {
  value = trim(value);
  if (value.empty())
    return range_parse::none;
  constexpr std::string_view unit = "bytes=";
  if (value.substr(0, unit.size()) != unit)
    return range_parse::malformed;
  value.remove_prefix(unit.size());
  if (value.find(',') != std::string_view::npos)
    return range_parse::multiple;
  value = trim(value);
  auto dash = value.find('-');
  if (dash == std::string_view::npos)
    return range_parse::malformed;
  auto first = trim(value.substr(0, dash));
  auto last = trim(value.substr(dash + 1));
  byte_range r;
  if (first.empty()) {
    if (!parse_u64(last, r.suffix))
      return range_parse::malformed;
    r.form = byte_range::kind::suffix;
  } else {
    if (!parse_u64(first, r.first))
      return range_parse::malformed;
    if (!last.empty()) {
      std::uint64_t l = 0;
      if (!parse_u64(last, l) || l < r.first)
        return range_parse::malformed;
      r.last = l;
    }
  }
  out = r;
  return range_parse::ok;
}

range_plan plan_range(const byte_range& r, std::uint64_t size,
                      bool final) noexcept {
  range_plan plan;
  if (r.form == byte_range::kind::suffix) {
    if (r.suffix == 0) {
      plan.unsatisfiable = true;
      return plan;
    }
    auto n = r.suffix < size ? r.suffix : size;
    plan.offset = size - n;
    plan.length = n;
    return plan;
  }
  plan.offset = r.first;
  if (final && r.first >= size) {
    plan.unsatisfiable = true;
    return plan;
  }
  if (r.last) {
    auto n = *r.last - r.first + 1;
    if (final && r.first + n > size)
      n = size - r.first;
    plan.length = n;
  } else if (final) {
    plan.length = size - r.first;
  }
  return plan;
}

std::string content_range(std::uint64_t offset,
                          std::optional<std::uint64_t> length,
                          std::optional<std::uint64_t> total) {
  std::string out = "bytes " + std::to_string(offset) + "-";
  if (length && *length > 0)
    out += std::to_string(offset + *length - 1);
  else
    out += "*";
  out += "/";
  out += total ? std::to_string(*total) : std::string{"*"};
  return out;
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
