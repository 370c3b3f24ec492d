// The typed messages between client handles and the stream's actors.
//
// Contract:
// - Every message is a value type; slices inside them share chunks, so
//   copying a message never copies stream bytes.
// - A `slice_request` is always answered with exactly one `slice_result`,
//   possibly much later (when the bytes arrive), but always: the transfer
//   actor answers every parked request itself before it goes away.
// - `slice_result` may carry slices *and* a trailing status: `end` or `error`
//   apply at the offset right after the last returned byte.
// - Tethers (tethered retention windows, docs/storage.md): a reader is
//   tethered from the moment it opens (`tether_atom`, sent right after its
//   slot is granted) at its position; only its ordinary, non-positional
//   reads move the tether. Positional requests (`wait_for`, `read_at`),
//   zero-length requests and status queries never move it.
// - A reader belongs to an owner: the actor given to `open_atom` (or the
//   handle when none is given). When the owner actor terminates, for any
//   reason, the readers monitor closes its readers as if each had sent
//   `close_atom`: slot freed, waiting open dropped, and the transfer actor
//   told `cancel_atom` (parked requests answered with `closed`, tether
//   released).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "asyncstream/slice.hpp"

namespace asyncstream {

/// Asks for up to `max_size` bytes starting at `offset` for reader `reader`.
struct slice_request {
  std::uint64_t reader = 0;
  std::uint64_t offset = 0;
  std::uint64_t max_size = 0;
  /// A positional request (`wait_for`, `read_at`): it never moves the
  /// reader's tether, and never registers one. It still counts as demand
  /// for demand-driven reading (`stream_options::read_ahead`).
  bool positional = false;
};

/// Answer to a `slice_request`.
struct slice_result {
  /// Offset of the first returned byte (the request's offset).
  std::uint64_t offset = 0;
  /// Views of the bytes `[offset, offset + size)`, in order.
  std::vector<slice> slices;
  /// Number of bytes in `slices`.
  std::uint64_t size = 0;
  /// The stream ends right after the returned bytes.
  bool end = false;
  /// The stream fails right after the returned bytes (or the request failed).
  caf::error error;
};

/// Published bytes, sent by the source to the transfer actor.
struct next_slice {
  slice bytes;
};

/// The source is done: `error` is empty at a clean end of file.
struct source_end {
  caf::error error;
};

/// What is known about a stream right now.
struct stream_status {
  /// Bytes published so far (the offset one past the newest byte).
  std::uint64_t size = 0;
  /// Offset of the oldest byte still kept (0 without a retention window).
  std::uint64_t oldest = 0;
  /// Whether the stream reached its final state (end or error).
  bool final = false;
  /// The stream's error, reported at once (not delayed to its byte).
  caf::error error;
  /// The declared final length, if any.
  std::optional<std::uint64_t> declared_length;
  /// Read requests parked right now, waiting for bytes.
  std::uint64_t parked = 0;
};

// -- atoms (at most 10 characters in CAF 0.17) --------------------------------

using status_atom = caf::atom_constant<caf::atom("as_status")>;
using wait_atom = caf::atom_constant<caf::atom("as_wait")>;
using abort_atom = caf::atom_constant<caf::atom("as_abort")>;
using close_atom = caf::atom_constant<caf::atom("as_close")>;
using shutdown_atom = caf::atom_constant<caf::atom("as_shutdn")>;
using cancel_atom = caf::atom_constant<caf::atom("as_cancel")>;
using withdraw_atom = caf::atom_constant<caf::atom("as_wdraw")>;
using release_atom = caf::atom_constant<caf::atom("as_release")>;
using open_atom = caf::atom_constant<caf::atom("as_open")>;
using wait_zero_atom = caf::atom_constant<caf::atom("as_wzero")>;
using refuse_atom = caf::atom_constant<caf::atom("as_refuse")>;
using count_atom = caf::atom_constant<caf::atom("as_count")>;
using tether_atom = caf::atom_constant<caf::atom("as_tether")>;
using lag_atom = caf::atom_constant<caf::atom("as_lag")>;

// -- actor interfaces ---------------------------------------------------------

/// The transfer actor: owns the body and the parked requests.
using transfer_actor = caf::typed_actor<
  // Reads.
  caf::replies_to<slice_request>::with<slice_result>,
  // From the source.
  caf::reacts_to<next_slice>, caf::reacts_to<source_end>,
  // Stream-wide queries: now, and once final.
  caf::replies_to<status_atom>::with<stream_status>,
  caf::replies_to<wait_atom>::with<stream_status>,
  // Reader `id` closed: answers its parked requests with `closed`.
  caf::reacts_to<cancel_atom, std::uint64_t>,
  // Reader `id` gave up waiting (a timeout): answers its parked requests
  // with `timeout`; the reader stays open (and keeps a tethered window).
  caf::reacts_to<withdraw_atom, std::uint64_t>,
  // Registers reader `id`'s tether at `max(offset, oldest kept)` on a
  // tethered stream and answers that position (a no-op answering `offset`
  // on any other stream). Readers send it right after their slot is
  // granted, so they are tethered from the moment they open. A reader that
  // was closed (`cancel_atom`) gets `closed`.
  caf::replies_to<tether_atom, std::uint64_t /* reader */,
                  std::uint64_t /* offset */>::with<std::uint64_t>,
  // Lifts a demand-driven read-ahead limit for good.
  caf::reacts_to<release_atom>,
  // Internal: the timer of a maximum lag (`stream_options::max_lag`), sent
  // by the actor to itself.
  caf::reacts_to<lag_atom, std::uint64_t>,
  // Fails every pending and later read with `canceled`, stops the source.
  caf::reacts_to<abort_atom>,
  // Graceful close: stops the source; the body stays readable.
  caf::reacts_to<close_atom>,
  // Answers everything parked with `stream_gone` and terminates.
  caf::reacts_to<shutdown_atom>>;

/// The readers-monitor actor: caps open readers, waits for zero.
using monitor_actor = caf::typed_actor<
  // Grants a slot to reader `id`, waiting while the cap is reached. The
  // reader has no owner actor: its handle closes it.
  caf::replies_to<open_atom, std::uint64_t>::with<std::uint64_t>,
  // The same for a reader owned by actor `owner` (an invalid address: no
  // owner actor). The monitor watches each owner (once, while it has open
  // or waiting readers); when the owner terminates, for any reason, each
  // of its readers is closed (slot freed, waiting open dropped with
  // `closed`, the transfer actor told `cancel_atom, id`).
  caf::replies_to<open_atom, std::uint64_t /* reader */,
                  caf::actor_addr /* owner */>::with<std::uint64_t>,
  // Frees reader `id`'s slot (or drops its waiting open).
  caf::reacts_to<close_atom, std::uint64_t>,
  // Answered once no reader is open.
  caf::replies_to<wait_zero_atom>::with<std::uint64_t>,
  // Refuses new and waiting opens with the given error from now on.
  caf::reacts_to<refuse_atom, caf::error>,
  // Returns (open readers, waiting opens).
  caf::replies_to<count_atom>::with<std::uint64_t, std::uint64_t>,
  caf::reacts_to<shutdown_atom>>;

} // namespace asyncstream

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::slice_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::slice_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::next_slice)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::source_end)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(asyncstream::stream_status)
