// Helpers of the backed pipe's tests: a pair of pipes joined in process, a
// transport that records what was done with it, and waits on pipe events.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <caf/scoped_actor.hpp>

#include "../test_support.hpp"
#include "asyncstream/backed_pipe.hpp"
#include "asyncstream/testing/pipe_faults.hpp"

namespace asyncstream::test {

/// A transport that counts its calls and whether it was closed.
class probe_transport final : public pipe_transport {
public:
  explicit probe_transport(pipe_transport_ptr inner)
    : inner_(std::move(inner)) {
    // nop
  }

  caf::expected<std::size_t> read(void* buf, std::size_t n) override {
    ++reads;
    return inner_->read(buf, n);
  }

  caf::error write(const void* data, std::size_t n) override {
    ++writes;
    return inner_->write(data, n);
  }

  void close() noexcept override {
    closed = true;
    inner_->close();
  }

  std::string describe() const override {
    return "probe(" + inner_->describe() + ")";
  }

  std::atomic<int> reads{0};
  std::atomic<int> writes{0};
  std::atomic<bool> closed{false};

private:
  pipe_transport_ptr inner_;
};

/// An active and a passive pipe joined by in-process connections.
struct pipe_pair {
  backed_pipe passive;
  backed_pipe active;

  pipe_pair(caf::actor_system& sys, pipe_options opts,
            testing::fault_plan plan = {}) {
    auto p = backed_pipe::make_passive(sys, opts);
    REQUIRE(p);
    passive = std::move(*p);
    auto server = passive; // a handle: the connector shares the pipe
    auto connector = testing::make_memory_connector(
      [server](pipe_transport_ptr t, const pipe_hello& h) mutable {
        return server.accept(std::move(t), h, 1);
      },
      plan);
    auto a = backed_pipe::make(sys, std::move(connector), opts);
    REQUIRE(a);
    active = std::move(*a);
  }

  ~pipe_pair() {
    active.close();
    passive.close();
  }
};

/// Receives pipe events; `next` waits for one (at most `timeout`).
struct event_probe {
  caf::scoped_actor self;

  explicit event_probe(caf::actor_system& sys) : self(sys) {
    // nop
  }

  caf::actor handle() {
    return caf::actor{self.ptr()};
  }

  /// Waits for an event with state `s` (skipping others); false on timeout.
  bool await(pipe_state s, pipe_event* out = nullptr,
             std::chrono::seconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero())
        return false;
      bool got = false;
      bool match = false;
      self->receive(
        [&](pipe_event& ev) {
          got = true;
          if (ev.state == s) {
            match = true;
            if (out)
              *out = ev;
          }
        },
        caf::after(std::chrono::duration_cast<std::chrono::milliseconds>(left))
          >> [] {});
      if (match)
        return true;
      if (!got)
        return false;
    }
  }
};

/// Reads exactly `n` bytes (or fails the test).
inline std::string read_exactly(backed_pipe& p, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    auto k = p.read(out.data() + got, n - got);
    REQUIRE(k);
    REQUIRE(*k > 0);
    got += *k;
  }
  return out;
}

/// Reads until the end (0) and returns everything.
inline caf::expected<std::string> read_to_end(backed_pipe& p) {
  std::string out;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    auto k = p.read(buf.data(), buf.size());
    if (!k)
      return std::move(k.error());
    if (*k == 0)
      return out;
    out.append(buf.data(), *k);
  }
}

} // namespace asyncstream::test
