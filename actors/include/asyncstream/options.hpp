// Options of one stream. Plain values; copied into the actors at spawn time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <caf/timespan.hpp>

namespace asyncstream {

class chunk_pool;

/// What a retention window does about a slow reader.
enum class retention_policy {
  /// Old bytes are dropped on time; a slow reader gets `data_loss` when it
  /// reaches them. The source is never held back.
  untethered,
  /// The source waits until the slowest reader has moved on: nothing is
  /// lost. A reader is tethered from the moment it opens, at its position,
  /// until it is closed (or its owner actor terminates); only its ordinary
  /// reads move its tether (see docs/storage.md, "What a tether is", and
  /// `stream_options::max_lag`).
  tethered,
};

/// File-backed storage: the body lives in a stream file; memory holds only
/// the newest bytes and the file windows readers are using.
struct file_storage {
  /// The stream file, created or truncated. Empty: an unnamed temporary file
  /// in `directory`, gone when the stream and its slices are.
  std::string path;

  /// Directory of the unnamed temporary file; empty: `$TMPDIR`, else `/tmp`.
  std::string directory;

  /// Newest bytes also kept in memory, so readers at the live edge need no
  /// page faults; older ones are read from the file.
  std::uint64_t memory_cache = 4 * 1024 * 1024;

  /// Size of one read-only mapping of the file (rounded up to whole pages);
  /// readers get slices of these windows.
  std::size_t map_window = 2 * 1024 * 1024;

  /// Recently used windows kept mapped when no slice holds them.
  std::size_t cached_windows = 4;
};

/// How a stream stores and limits its bytes.
struct stream_options {
  /// Largest single read from a pulled source (one `read(2)`).
  std::size_t block_size = 64 * 1024;

  /// Capacity of the largest storage chunk; reads fill a chunk's tail until
  /// full. A producer's chunks grow: 16 KiB first (4 KiB steps x 4^k down to
  /// 4 KiB for a stream declared smaller or a tiny first write), each next
  /// one 4 times larger, up to this size; so a small stream holds a few KiB.
  std::size_t chunk_size = 1024 * 1024;

  /// Fixed capacity: past it, readers get the stored bytes and then a
  /// `buffer_full` error, and the source is stopped.
  std::optional<std::uint64_t> capacity;

  /// Declared final length: end-relative seeks need not wait for the end; a
  /// shorter source fails with `unexpected_end`, a longer one is cut.
  std::optional<std::uint64_t> declared_length;

  /// Retention window: keep only the newest `retention` bytes; older ones
  /// are dropped as new ones arrive. Offsets stay absolute; a read below the
  /// oldest kept byte fails with `data_loss`, saying how many bytes were
  /// lost. Slices a reader already holds stay valid. None: keep everything.
  std::optional<std::uint64_t> retention;

  /// Untethered (drop on time) or tethered (hold the source back).
  retention_policy policy = retention_policy::untethered;

  /// Tethered windows only: the longest a reader may hold the producer
  /// back. The producer is held while the window is full (the stream holds
  /// `retention` bytes past the slowest tether); once the readers at the
  /// slowest tether have held it that long without moving, they are cut
  /// loose: untethered for good (until they close), so the window moves on
  /// and their later reads below the oldest kept byte get `data_loss`.
  /// Every move of the slowest tether, and every new hold, starts the time
  /// anew. None: a reader may hold the producer forever.
  std::optional<caf::timespan> max_lag;

  /// Demand-driven reading: the source reads at most `read_ahead` bytes past
  /// the furthest byte any reader has asked for (a request's offset plus its
  /// size). `wait()`, an end-relative seek (both need the end) and
  /// `stream::release()` lift the limit for good. None: read as fast as the
  /// source gives.
  std::optional<std::uint64_t> read_ahead;

  /// Readers open at once; the next open waits for a slot.
  std::size_t max_readers = 100;

  /// Runs the transfer actor on a thread of its own (a detached actor) that
  /// sleeps on a condition variable and wakes when a message arrives. Set
  /// false to run it on CAF's scheduler (one thread less per stream), at the
  /// cost of the scheduler's idle back-off: CAF 0.17's work-stealing workers
  /// sleep up to 10 ms when idle, which a reader then waits out. With the
  /// `sharing` policy, or `stealing` with
  /// `work-stealing.moderate-poll-attempts = 0`, the scheduler wakes nearly
  /// as fast (see docs/benchmarks.md for the measured wake-up latency of
  /// each). A server with many streams should set this false.
  bool transfer_thread = true;

  /// File-backed storage; none: the body lives in memory (chunks).
  std::optional<file_storage> file;

  /// Pool for chunk memory: every chunk comes from it, at its fixed size.
  /// Null: the process-wide pools of each growing size
  /// (`chunk_pool::shared`), whose free memory
  /// `chunk_pool::set_shared_max_cached` bounds.
  std::shared_ptr<chunk_pool> pool;
};

/// How one reader fetches bytes.
struct reader_options {
  /// Bytes asked for per request to the transfer actor. Reads are served from
  /// the slices already held until they run out, so one message carries many
  /// reads' worth of data. Held slices share chunks: no memory is copied.
  std::size_t prefetch = 8 * 1024 * 1024;

  /// Longest wait for bytes that are not there yet (reads, `wait_for`, an
  /// end-relative seek); past it the call fails with `errc::timeout` and the
  /// position is unchanged, so the call may be repeated. None: wait as long
  /// as it takes.
  std::optional<caf::timespan> timeout;
};

} // namespace asyncstream
