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
// - A buffer source is given as `complete_body`: the stream starts final.
// - With a stream file (`file`), the producer appends to the file before it
//   publishes; the actor keeps only the newest `file_storage::memory_cache`
//   bytes in memory and answers older offsets with slices of file mappings.
//   A file opened read-only is a complete stream of the file's length.
#pragma once

#include <memory>
#include <optional>

#include <caf/fwd.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"

namespace asyncstream {

class file_store;

namespace detail {
class source_control;
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
};

/// Spawns a transfer actor: detached if `cfg.options.transfer_thread`,
/// else on the scheduler.
transfer_actor spawn_transfer(caf::actor_system& sys, transfer_config cfg);

} // namespace asyncstream
