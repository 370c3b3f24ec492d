// The roles a child process of the remote tests plays, and what both sides
// agree on (the byte pattern, its hash, the line formats).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>

#include "asyncstream/remote.hpp"

namespace asyncstream::test {

/// The byte at stream offset `i` of every test stream.
inline std::byte pattern_byte(std::uint64_t i) {
  return static_cast<std::byte>((i * 131 + i / 4099) & 0xff);
}

/// `n` pattern bytes starting at offset `from`.
inline std::vector<std::byte> pattern(std::uint64_t from, std::size_t n) {
  std::vector<std::byte> res(n);
  for (std::size_t i = 0; i < n; ++i)
    res[i] = pattern_byte(from + i);
  return res;
}

/// FNV-1a over bytes, continued from `h`.
inline std::uint64_t fnv(const std::byte* data, std::size_t n,
                         std::uint64_t h = 1469598103934665603ull) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<std::uint64_t>(data[i]);
    h *= 1099511628211ull;
  }
  return h;
}

/// The hash of the first `n` pattern bytes.
inline std::uint64_t pattern_hash(std::uint64_t n) {
  std::uint64_t h = 1469598103934665603ull;
  std::vector<std::byte> buf;
  for (std::uint64_t at = 0; at < n;) {
    auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n - at, 1 << 16));
    buf = pattern(at, k);
    h = fnv(buf.data(), k, h);
    at += k;
  }
  return h;
}

/// An actor system config for both sides: the middleman, the wire types,
/// two scheduler threads.
struct remote_config : caf::actor_system_config {
  remote_config() {
    remote::configure(*this);
    set("scheduler.max-threads", 2);
  }
};

/// Returns whether `arg` names a child role.
inline bool is_role(const std::string& arg) {
  for (auto* role : {"--read", "--async-read", "--hold", "--cap",
                     "--positional", "--seek-far", "--raw-seek", "--serve", "--raw-open"})
    if (arg == role)
      return true;
  return false;
}

/// Runs the child role named by `argv[1]`; returns its exit status.
int run_role(int argc, char** argv);

} // namespace asyncstream::test
