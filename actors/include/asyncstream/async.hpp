// asyncstream::async: the stream operations for actors, without blocking.
//
// Contract:
// - `self` is any scheduled actor (`event_based_actor`, `stateful_actor`,
//   `typed_event_based_actor<...>`); call these functions inside it. Every
//   handler runs inside `self`, exactly once, unless `self` terminates first.
//   Nothing here blocks: each operation is one or a few requests to the
//   stream's actors.
// - The same operations are typed requests for `request(...).then(...)`:
//   `self->request(s.transfer(), caf::infinite, status_atom::value)` answers
//   with the `stream_status` now, `wait_atom::value` once the stream is
//   final (see protocol.hpp). The functions here add the steps around them.
// - `close`, `shutdown` and `remove` do what the blocking `stream::close`,
//   `shutdown` and `remove` do (refuse new readers, wait until the open ones
//   are closed, stop the source, delete the stream file), and share their
//   result: a close that comes after a finished one gets that one's result.
//   Two closes running at the same time may each report what they saw.
//   After `abort()` they return `canceled` at once, if it came first;
//   otherwise they complete once the open readers are closed (every read
//   of theirs fails with `canceled`).
// - `copy_to` copies a reader's bytes into another actor's mailbox as
//   `stream_data` requests, at most `copy_options::credit` of them
//   unanswered at a time: the receiver paces the copy by answering.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"

namespace asyncstream {

/// One batch of bytes that `async::copy_to` sends; the receiver answers
/// with the number of bytes it took (any number: the answer is the credit).
struct stream_data {
  /// Stream offset of the first byte.
  std::uint64_t offset = 0;
  /// The bytes, zero-copy views of the stream's chunks.
  std::vector<slice> slices;
  /// Number of bytes in `slices`.
  std::uint64_t size = 0;
  /// The last message of the copy: the stream ended after these bytes.
  bool end = false;
  /// The last message of the copy: the stream (or the copy) failed after
  /// these bytes.
  caf::error error;
};

/// An actor that takes `copy_to`'s batches (typed variant; any actor that
/// answers `stream_data` with a `std::uint64_t` works).
using stream_sink_actor
  = caf::typed_actor<caf::replies_to<stream_data>::with<std::uint64_t>>;

namespace async {

using status_handler = std::function<void(caf::expected<stream_status>)>;
using length_handler = std::function<void(caf::expected<std::uint64_t>)>;
using error_handler = std::function<void(caf::error)>;

/// How `copy_to` paces a copy.
struct copy_options {
  /// Largest batch (one `stream_data` message).
  std::size_t batch = 64 * 1024;
  /// Batches sent and not yet answered, at most (0 counts as 1).
  std::size_t credit = 4;
};

/// Asks for the stream's status now (errors at once, not at their byte).
void status(caf::scheduled_actor* self, const stream& s, status_handler f);

/// Completes once the stream is final: its length, or its error.
void wait(caf::scheduled_actor* self, const stream& s, length_handler f);

/// Graceful close: refuses new readers with `closing`, completes once every
/// open reader is closed, then stops the source. `f` gets the stream's
/// error, if any.
void close(caf::scheduled_actor* self, const stream& s, error_handler f);

/// Graceful close that refuses new readers with `err`.
void shutdown(caf::scheduled_actor* self, const stream& s, caf::error err,
              error_handler f);

/// A shutdown with `removing`, then deletes the stream file; `f` gets an
/// error only if deleting it failed.
void remove(caf::scheduled_actor* self, const stream& s, error_handler f);

/// Hands out the writer of a stream made from `source::push()` (as
/// `stream::writer()`; it never blocks). Its writes copy and publish without
/// waiting, except on a tethered window or read-ahead limit, which holds a
/// producer back: do not write to such a stream from inside an actor.
caf::expected<stream_writer> open_writer(const stream& s);

/// Copies `reader` from its position to the end into `dest`'s mailbox as
/// `stream_data` requests of up to `opts.batch` bytes, at most
/// `opts.credit` unanswered. The last message has `end` or `error` set (and
/// no bytes). `done` runs once, after the last answer: with an empty error
/// at the end, the stream's error, or the error of a request to `dest`
/// (e.g. it terminated). The copy holds a copy of the reader handle until
/// `done` runs (the reader closes then if no other handle is left);
/// `reader.close()` stops the copy (`done` gets `closed`). After a failed
/// request to `dest`, a read still waiting is abandoned: the reader's
/// position may then be past the last byte `dest` got.
void copy_to(caf::scheduled_actor* self, async_reader reader,
             const caf::actor& dest, copy_options opts, error_handler done);

/// Typed variant of `copy_to`.
void copy_to(caf::scheduled_actor* self, async_reader reader,
             const stream_sink_actor& dest, copy_options opts,
             error_handler done);

} // namespace async

} // namespace asyncstream

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::stream_data)
