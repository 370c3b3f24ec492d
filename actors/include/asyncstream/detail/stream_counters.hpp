// stream_counters: what a stream's actors publish about it, for
// `stream::stats()` to read without a message.
//
// Contract:
// - Shared (`std::shared_ptr`) by the stream core, the transfer actor and the
//   readers-monitor actor. The transfer actor alone writes `size`, `oldest`,
//   `parked` and the final status; the monitor alone writes `readers` and
//   `waiting`. Any thread may read at any time.
// - Writers use relaxed stores, one per counter per handled message (never
//   one per reader), so publishing costs next to nothing on the hot path.
//   The final status is published once: the error under `mtx` first, then
//   `final` with release order; a reader that sees `final` (acquire) and then
//   takes `mtx` sees that error.
// - A snapshot of several counters is not atomic as a whole: each value was
//   true at some moment during the read.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include <caf/error.hpp>

namespace asyncstream::detail {

struct stream_counters {
  // -- written by the transfer actor ------------------------------------------

  /// Bytes published so far.
  std::atomic<std::uint64_t> size{0};
  /// First offset still readable (retention windows).
  std::atomic<std::uint64_t> oldest{0};
  /// Read requests parked, waiting for bytes.
  std::atomic<std::uint64_t> parked{0};
  /// Whether the stream is final (ended or failed); see `error`.
  std::atomic<bool> final{false};
  /// Guards `error`.
  std::mutex mtx;
  /// The final error, set once before `final` becomes true.
  caf::error error;

  // -- written by the readers-monitor actor (its own cache line) --------------

  /// Readers open right now.
  alignas(64) std::atomic<std::uint64_t> readers{0};
  /// Opens waiting for a slot.
  std::atomic<std::uint64_t> waiting{0};

  /// Publishes the final status (transfer actor; once).
  void publish_final(const caf::error& err) {
    if (final.load(std::memory_order_relaxed))
      return;
    {
      std::lock_guard<std::mutex> guard{mtx};
      error = err;
    }
    final.store(true, std::memory_order_release);
  }
};

} // namespace asyncstream::detail
