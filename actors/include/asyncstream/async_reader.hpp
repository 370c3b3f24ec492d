// async_reader: reads a stream from inside an event-based actor, typed or
// not.
//
// Contract:
// - Ownership: a reader belongs to the actor `self` that opened it (any
//   `caf::scheduled_actor`: `event_based_actor`, `stateful_actor<...>`,
//   `typed_event_based_actor<...>`). When that actor terminates, for any
//   reason (it quits, is killed, a handler throws), the reader is closed:
//   its slot, its parked requests and its tether are released, and the
//   operations still queued are dropped without running (their handlers
//   could only run in the dead actor). Copies of an `async_reader` share one
//   reader; when the last copy goes, the reader is closed too, and its
//   pending operations complete with `closed`: keep a handle (in the actor's
//   state, or captured by the handler) while reads are pending. Only
//   `read_to_end` and `async::copy_to` hold one themselves until done. An
//   event-based actor without a behavior terminates once its requests are
//   answered, and its readers close with it.
// - Every call must come from inside `self`, and every handler runs inside
//   `self`; nothing here blocks. A call on a default-constructed or
//   moved-from handle completes at once with `invalid_argument`; on a closed
//   reader with `closed`; on an aborted stream with `canceled`.
// - Operations complete in the order they were issued. A read served from
//   held slices completes at once (inside the call); one that needs bytes
//   sends one `slice_request` for up to `prefetch` bytes and completes when
//   the answer arrives. Handlers may issue further operations: they are
//   queued and run without recursion, so long read loops use no stack.
// - Same semantics as `blocking_reader` (short reads, 0 at the end, errors
//   at their byte, `canceled` after abort). `close()` takes effect at once:
//   the waiting operation and every queued one complete with `closed`.
// - Tether (a tethered retention window): the reader holds the producer
//   back at its reading position from the moment it opens; only `read`,
//   `read_exact`, `read_slices` and `read_to_end` move it. `read_at`,
//   `wait_for`, a zero-length read and the queries never do.
// - Buffers passed to `read`, `read_exact` and `read_at` must stay valid
//   until their handler runs (or the reader is closed or its actor gone).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/span.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"

namespace asyncstream {

class async_reader {
public:
  using open_handler = std::function<void(caf::expected<async_reader>)>;
  using size_handler = std::function<void(caf::expected<std::size_t>)>;
  using slices_handler = std::function<void(caf::expected<std::vector<slice>>)>;
  using offset_handler = std::function<void(caf::expected<std::uint64_t>)>;
  using wait_handler = std::function<void(caf::expected<bool>)>;
  /// Receives one batch of `read_to_end` (never empty).
  using data_callback = std::function<void(std::vector<slice>&)>;
  /// Receives the outcome of a loop: empty at the end of the stream.
  using done_handler = std::function<void(caf::error)>;

  /// Creates an invalid reader: every operation fails with
  /// `invalid_argument`.
  async_reader() noexcept = default;

  /// Opens a reader owned by `self`; `f` runs inside `self` once a reader
  /// slot is granted, or with the error. At the cap (`max_readers` open)
  /// the open waits for a slot, with no time limit: use the overload with a
  /// timeout, or end the wait by closing, shutting down or aborting the
  /// stream (waiting opens are refused), or by terminating `self`.
  static void open(caf::scheduled_actor* self, const stream& s, open_handler f,
                   reader_options opts = {});

  /// Like `open`, but gives up after `timeout` with `errc::timeout`.
  static void open(caf::scheduled_actor* self, const stream& s,
                   caf::timespan timeout, open_handler f,
                   reader_options opts = {});

  /// Reads up to `n` bytes into `buf` (short reads; 0 at the end). A
  /// zero-length read completes with 0 at once, or with the error that is
  /// pending at the position (from what is known without a message).
  void read(void* buf, std::size_t n, size_handler f);

  /// Reads up to `buf.size()` bytes into `buf`.
  void read(caf::span<std::byte> buf, size_handler f);

  /// Reads exactly `n` bytes into `buf` unless the stream ends first; bytes
  /// before an error come first, the error with the next read.
  void read_exact(void* buf, std::size_t n, size_handler f);

  /// Reads exactly `buf.size()` bytes into `buf` unless the stream ends.
  void read_exact(caf::span<std::byte> buf, size_handler f);

  /// Reads up to `n` bytes at `offset` (waiting for all of them, the end or
  /// an error) without moving the position or the tether.
  void read_at(void* buf, std::size_t n, std::int64_t offset, size_handler f);

  /// Reads up to `buf.size()` bytes at `offset`; see above.
  void read_at(caf::span<std::byte> buf, std::int64_t offset, size_handler f);

  /// Takes up to `max` bytes as shared slices (empty at the end).
  void read_slices(std::size_t max, slices_handler f);

  /// Reads from the position to the end of the stream, up to `max` bytes
  /// per batch: `on_data` runs for each batch of slices (zero-copy), then
  /// `on_done` once, with an empty error at the end or with the error (the
  /// bytes before an error come first). Later operations wait until the loop
  /// is done; `close()` ends it (`on_done` gets `closed`). The loop holds a
  /// handle of the reader until `on_done` has run.
  void read_to_end(std::size_t max, data_callback on_data,
                   done_handler on_done);

  /// Moves the position (`whence::end` waits for the end unless a length
  /// was declared). Positions are 0 to 2^63 - 1: a target outside fails with
  /// `invalid_argument`, whatever the values (no overflow), and a failed
  /// seek leaves the position unchanged.
  void seek(std::int64_t offset, whence from, offset_handler f);

  /// After `data_loss`: moves the position up to the oldest byte the stream
  /// still keeps (a no-op at or above it) and returns the new position.
  void skip_to_oldest(offset_handler f);

  /// Completes once the byte at `offset` exists (true) or the stream ended
  /// before it (false), or with the error. Does not move the tether.
  void wait_for(std::int64_t offset, wait_handler f);

  /// Returns the position after every completed operation (0 if invalid).
  std::uint64_t position() const noexcept;

  /// Returns whether a read at the position would return 0 (the end) now,
  /// without a message.
  bool at_end() const;

  /// Returns the error a read at the position would return now (`closed`,
  /// `canceled`, the stream's error at its byte, `data_loss` below a
  /// retention window), or an empty error; without a message. An invalid
  /// handle gives `invalid_argument`.
  caf::error pending_error() const;

  /// Closes the reader; idempotent, a no-op on an invalid handle.
  void close();

  /// Returns whether this handle refers to a reader (open or closed).
  bool valid() const noexcept {
    return handle_ != nullptr;
  }

  /// Returns whether the reader is open (not closed, its actor alive).
  bool is_open() const noexcept;

  /// Returns the reader's id (as known to the stream's actors; 0 if
  /// invalid).
  std::uint64_t id() const noexcept;

  /// @private
  struct state;

  /// @private
  struct handle;

private:
  explicit async_reader(std::shared_ptr<handle> h) : handle_(std::move(h)) {
    // nop
  }

  static void open_impl(caf::scheduled_actor* self, const stream& s,
                        caf::duration timeout, open_handler f,
                        reader_options opts);

  state* get() const noexcept;

  std::shared_ptr<handle> handle_;
};

} // namespace asyncstream
