#include "single_session_route.hpp"

#include <random>
#include <string>

#include <spdlog/spdlog.h>

#include "asyncstream/error.hpp"
#include "asyncstream/tcp_pipe_server.hpp"

using asyncstream::pipe_state;
using asyncstream::tcp_pipe_server;

namespace aspipe {

namespace {

std::uint64_t draw_session() {
  std::random_device rd;
  std::uint64_t x = 0;
  while (x == 0)
    x = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return x;
}

} // namespace

single_session_route::single_session_route(asyncstream::backed_pipe pipe)
  : pipe_(std::move(pipe)), session_(draw_session()) {
  // nop
}

void single_session_route::operator()(asyncstream::pipe_transport_ptr transport,
                                      asyncstream::pipe_hello hello) {
  auto who = transport->describe();
  if (hello.session != 0 && hello.session != session_) {
    spdlog::warn("{}: refused: unknown session {}", who, hello.session);
    tcp_pipe_server::refuse(*transport,
                            "unknown session " + std::to_string(hello.session)
                              + ": this aspipe listener serves another one "
                                "(was it restarted?)");
    return;
  }
  // One hello at a time: a second request for a new session sees the
  // state the first one left.
  std::lock_guard<std::mutex> guard{mtx_};
  if (hello.session == 0) {
    if (taken_) {
      auto s = pipe_.stats();
      bool same_peer_again = s.state != pipe_state::connected && s.received == 0
                             && hello.position == 0;
      if (!same_peer_again) {
        spdlog::warn("{}: refused: a new session while one is in use", who);
        tcp_pipe_server::refuse(*transport,
                                "this aspipe listener already serves a "
                                "session (one peer at a time)");
        return;
      }
    }
    taken_ = true;
  }
  spdlog::debug("{}: session {}, peer position {}", who, session_,
                hello.position);
  if (auto err = pipe_.accept(std::move(transport), hello, session_))
    spdlog::warn("{}: not attached: {}", who, asyncstream::render(err));
}

} // namespace aspipe
