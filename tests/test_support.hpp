// Shared helpers of the threaded tests: an actor system per test and a live
// pipe source the test writes into.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"

namespace asyncstream::test {

/// An actor system with the asyncstream error renderer.
struct system_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  static caf::actor_system_config& prepare(caf::actor_system_config& cfg) {
    configure(cfg);
    cfg.set("scheduler.max-threads", 2);
    return cfg;
  }

  system_fixture() : sys(prepare(cfg)) {
    // nop
  }
};

/// A pipe whose read end feeds a stream; the test writes the other end.
struct live_pipe {
  int fds[2] = {-1, -1};

  live_pipe() {
    if (::pipe(fds) != 0)
      throw std::runtime_error("pipe");
  }

  ~live_pipe() {
    close_writer();
  }

  int reader_fd() const {
    return fds[0];
  }

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::write(fds[1], bytes.data(), bytes.size());
      if (n <= 0)
        throw std::runtime_error("write");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void close_writer() {
    if (fds[1] >= 0) {
      ::close(fds[1]);
      fds[1] = -1;
    }
  }
};

/// Deterministic bytes for checks.
inline std::string pattern(std::size_t n, int seed = 0) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>((i * 131 + seed * 17 + (i >> 9)) & 0xff);
  return out;
}

/// A function source that yields `data` in pieces of `step`, then ends or
/// fails with `err`.
inline source scripted(std::string data, std::size_t step,
                       caf::error err = caf::error{}) {
  auto pos = std::make_shared<std::size_t>(0);
  auto bytes = std::make_shared<std::string>(std::move(data));
  return source::from_function(
    [=](std::byte* buf, std::size_t max) -> read_outcome {
      auto n = std::min({max, step, bytes->size() - *pos});
      std::memcpy(buf, bytes->data() + *pos, n);
      *pos += n;
      read_outcome res;
      res.size = n;
      if (*pos == bytes->size()) {
        if (err)
          res.error = err;
        else
          res.eof = true;
      }
      return res;
    });
}

/// Reads `r` to its end with reads of `step` bytes.
inline caf::expected<std::string> read_all(blocking_reader& r,
                                           std::size_t step = 4096) {
  std::string out;
  std::string buf(step, '\0');
  for (;;) {
    auto n = r.read(buf.data(), buf.size());
    if (!n)
      return std::move(n.error());
    if (*n == 0)
      return out;
    out.append(buf.data(), *n);
  }
}

} // namespace asyncstream::test
