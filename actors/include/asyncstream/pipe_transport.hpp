// pipe_transport: one connection under a backed pipe, and how a pipe gets a
// new one (the connector, its cancellation, the sequence exchange).
//
// Contract:
// - A `pipe_transport` is one established, bidirectional byte connection (a
//   TCP socket, an in-process pair, a fault injector around another
//   transport). The pipe uses it from two threads at once: one calls
//   `read`, the other `write`; `close` may come from any thread at any time.
// - `read` blocks until at least one byte arrived (returns how many, > 0),
//   the peer ended the connection in order (returns 0), or the connection
//   failed or was closed (returns the error). `write` blocks until every
//   byte was handed to the connection, or returns the error. After either
//   returned an error (or `read` returned 0) the pipe does not call it
//   again.
// - `close()` is idempotent, does not block for long, and makes every
//   blocked and later `read` and `write` return promptly with an error
//   (`errc::closed`). A transport owns its descriptors; its destructor
//   closes them (a destructor implies `close()`).
// - A `pipe_connector` is called by the pipe on a thread of its own (never an
//   actor's) each time it needs a connection: it establishes a transport and
//   performs the sequence exchange on it (`pipe_handshake.hpp`): the local
//   reader's position goes out, the remote reader's position comes in. It
//   returns both, or an error. It must return promptly once its
//   `cancel_token` is canceled (the pipe closed, or gave the attempt up):
//   register a callback that closes the socket being connected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "asyncstream/slice.hpp"

namespace asyncstream {

/// One bidirectional byte connection; see the contract above.
class pipe_transport {
public:
  virtual ~pipe_transport();

  /// Reads up to `n` bytes (> 0 returned), 0 at an orderly end, or the
  /// error.
  virtual caf::expected<std::size_t> read(void* buf, std::size_t n) = 0;

  /// Writes all `n` bytes, or returns the error.
  virtual caf::error write(const void* data, std::size_t n) = 0;

  /// Writes the bytes of every slice in order (a gather write where the
  /// transport has one; the default calls `write` for each slice).
  virtual caf::error write(const std::vector<slice>& xs);

  /// Makes every blocked and later `read` and `write` fail; idempotent.
  virtual void close() noexcept = 0;

  /// Names the connection for logs and errors ("tcp 127.0.0.1:4000 <->
  /// 127.0.0.1:51234", "memory pair 3, side a").
  virtual std::string describe() const = 0;
};

using pipe_transport_ptr = std::shared_ptr<pipe_transport>;

/// The cancellation of one connect attempt; thread-safe.
class cancel_token {
public:
  /// Returns whether `cancel()` was called.
  bool canceled() const;

  /// Runs `f` once `cancel()` is called (at once, in this thread, if it
  /// was already). Callbacks run in the thread that cancels, outside any
  /// lock of the token.
  void on_cancel(std::function<void()> f);

  /// Cancels: runs the callbacks; idempotent.
  void cancel();

private:
  mutable std::mutex mtx_;
  bool canceled_ = false;
  std::vector<std::function<void()>> callbacks_;
};

using cancel_token_ptr = std::shared_ptr<cancel_token>;

/// What a connector gets for one attempt.
struct connect_request {
  /// The local reader's position: the bytes of the incoming direction
  /// delivered so far. The remote writer resumes from here.
  std::uint64_t local_position = 0;
  /// Counts the pipe's attempts (1 for the first connect).
  std::uint64_t attempt = 0;
  /// Canceled when the pipe closes or gives the attempt up.
  cancel_token_ptr cancel;
};

/// What a successful attempt gives back.
struct pipe_connection {
  /// The new connection, after the sequence exchange.
  pipe_transport_ptr transport;
  /// The remote reader's position: the local writer resumes from here.
  std::uint64_t remote_position = 0;
};

/// Establishes a connection and performs the sequence exchange.
using pipe_connector
  = std::function<caf::expected<pipe_connection>(const connect_request&)>;

/// Makes a connected in-process pair: what one side writes, the other
/// reads. Each direction buffers up to `buffer` bytes (a write blocks while
/// it is full). Closing either side closes both (as a broken connection
/// does): reads and writes on both fail with `closed` (bytes still buffered
/// are dropped). `name` appears in `describe()`.
std::pair<pipe_transport_ptr, pipe_transport_ptr>
make_memory_transport_pair(std::size_t buffer = 256 * 1024,
                           std::string name = "memory pair");

} // namespace asyncstream
