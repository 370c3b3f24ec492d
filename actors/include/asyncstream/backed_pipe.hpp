// backed_pipe: a reliable, bidirectional byte pipe over connections that
// break. Bytes written on one side arrive exactly once and in order on the
// other, across any number of reconnections (docs/pipe.md).
//
// Contract:
// - Each direction is an asyncstream stream with absolute sequence numbers
//   (the stream offsets). Outgoing bytes go into a pushed stream with a
//   tethered retention window of `pipe_options::window` bytes: the replay
//   window. A byte leaves it only once the peer acknowledged it; a `write`
//   that finds the window full waits (it never evicts unacknowledged
//   bytes). Incoming bytes go into a second pushed stream, each exactly
//   once, in order; `read` takes them from there.
// - Acknowledgements carry the peer's read position: a byte is
//   acknowledged once the peer's user read it. Each side tells the other
//   its receive window (its own `window`) and sends no more than that past
//   the peer's last acknowledgement, so the receiving side never holds more
//   than a window of unread bytes and its receive thread never waits for
//   its reader (acknowledgements keep flowing both ways, as in TCP: a side
//   that does not read stalls only the peer's writes to it).
// - A connection is a `pipe_transport`. The active side gets one from its
//   `pipe_connector` (which performs the sequence exchange: our reader's
//   position out, the peer's in); the passive side is handed one by
//   `accept` (a server read the peer's hello and found this pipe). Before a
//   connection is used, the peer's position is checked against the window:
//   below the oldest byte still kept -> `data_loss` (with the lost range);
//   beyond the bytes written -> `protocol_error`. Either way the attempt
//   fails as a whole: the new transport is closed and used by no one, and
//   the pipe stays disconnected (never attached to half a connection).
// - Threads: per connection one send and one receive thread (blocking
//   transport calls, never on an actor or a scheduler thread); the active
//   side runs its connector on a thread of its own. Failures are reported
//   with the connection's generation: a failure seen by both halves causes
//   one reconnection. A `reconnect()` while an attempt runs joins it; every
//   caller gets that attempt's result. No lock is held across a connector
//   call: `close()` cancels an attempt in flight (its `cancel_token`) and
//   returns without waiting for the connector, so a connector may itself
//   call `close()` (to stop retrying after a refusal, say). A connector
//   error `protocol_error` or `data_loss` also ends automatic reconnection
//   (retrying cannot help): the pipe fails with it.
// - `read` blocks while no bytes are there (also while disconnected) and
//   returns 0 once the peer closed its direction and every byte was read.
//   `write` returns once the bytes are in the window (replayed after a
//   reconnection if need be). Both are thread-safe (calls of one kind are
//   serialized). After `close()`, both fail with `closed`; once automatic
//   reconnection gave up, both fail with its error (`read` after the bytes
//   that had arrived).
// - A reconnection starts once the old connection's threads are gone (they
//   quit as soon as its transport is closed), so the positions exchanged
//   are exact.
// - Ending: `close_write()` sends the end of our direction after the bytes
//   written; the peer acknowledges it. Once both directions ended and were
//   acknowledged, each side sends a goodbye; `wait_peer_done` waits for the
//   peer's, so a side closes only when the other needs nothing more from
//   it (an acknowledgement lost in a cut is sent again on the reconnection).
// - A `backed_pipe` is a handle: copies share one pipe. The pipe closes
//   when the last handle goes. It must go before its actor system (it owns
//   two streams).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/pipe_handshake.hpp"
#include "asyncstream/pipe_transport.hpp"

namespace asyncstream {

/// What a pipe is doing right now.
enum class pipe_state {
  /// No connection and no attempt running (before the first connect, after
  /// a failure on a passive pipe, after giving up).
  disconnected,
  /// A connect attempt runs (the first one or a reconnection).
  reconnecting,
  /// A connection carries bytes.
  connected,
  /// `close()` was called; nothing happens any more.
  closed,
};

/// Returns "disconnected", "reconnecting", "connected" or "closed".
const char* to_string(pipe_state x);

/// Options of one pipe (both directions).
struct pipe_options {
  /// Replay window of the outgoing direction (bytes written but not yet
  /// acknowledged), and the room for incoming bytes not yet read.
  std::uint64_t window = 64 * 1024 * 1024;

  /// Largest data frame on the wire (bytes of payload; at most 1 MiB).
  std::size_t max_frame = 1024 * 1024;

  /// Active side: reconnect by itself after a connection fails.
  bool auto_reconnect = true;

  /// Wait before the second attempt of a series; doubles up to
  /// `backoff_max`.
  caf::timespan backoff_initial = std::chrono::milliseconds(50);

  /// Longest wait between two attempts.
  caf::timespan backoff_max = std::chrono::seconds(2);

  /// Failed attempts in a row after which automatic reconnection gives up
  /// (the pipe then fails with the last attempt's error). None: never.
  std::optional<std::uint64_t> max_attempts;
};

/// A state change, sent to every observer (`backed_pipe::observe`).
struct pipe_event {
  /// The new state.
  pipe_state state = pipe_state::disconnected;
  /// Connections attached so far (the current one's number when connected).
  std::uint64_t generation = 0;
  /// Why the pipe left `connected` or an attempt failed; empty otherwise.
  caf::error reason;
};

/// A snapshot of a pipe's counters (each true at some moment of the call).
struct pipe_stats {
  pipe_state state = pipe_state::disconnected;
  /// Connections attached so far.
  std::uint64_t generation = 0;
  /// Connect attempts made (successful or not).
  std::uint64_t attempts = 0;
  /// Bytes written into the outgoing direction.
  std::uint64_t written = 0;
  /// Outgoing bytes the peer acknowledged.
  std::uint64_t acknowledged = 0;
  /// Payload bytes of the data frames written whole, replays included (a
  /// frame cut off by a broken connection does not count).
  std::uint64_t sent = 0;
  /// Incoming bytes received (each counted once).
  std::uint64_t received = 0;
  /// Incoming bytes handed to `read`.
  std::uint64_t read = 0;
  /// Whether the peer acknowledged the end of our direction.
  bool write_closed_acknowledged = false;
  /// Whether the peer ended its direction (we received its end).
  bool peer_closed = false;
  /// Calls waiting for the result of an attempt (`connect`, `reconnect`).
  std::size_t waiting = 0;
  /// The error of the last failed connection or attempt.
  caf::error last_error;
};

/// One side of a backed pipe; see the contract above.
class backed_pipe {
public:
  /// Creates an invalid handle: every call returns `invalid_argument`.
  backed_pipe() noexcept = default;

  /// Makes the active side: it connects through `connector` (first in
  /// `connect()`, then by itself after failures when `auto_reconnect`).
  static caf::expected<backed_pipe> make(caf::actor_system& sys,
                                         pipe_connector connector,
                                         pipe_options opts = {});

  /// Makes the passive side: it gets its connections from `accept`.
  static caf::expected<backed_pipe> make_passive(caf::actor_system& sys,
                                                 pipe_options opts = {});

  /// Returns whether this handle refers to a pipe.
  bool valid() const noexcept {
    return impl_ != nullptr;
  }

  /// Active side: makes the first connection (or, later, waits for the
  /// attempt in flight) and returns its result. With `auto_reconnect` the
  /// failed first attempt is retried like a reconnection (backoff, the
  /// limit); this returns when connected or when the pipe gave up.
  caf::error connect();

  /// Passive side: takes a connection whose hello a server read. Drops the
  /// current connection (if any), checks `hello.position`, sends the
  /// welcome with `session` and this side's reader position, and attaches.
  /// On any error the transport is closed, the pipe stays disconnected and
  /// the peer got a refusal (if the check failed).
  caf::error accept(pipe_transport_ptr transport, const pipe_hello& hello,
                    std::uint64_t session);

  /// Forces a reconnection (active side): drops the current connection and
  /// connects anew; joins an attempt already running. Returns its result.
  caf::error reconnect();

  /// Reads up to `n` bytes (short reads allowed); 0 once the peer closed
  /// its direction and every byte was read.
  caf::expected<std::size_t> read(void* buf, std::size_t n);

  /// Takes up to `max` bytes as shared slices, without copying them (they
  /// stay valid as long as they are held); empty once the peer closed its
  /// direction and every byte was read.
  caf::expected<std::vector<slice>> read_slices(std::size_t max);

  /// Writes all `n` bytes into the window (waits while it is full).
  caf::error write(const void* data, std::size_t n);

  /// Appends the bytes of `s` without copying them (`s` is kept until the
  /// peer acknowledged its bytes).
  caf::error write(slice s);

  /// Writes the characters of `text`.
  caf::error write(std::string_view text);

  /// Ends our direction after the bytes written so far (the peer's `read`
  /// returns 0 after them). Idempotent.
  caf::error close_write();

  /// Waits until the peer acknowledged every byte written (and, after
  /// `close_write()`, the end), or `timeout` passed (then `timeout`), or
  /// the pipe closed or failed (then that error).
  caf::error wait_acknowledged(std::optional<caf::timespan> timeout = {});

  /// Waits until both sides said goodbye: both directions ended and every
  /// byte was read on both sides, the peer told us so and our goodbye went
  /// out (so `close()` then leaves the peer nothing to wait for). Returns
  /// false after `timeout`, or when the pipe closed or failed first.
  bool wait_peer_done(caf::timespan timeout);

  /// Closes the pipe: cancels an attempt in flight, drops the connection,
  /// fails every blocked and later read and write with `closed`. Returns
  /// promptly (never waits for a connector). Idempotent.
  void close();

  /// Returns the current state.
  pipe_state state() const;

  /// Returns the counters.
  pipe_stats stats() const;

  /// Sends a `pipe_event` to `observer` on every state change from now on
  /// (the first one with the current state, at once).
  void observe(caf::actor observer);

  /// @private
  struct impl;

private:
  explicit backed_pipe(std::shared_ptr<impl> ptr) : impl_(std::move(ptr)) {
    // nop
  }

  std::shared_ptr<impl> impl_;
};

} // namespace asyncstream

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::pipe_event)
