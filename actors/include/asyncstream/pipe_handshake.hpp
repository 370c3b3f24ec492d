// pipe_handshake: the sequence exchange at the start of every connection
// of a backed pipe, and its wire format.
//
// Contract:
// - The side that connects (the client) sends a hello: the session it
//   resumes and its reader's position. The side that accepts (the server)
//   reads it, finds the session, and answers with its own reader's
//   position, or refuses with a reason. Then both run the pipe's framing on
//   the same transport.
// - Wire format (integers big-endian):
//   - hello, 32 bytes: "ASPIPE\x01\x00" (magic and version 1), the session
//     id (u64, 0 asks the server for a new session), the flags (u64, 0),
//     the client reader's position (u64).
//   - accept, 24 bytes: "ASPIPEOK", the session id (u64; the new one when
//     the hello asked for one), the server reader's position (u64).
//   - refuse, 10 + n bytes: "ASPIPENO", n (u16), n bytes of UTF-8 reason.
// - Every function here blocks on the transport and fails with
//   `protocol_error` (naming what came instead) on a malformed message, with
//   the transport's error when it fails, and with `closed` when it ends
//   first. None closes the transport: the caller does, on any error.
#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "asyncstream/pipe_transport.hpp"

namespace asyncstream {

/// A client's hello, as the server reads it.
struct pipe_hello {
  /// The session to resume; 0 asks for a new one.
  std::uint64_t session = 0;
  /// The client reader's position.
  std::uint64_t position = 0;
};

/// The server's answer, as the client reads it.
struct pipe_welcome {
  /// The session (the new one when the hello asked for one).
  std::uint64_t session = 0;
  /// The server reader's position.
  std::uint64_t position = 0;
};

/// Client side: sends the hello, returns the server's answer; a refusal is
/// `closed` with the server's reason ("refused by the peer: ...").
caf::expected<pipe_welcome> client_handshake(pipe_transport& t,
                                             std::uint64_t session,
                                             std::uint64_t position);

/// Server side, first half: reads a client's hello.
caf::expected<pipe_hello> read_hello(pipe_transport& t);

/// Server side, second half: accepts the session with the server reader's
/// position.
caf::error send_welcome(pipe_transport& t, std::uint64_t session,
                        std::uint64_t position);

/// Server side, second half: refuses the hello with `reason` (cut to 1024
/// bytes).
caf::error send_refusal(pipe_transport& t, const std::string& reason);

} // namespace asyncstream
