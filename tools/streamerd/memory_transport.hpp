// memory_transport: a transport whose peer is the program itself, for tests
// and the request fuzzer: whole requests run through the real connection
// code with no socket.
//
// Contract:
// - A `memory_pipe` is the peer's side: `feed` bytes, `end` (the peer
//   closed) or `reset`, read what the connection wrote with `output()`, and
//   limit how much the peer accepts with `set_window` (0: a client that
//   reads nothing; the connection's writes then wait, as on a full socket).
// - The pipe's calls may come from any thread; they post to the strand.
//   Handlers run on the strand, never inside the call that started them.
// - The transport (owned by the connection) and the pipe (held by the test)
//   share their state; either may go first.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "transport.hpp"

namespace streamerd {

class memory_pipe : public std::enable_shared_from_this<memory_pipe> {
public:
  explicit memory_pipe(transport::executor_type ex);

  /// The peer sends `bytes`.
  void feed(std::string bytes);

  /// The peer closes its side (reads see the end of stream).
  void end();

  /// The peer resets the connection (reads and writes fail).
  void reset();

  /// The peer accepts at most `bytes` more (unlimited by default).
  void set_window(std::uint64_t bytes);

  /// What the connection wrote so far.
  std::string output() const;

  /// Whether the connection closed its transport.
  bool closed() const;

  /// Makes the transport that the connection owns.
  std::unique_ptr<transport> make_transport();

  /// @private
  struct state;

private:
  std::shared_ptr<state> st_;
};

} // namespace streamerd
