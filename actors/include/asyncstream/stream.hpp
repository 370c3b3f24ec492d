// stream: the owner's handle of one asyncstream (a source, its transfer
// actor, its readers-monitor actor).
//
// Contract:
// - `stream::make` spawns the actors in the given actor system; the stream
//   must be destroyed (with all its readers and its writer) before that
//   system. The actors are hidden (`~actor_system()` does not wait for
//   them); a stream that outlives its system is reported on stderr (once
//   per process, with what to do) and shut down when the system shuts
//   down, and from then on every call fails with `stream_gone`.
// - Copies of a `stream` share one stream; readers keep it alive too. When
//   the last handle and reader are gone the actors are shut down: parked
//   requests are answered with `stream_gone`, the source is stopped.
// - The blocking calls here (`open_reader`, `status`, `wait`, `close`) block
//   the calling thread: call them from plain threads, never from inside an
//   actor (use `async_reader` and the actor handles there).
// - `close()` refuses new readers and returns once every reader is closed,
//   then stops the source; it returns what `status()` says from then on:
//   the stream's own end or error if its source had ended, else `closed`
//   (the stream was stopped before its end). `abort()` fails every pending
//   and later read with `canceled` at once and stops the source. A second
//   `close()` returns the first one's result.
// - `shutdown(err)` is `close()` with `err` for the refused readers;
//   `remove()` is a shutdown with `removing` that then deletes the stream
//   file. Slices readers still hold stay valid after either (mappings of a
//   deleted file keep their bytes).
// - `make` and `reopen` never throw for lack of resources: when the process
//   is out of descriptors (the stop eventfd of a descriptor source, the
//   stream file), memory or threads (the transfer actor's or the source
//   reader's), they return `errc::resource_exhausted` naming the resource,
//   and nothing is left behind: no descriptor (an owned source descriptor
//   is closed too), no actor, no thread. A stream costs descriptors only
//   where it needs them: a descriptor source one eventfd (to wake its
//   reader's `poll`), a file-backed stream its file; a pushed, buffer or
//   function-source memory stream none.
// - `stats()` never blocks and sends no message: it reads counters the
//   actors publish as things change (see `stream_stats`). `status()` asks
//   the transfer actor (a round trip) and blocks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/source.hpp"

namespace asyncstream {

class blocking_reader;
class stream_writer;

namespace detail {
struct stream_core;
} // namespace detail

/// A snapshot of a stream's counters (`stream::stats()`). Each field was
/// true at some moment during the call; the snapshot as a whole is not
/// atomic (a `size` may be newer than the `parked` next to it). Once `final`
/// is seen, `error` and `size` are final too.
struct stream_stats {
  /// Bytes published so far (the offset one past the newest byte).
  std::uint64_t size = 0;
  /// Offset of the oldest byte still readable (0 without a retention window).
  std::uint64_t oldest = 0;
  /// Read requests parked at the transfer actor, waiting for bytes.
  std::uint64_t parked = 0;
  /// Readers open right now (holding a slot).
  std::size_t readers = 0;
  /// Opens waiting for a slot (`max_readers` are open).
  std::size_t waiting = 0;
  /// Whether the stream ended or failed.
  bool final = false;
  /// The final error, if it failed (set once, with `final`).
  caf::error error;
  /// The declared final length, if any.
  std::optional<std::uint64_t> declared_length;
};

/// The owner's handle of one stream.
class stream {
public:
  /// Creates an invalid handle.
  stream() noexcept = default;

  /// Spawns the actors of a stream fed by `src`. Returns
  /// `resource_exhausted` (never throws) when a descriptor, memory or a
  /// thread cannot be had; an owned source descriptor is closed then.
  static caf::expected<stream> make(caf::actor_system& sys, source src,
                                    stream_options opts = {});

  /// Re-opens a stream file written earlier (see `stream_options::file`) as a
  /// complete, read-only stream of the file's current length. The mapping
  /// settings of `opts.file`, if given, apply; its path is ignored. The file
  /// must not shrink while the stream is open. Fails like `make`.
  static caf::expected<stream> reopen(caf::actor_system& sys,
                                      const std::string& path,
                                      stream_options opts = {});

  /// Returns whether this handle refers to a stream.
  bool valid() const noexcept {
    return core_ != nullptr;
  }

  /// Opens a reader at offset 0; waits while `max_readers` are open.
  caf::expected<blocking_reader> open_reader(reader_options opts = {}) const;

  /// Opens a reader, waiting at most `timeout` for a slot (then `timeout`).
  caf::expected<blocking_reader> open_reader(caf::timespan timeout,
                                             reader_options opts = {}) const;

  /// Hands out the writer of a stream made from `source::push()`; fails
  /// for other streams and on a second call.
  caf::expected<stream_writer> writer() const;

  /// Returns what is known right now (errors at once, not at their byte).
  /// Asks the transfer actor and blocks for its answer; see `stats()`.
  caf::expected<stream_status> status() const;

  /// Returns the counters the stream's actors published, without a message
  /// and without blocking (a few atomic loads; a mutex only once the stream
  /// is final, for its error). Cheap enough for a metrics page over
  /// thousands of streams. An invalid handle gives all zeros.
  stream_stats stats() const;

  /// Waits until the stream is final; returns its length or its error.
  caf::expected<std::uint64_t> wait() const;

  /// Graceful close: refuse new readers, wait for the open ones to close,
  /// stop the source. Returns the stream's error afterwards, if any: its
  /// own, or `closed` when the source had not ended (as `status()` then
  /// says). Idempotent.
  caf::error close();

  /// Graceful close that refuses new readers with `err` (not `closing`):
  /// waits for the open readers to close, stops the source, keeps the
  /// stream file. Returns the stream's error, if any. Shares its result with
  /// `close()`: whichever comes first decides.
  caf::error shutdown(caf::error err);

  /// Graceful removal: refuses new readers with `removing`, waits until every
  /// open reader is closed, stops the source, then deletes the stream file (a
  /// no-op in memory mode or for an unnamed file). Returns an error only if
  /// deleting the file failed. Idempotent.
  caf::error remove();

  /// Returns the stream file's path; empty in memory mode and for an unnamed
  /// temporary file.
  std::string file_path() const;

  /// Returns the stream file's descriptor, -1 in memory mode. The stream owns
  /// it: it stays open while any handle or reader of the stream exists; never
  /// close it or write to it. Every byte below `status().size` is in the
  /// file at its stream offset, so a server may `sendfile(2)` published
  /// bytes straight from it (the zero-copy way to a socket).
  int file_descriptor() const;

  /// Lifts a demand-driven read-ahead limit for good: the source reads on
  /// to its end (a no-op without `stream_options::read_ahead`).
  void release();

  /// Fails every pending and later read with `canceled` and stops the
  /// source. Idempotent; a `close()` waiting for readers returns
  /// `canceled` at once, and so does every later `close()`.
  void abort();

  /// Returns the transfer actor (for asynchronous use from actors).
  transfer_actor transfer() const;

  /// Returns the readers-monitor actor (for asynchronous use from actors).
  monitor_actor monitor() const;

  /// @private
  const std::shared_ptr<detail::stream_core>& core() const noexcept {
    return core_;
  }

  /// @private Wraps actors spawned elsewhere (the test harness).
  static stream adopt(std::shared_ptr<detail::stream_core> core) {
    return stream{std::move(core)};
  }

private:
  explicit stream(std::shared_ptr<detail::stream_core> core)
    : core_(std::move(core)) {
    // nop
  }

  std::shared_ptr<detail::stream_core> core_;
};

/// Position argument of `seek`.
enum class whence : int { start = 0, current = 1, end = 2 };

} // namespace asyncstream
