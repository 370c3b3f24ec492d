#include "relay_spec.hpp"

#include "byte_range.hpp"

namespace streamerd {

namespace {

constexpr std::string_view scheme = "http://";
constexpr std::string_view streams_prefix = "/streams/";

bool host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool v6_byte(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
         || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

} // namespace

std::string parse_relay_url(std::string_view url, relay_spec& out) {
  if (url.substr(0, scheme.size()) != scheme) {
    if (url.find("://") != std::string_view::npos)
      return "only http:// upstreams are supported";
    return "expected a URL like http://HOST:PORT/streams/NAME";
  }
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos)
    return "no path: expected http://HOST:PORT/streams/NAME";
  auto authority = rest.substr(0, slash);
  auto path = rest.substr(slash);
  if (authority.find('@') != std::string_view::npos)
    return "user information in the URL is not supported";
  std::string host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return "unclosed '[' in the host";
    host = std::string{authority.substr(1, close - 1)};
    if (host.empty())
      return "empty IPv6 address";
    for (auto c : host)
      if (!v6_byte(c))
        return "invalid IPv6 address '" + host + "'";
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return "unexpected text after ']'";
      port_text = after.substr(1);
      if (port_text.empty())
        return "empty port";
    }
  } else {
    auto colon = authority.find(':');
    host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty())
        return "empty port";
    }
    if (host.empty())
      return "no host";
    for (auto c : host)
      if (!host_byte(c))
        return "invalid host '" + host + "'";
  }
  std::uint16_t port = 80;
  if (!port_text.empty()) {
    std::uint64_t n = 0;
    if (!parse_seconds(port_text, n) || n == 0 || n > 65535)
      return "invalid port '" + std::string{port_text} + "'";
    port = static_cast<std::uint16_t>(n);
  }
  if (path.find_first_of("?#") != std::string_view::npos)
    return "a query or fragment is not supported";
  if (path.substr(0, streams_prefix.size()) != streams_prefix)
    return "the path must be /streams/NAME";
  auto upname = path.substr(streams_prefix.size());
  if (!valid_stream_name(upname))
    return "invalid upstream stream name '" + std::string{upname}
           + "': use 1-64 characters of A-Z a-z 0-9 . _ - (not starting "
             "with a dot)";
  out.url = std::string{url};
  out.host = host;
  out.port = port;
  out.upstream_name = std::string{upname};
  out.target = std::string{path};
  bool v6 = host.find(':') != std::string::npos;
  out.host_header = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  return {};
}

std::string parse_relay_arg(std::string_view arg, relay_spec& out) {
  auto eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == arg.size())
    return "expected NAME=URL, like demo=http://10.0.0.1:8080/streams/demo";
  auto name = arg.substr(0, eq);
  if (!valid_stream_name(name))
    return "invalid stream name '" + std::string{name}
           + "': use 1-64 characters of A-Z a-z 0-9 . _ - (not starting "
             "with a dot)";
  relay_spec spec;
  if (auto err = parse_relay_url(arg.substr(eq + 1), spec); !err.empty())
    return std::string{arg.substr(eq + 1)} + ": " + err;
  spec.name = std::string{name};
  out = std::move(spec);
  return {};
}

} // namespace streamerd
