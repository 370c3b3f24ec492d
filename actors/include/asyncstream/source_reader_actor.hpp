// The source reader: pulls a source into pooled chunks.
//
// Contract: runs on a thread of its own (never on CAF's scheduler; the
// actor system counts it like a detached actor's thread and
// `~actor_system()` waits for it). It is no actor: it only sends. It reads
// into the tail of a chunk only it writes to and sends each filled range to
// the transfer actor as a `next_slice` as soon as the read returns; bytes
// that come together with end of file are kept. Chunks grow from small to
// `stream_options::chunk_size` (detail/chunk_sizer.hpp). It ends with one
// `source_end`, unless `control` was stopped first (then it sends nothing
// more). It owns the descriptor only if the source says so, and closes it
// when it ends. Limits are exact: it never asks the source for a byte past
// the capacity or the declared length (a pipe keeps what belongs to its
// next reader); at a declared length it stops (the transfer actor ends the
// stream), at a capacity it ends the stream with `buffer_full` unless the
// source reported its end with its last bytes. With a stream file, each
// read is appended to the file before it is published; a failed write ends
// the stream with `io_error` at that byte. Running out of memory for a chunk
// ends it with `resource_exhausted` there.
//
// Starting one is two steps, so that `stream::make` can fail at any point
// without leaving anything behind: `start` creates the thread, which holds
// nothing and waits; `run` hands it its work. A launcher destroyed without
// `run` lets its thread end at once.
#pragma once

#include <memory>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/source.hpp"

namespace asyncstream {

class file_store;

namespace detail {
class own_thread_inbox;
class source_control;
struct stream_counters;
} // namespace detail

/// Starts the source reader of a pulled source (fd or function).
class source_reader_launcher {
public:
  source_reader_launcher() = default;
  source_reader_launcher(source_reader_launcher&&) noexcept = default;
  source_reader_launcher& operator=(source_reader_launcher&&) = delete;
  ~source_reader_launcher();

  /// Creates the reader's thread (waiting, holding nothing). Returns
  /// `resource_exhausted` if no thread can be created.
  caf::error start(caf::actor_system& sys);

  /// Hands the waiting thread its work; it starts reading at once. It sends
  /// to `transfer` through `inbox` when that is set, with `counters` for
  /// the choice (detail/transfer_send.hpp; both may be null).
  void run(source src, transfer_actor transfer,
           std::shared_ptr<detail::own_thread_inbox> inbox,
           std::shared_ptr<detail::stream_counters> counters,
           const stream_options& opts,
           std::shared_ptr<detail::source_control> control,
           std::shared_ptr<file_store> file = nullptr);

  /// @private
  struct slot;

private:
  std::shared_ptr<slot> slot_;
};

} // namespace asyncstream
