// A streamerd without sockets, for tests and the request fuzzer: real
// connections (tools/streamerd/connection.hpp) over memory transports, one
// io_context run by the calling thread, real CAF actors for the streams.
//
// Contract: the harness owns the actor system, the registry and the
// io_context; `connect()` returns the peer's side of a new connection.
// Nothing waits without a bound: `run_until` polls the io_context until its
// condition holds or its time is up. The destructor ends every connection,
// then every stream, then waits for the actors.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "asyncstream/error.hpp"
#include "connection.hpp"
#include "context.hpp"
#include "memory_transport.hpp"
#include "registry.hpp"

namespace streamerd::testing {

/// The test's side of one connection.
struct client {
  std::shared_ptr<memory_pipe> pipe;
  std::weak_ptr<connection> conn;

  /// Whether the connection object is gone (everything it held released).
  bool gone() const {
    return conn.expired();
  }
};

inline caf::actor_system_config& harness_config(caf::actor_system_config& c) {
  asyncstream::configure(c);
  c.set("scheduler.max-threads", 2);
  return c;
}

class harness {
public:
  explicit harness(const config& cfg = default_config())
    : sys_(harness_config(caf_cfg_)),
      cfg_(cfg),
      ctx_(std::make_shared<server_context>(sys_, cfg_, reg_)) {
    // nop
  }

  ~harness() {
    for (auto& c : ctx_->open_connections())
      c->drain(true);
    run_until([this] { return ctx_->connection_count() == 0; }, 10);
    for (auto& e : reg_.clear())
      e->stream.abort();
    ctx_.reset();
    // Download actors end on their own once stopped; run the strands so
    // their last posts find nothing, until every actor is gone.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (sys_.registry().running() > 0
           && std::chrono::steady_clock::now() < deadline) {
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds{1});
    }
    sys_.await_all_actors_done();
  }

  static config default_config() {
    config c;
    c.storage = "memory";
    c.demo = false;
    c.queue_timeout_s = 30;
    c.max_wait_s = 60;
    return c;
  }

  caf::actor_system& sys() {
    return sys_;
  }

  registry& reg() {
    return reg_;
  }

  server_context& ctx() {
    return *ctx_;
  }

  const config& cfg() const {
    return cfg_;
  }

  /// Opens a connection; the test speaks for the client through `pipe`.
  client connect() {
    auto strand = net::make_strand(ioc_);
    auto pipe = std::make_shared<memory_pipe>(strand);
    auto conn = std::make_shared<connection>(ctx_, pipe->make_transport());
    conn->start();
    return {pipe, conn};
  }

  /// Lists `s` as stream `name`.
  registry::entry_ptr add(const std::string& name, asyncstream::stream s) {
    auto e = std::make_shared<stream_entry>();
    e->name = name;
    e->origin = "test";
    e->stream = std::move(s);
    e->created = std::chrono::system_clock::now();
    reg_.add(e);
    return e;
  }

  /// Runs handlers until `pred()` holds (true) or `seconds` passed (false).
  bool run_until(const std::function<bool()>& pred, double seconds = 5) {
    auto deadline = std::chrono::steady_clock::now()
                    + std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::duration<double>{seconds});
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds{1});
    }
    return true;
  }

  net::io_context& ioc() {
    return ioc_;
  }

private:
  caf::actor_system_config caf_cfg_;
  caf::actor_system sys_;
  config cfg_;
  registry reg_;
  net::io_context ioc_;
  std::shared_ptr<server_context> ctx_;
};

} // namespace streamerd::testing
