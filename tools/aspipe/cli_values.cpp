#include "cli_values.hpp"

#include <cstdio>

namespace aspipe {

namespace {

bool parse_u64(const std::string& text, std::uint64_t& out) {
  if (text.empty() || text.size() > 19)
    return false;
  std::uint64_t n = 0;
  for (auto c : text) {
    if (c < '0' || c > '9')
      return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = n;
  return true;
}

} // namespace

std::string parse_port(const std::string& text, std::uint16_t& port) {
  std::uint64_t n = 0;
  if (!parse_u64(text, n) || n > 65535)
    return "invalid port '" + text + "' (expected 0..65535)";
  port = static_cast<std::uint16_t>(n);
  return {};
}

std::string parse_host_port(const std::string& text, std::string& host,
                            std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return "expected HOST:PORT, got '" + text + "'";
  auto h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
    h = h.substr(1, h.size() - 2);
  if (h.empty())
    return "expected HOST:PORT, got '" + text + "'";
  if (auto err = parse_port(text.substr(colon + 1), port); !err.empty())
    return err;
  if (port == 0)
    return "invalid port 0 in '" + text + "'";
  host = h;
  return {};
}

std::string parse_size(const std::string& text, std::uint64_t& out) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  std::uint64_t n = 0;
  if (digits == 0 || !parse_u64(text.substr(0, digits), n))
    return "invalid size '" + text + "' (e.g. 4096, 512K, 64M, 1G)";
  auto unit = text.substr(digits);
  int shift = 0;
  if (unit.empty() || unit == "B")
    shift = 0;
  else if (unit == "K" || unit == "KiB")
    shift = 10;
  else if (unit == "M" || unit == "MiB")
    shift = 20;
  else if (unit == "G" || unit == "GiB")
    shift = 30;
  else
    return "invalid size unit in '" + text + "' (B, K, M, G)";
  if (shift > 0 && n > (UINT64_MAX >> shift))
    return "size '" + text + "' too large";
  out = n << shift;
  if (out == 0)
    return "size '" + text + "' must be at least 1 byte";
  return {};
}

std::string show_bytes(std::uint64_t n) {
  char buf[32];
  if (n < 1024)
    std::snprintf(buf, sizeof(buf), "%llu B",
                  static_cast<unsigned long long>(n));
  else if (n < (1u << 20))
    std::snprintf(buf, sizeof(buf), "%.1f KiB", n / 1024.0);
  else if (n < (1ull << 30))
    std::snprintf(buf, sizeof(buf), "%.1f MiB", n / 1048576.0);
  else
    std::snprintf(buf, sizeof(buf), "%.2f GiB", n / 1073741824.0);
  return buf;
}

} // namespace aspipe
