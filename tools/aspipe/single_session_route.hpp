// single_session_route: the route of `aspipe listen`: one peer session per
// listener, resumed by its id, every other hello refused with a reason.
//
// Contract:
// - The session id is drawn at construction (random, never 0). The first
//   hello asking for a new session (id 0) gets it; a hello with the id
//   resumes it (`backed_pipe::accept` checks the positions and sends the
//   welcome or the refusal). A hello for any other id is refused ("unknown
//   session"), and so is a second request for a new session while the
//   session is in use.
// - One exception keeps a lost first welcome from ending the session: a
//   request for a new session is taken as the same peer again while the
//   pipe is not connected and has received nothing yet (that peer never
//   saw the id, so it could not send any byte).
// - Called on the server's handshake threads; thread-safe. `pipe` must
//   outlive the server that calls the route.
#pragma once

#include <cstdint>
#include <mutex>

#include "asyncstream/backed_pipe.hpp"
#include "asyncstream/pipe_handshake.hpp"
#include "asyncstream/pipe_transport.hpp"

namespace aspipe {

class single_session_route {
public:
  explicit single_session_route(asyncstream::backed_pipe pipe);

  /// Routes one hello (the server's route callback).
  void operator()(asyncstream::pipe_transport_ptr transport,
                  asyncstream::pipe_hello hello);

  /// Returns the session id.
  std::uint64_t session() const {
    return session_;
  }

private:
  asyncstream::backed_pipe pipe_;
  std::uint64_t session_;
  std::mutex mtx_;
  bool taken_ = false; // a peer got the id (guarded by mtx_)
};

} // namespace aspipe
