// stream_core: what a stream and its readers share.
//
// Contract: created by `stream::make`, owned through `std::shared_ptr` by
// every stream handle and reader. Its destructor shuts the actors down.
// Thread-safe: the actor handles are immutable, the flags are atomic and
// the close result is guarded by a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"

namespace asyncstream {
class file_store;
} // namespace asyncstream

namespace asyncstream::detail {

class blocking_client;
class own_thread_inbox;
class transfer_direct;
class source_control;
struct stream_counters;

struct stream_core {
  caf::actor_system* sys = nullptr;
  transfer_actor transfer;
  /// The transfer actor's inbox when it runs on a thread of its own, for
  /// producers (detail/transfer_send.hpp); null on the scheduler.
  std::shared_ptr<own_thread_inbox> transfer_inbox;
  /// Its entry for a writer's publications (detail/transfer_send.hpp);
  /// null on the scheduler.
  std::shared_ptr<transfer_direct> transfer_entry;
  monitor_actor monitor;
  std::shared_ptr<source_control> control;
  /// What the actors publish for `stream::stats()`.
  std::shared_ptr<stream_counters> counters;
  /// The stream file of a file-backed stream; null in memory mode.
  std::shared_ptr<file_store> file;
  stream_options options;
  std::atomic<bool> aborted{false};
  /// Whether the stream is pushed and its writer was not handed out yet.
  std::atomic<bool> writer_available{false};
  std::mutex close_mtx;
  std::optional<caf::error> close_result;
  /// The client a `close()` waits on, so `abort()` can release it.
  std::mutex waiting_mtx;
  blocking_client* closing = nullptr;

  ~stream_core();

  /// Returns a process-wide unique reader id.
  static std::uint64_t next_reader_id() noexcept;
};

} // namespace asyncstream::detail
