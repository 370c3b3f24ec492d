// download_actor: bridges one HTTP response to one stream reader.
//
// Contract:
// - `download_handle::start` spawns an event-based actor on CAF's scheduler
//   that opens an `async_reader` (waiting up to `queue_timeout` for a reader
//   slot), positions it (for a range: waits for its first byte or the end),
//   and reports through the sink. It never blocks.
// - The network side asks for bytes with `pull(max)`; every pull is answered
//   with exactly one `on_data` (slices, or none at the end, or the error).
//   Slices share the stream's chunks: nothing is copied on the way out.
// - Sink calls run on CAF threads; the sink must hand them to its own
//   executor. The actor holds the sink until it ends (after `stop()`), so a
//   connection waiting for bytes stays alive without a pending socket
//   operation.
// - `stop()` (or destroying the last handle) closes the reader at once and
//   ends the actor; its reader slot is free for the next client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/protocol.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"

namespace streamerd {

/// Receives what a download actor finds.
class download_sink {
public:
  virtual ~download_sink() = default;

  /// The reader is open and positioned at `offset` (or `err` says why not);
  /// `status` is the stream's status after positioning.
  virtual void on_ready(caf::error err, asyncstream::stream_status status,
                        std::uint64_t offset)
    = 0;

  /// Answer to one pull: bytes, or nothing and no error at the end.
  virtual void on_data(std::vector<asyncstream::slice> bytes, caf::error err)
    = 0;
};

/// What a download starts with.
struct download_actor_request {
  asyncstream::stream stream;
  /// Where to start (ignored for a suffix).
  std::uint64_t offset = 0;
  /// Report ready only once the byte at `offset` exists or the stream is
  /// final (a range's status line waits for its first byte).
  bool wait_first = false;
  /// `bytes=-K`: wait for the end, then start K bytes before it.
  std::optional<std::uint64_t> suffix;
  /// Longest wait for a reader slot (then `errc::timeout`).
  caf::timespan queue_timeout = std::chrono::seconds{10};
};

/// The network side's handle of one download actor.
class download_handle {
public:
  download_handle() = default;

  /// Spawns the actor.
  static download_handle start(caf::actor_system& sys, download_actor_request req,
                               std::shared_ptr<download_sink> sink);

  /// Asks for up to `max` more bytes.
  void pull(std::size_t max) const;

  /// Closes the reader and ends the actor; idempotent.
  void stop();

  explicit operator bool() const noexcept {
    return static_cast<bool>(actor_);
  }

private:
  caf::actor actor_;
};

/// Calls `f` (on a CAF thread) once `s` is final, with its final status.
void on_stream_final(caf::actor_system& sys, const asyncstream::stream& s,
                     std::function<void(asyncstream::stream_status)> f);

} // namespace streamerd
