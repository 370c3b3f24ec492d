// relay_spec: what `--relay NAME=URL` names: the local stream NAME and the
// upstream stream, `http://HOST[:PORT]/streams/UPNAME` of another streamerd.
//
// Contract: pure (no network, no CLI), unit-tested in
// tests/streamerd_relay_test.cpp. Only plain `http://` URLs with an origin
// form path `/streams/UPNAME` (no query, no fragment, no userinfo); HOST is
// a name, an IPv4 address or `[IPv6]`; PORT defaults to 80.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace streamerd {

/// One relay: a local stream that mirrors an upstream one.
struct relay_spec {
  /// The local stream's name.
  std::string name;
  /// The URL as given.
  std::string url;
  /// The upstream host (without brackets for IPv6) and port.
  std::string host;
  std::uint16_t port = 80;
  /// The upstream stream's name and its request target (`/streams/UPNAME`).
  std::string upstream_name;
  std::string target;
  /// The value of the Host header (`host:port`, brackets kept for IPv6).
  std::string host_header;
};

/// Parses `http://HOST[:PORT]/streams/UPNAME` into `out` (`name` is left
/// alone); returns an error message (empty on success).
std::string parse_relay_url(std::string_view url, relay_spec& out);

/// Parses the argument of `--relay`, `NAME=URL`; returns an error message
/// naming what is wrong (empty on success).
std::string parse_relay_arg(std::string_view arg, relay_spec& out);

} // namespace streamerd
