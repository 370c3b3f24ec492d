// source_control: the stop switch and the flow-control credit shared by a
// stream, its source reader and its writer.
//
// Contract: thread-safe. `stop()` may be called from any thread any number
// of times; it wakes a `poll(2)` on `fd()`, sets `stopped()` and releases
// `wait_for_room`. The credit is the offset the producer may fill up to
// (a tethered retention window moves it as the slowest reader moves on);
// without a tethered window it is unlimited.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>

namespace asyncstream::detail {

class source_control {
public:
  source_control();
  ~source_control();

  source_control(const source_control&) = delete;
  source_control& operator=(const source_control&) = delete;

  /// Requests the source reader to stop.
  void stop() noexcept;

  /// Returns whether `stop()` was called.
  bool stopped() const noexcept {
    return stopped_.load(std::memory_order_acquire);
  }

  /// Returns a descriptor that becomes readable on `stop()`.
  int fd() const noexcept {
    return fd_;
  }

  /// Lets the producer fill the stream up to offset `end` (exclusive).
  void allow(std::uint64_t end);

  /// Blocks until the producer may write at `offset`, then returns how many
  /// bytes it may write from there (at least 1); returns 0 once the stream
  /// is stopped. The credit may shrink later (a tethered window when a new
  /// reader joins further back): ask again before each write.
  std::uint64_t wait_for_room(std::uint64_t offset);

  /// Returns the offset the producer may fill up to.
  std::uint64_t allowed() const;

private:
  int fd_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::uint64_t allowed_ = std::numeric_limits<std::uint64_t>::max();
};

} // namespace asyncstream::detail
