// cli_values: parsing of aspipe's command-line values (HOST:PORT, byte
// sizes, durations in seconds).
//
// Contract: pure functions; each returns an empty string on success and a
// message naming what is wrong otherwise.
#pragma once

#include <cstdint>
#include <string>

namespace aspipe {

/// Parses "HOST:PORT" ("[v6]:PORT" for IPv6); the port must be 1..65535.
std::string parse_host_port(const std::string& text, std::string& host,
                            std::uint16_t& port);

/// Parses a port, 0..65535 (0 picks a free one where allowed).
std::string parse_port(const std::string& text, std::uint16_t& port);

/// Parses "64M", "1G", "4096", "512K" (binary units; B, K, M, G, KiB,
/// MiB, GiB); at least 1.
std::string parse_size(const std::string& text, std::uint64_t& out);

/// Formats a byte count as "12.3 MiB".
std::string show_bytes(std::uint64_t n);

} // namespace aspipe
