// The transfer actor: owns a stream's body and its parked read requests.
//
// Contract:
// - The body (published slices), the source's final status and the parked
//   requests live only here; the actor never blocks.
// - A request that can be served is answered at once. One for bytes not there
//   yet is parked and answered, lowest offset first, when they arrive, when
//   the stream becomes final, when its reader is canceled, or when the actor
//   shuts down: every request gets exactly one answer.
// - Errors are delayed to their byte: a reader below the failure offset gets
//   the bytes up to it, then the error. `abort` fails everything at once.
// - Tethered windows: a reader's tether is registered by `tether_atom` (or,
//   for a client that never sends it, by its first ordinary read) and moved
//   only by its ordinary reads: positional (`slice_request::positional`)
//   and zero-length requests never move it. `cancel_atom` releases it; the
//   ids of the last 256 closed readers are remembered, so a request or a
//   tether racing with the close gets `closed` and never tethers again.
// - A buffer source is given as `complete_body`: the stream starts final.
// - With a stream file (`file`), the producer appends to the file before it
//   publishes; the actor keeps only the newest `file_storage::memory_cache`
//   bytes in memory and answers older offsets with slices of file mappings.
//   A file opened read-only is a complete stream of the file's length.
// - With `counters`, the actor publishes the body size, the oldest readable
//   offset, the number of parked requests and the final status there as they
//   change (relaxed stores, at most one per counter per message), for
//   `stream::stats()`. What is known at spawn time (a complete body, a
//   re-opened file) is published before `spawn_transfer` returns.
// - With `transfer_thread`, the actor runs on a thread of its own (see
//   detail/own_thread.hpp for why that is not CAF's detached spawn); else on
//   CAF's scheduler.
#pragma once

#include <memory>
#include <optional>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"

namespace asyncstream {

class file_store;

namespace detail {
class own_thread_inbox;
class source_control;
struct stream_counters;
} // namespace detail

namespace detail {

/// A producer's way to hand a slice to a transfer actor on its own thread
/// without a message: `append_slice` does what the `next_slice` handler
/// does. Call it only holding the actor's token (`detail::try_enter` on its
/// inbox), so that it runs as the actor (detail/transfer_send.hpp).
class transfer_direct {
public:
  virtual ~transfer_direct() = default;

  virtual void append_slice(slice s) = 0;
};

} // namespace detail

/// What the transfer actor starts with.
struct transfer_config {
  /// Limits (capacity, declared length) apply to what the source delivers.
  stream_options options;
  /// Stopped when the stream no longer wants bytes; may be null.
  std::shared_ptr<detail::source_control> control;
  /// If set, the whole stream, ended from the start.
  std::optional<slice> complete_body;
  /// The stream file of a file-backed stream; may be null.
  std::shared_ptr<file_store> file;
  /// Where the actor publishes what `stream::stats()` reads; may be null.
  std::shared_ptr<detail::stream_counters> counters;
};

/// Spawns a transfer actor: on a thread of its own if
/// `cfg.options.transfer_thread`, else on the scheduler. Returns
/// `resource_exhausted` when no thread or memory can be had; nothing is
/// left running or registered then. On its own thread, `inbox` (if given)
/// receives the actor's inbox, through which producers send with
/// `detail::send_to_transfer`, and `direct` (if given) its entry for
/// `detail::publish_to_transfer`; on the scheduler both stay null.
caf::expected<transfer_actor>
try_spawn_transfer(caf::actor_system& sys, transfer_config cfg,
                   std::shared_ptr<detail::own_thread_inbox>* inbox = nullptr,
                   std::shared_ptr<detail::transfer_direct>* direct = nullptr);

/// Spawns a transfer actor like `try_spawn_transfer`, but throws
/// `std::system_error` when that fails.
transfer_actor spawn_transfer(caf::actor_system& sys, transfer_config cfg);

} // namespace asyncstream
