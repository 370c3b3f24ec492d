// source_control: the stop switch and the flow-control credit shared by a
// stream, its source reader and its writer.
//
// Contract: thread-safe. `stop()` may be called from any thread any number
// of times; it sets `stopped()`, releases `wait_for_room` and, if a stop
// descriptor was opened, makes it readable (waking a `poll(2)` on `fd()`).
// Only a source reader that polls a descriptor needs that stop descriptor
// (`open_fd`); every other stream has none and costs no descriptor here.
// The credit is the offset the producer may fill up to (a tethered
// retention window moves it as the slowest reader moves on); without a
// tethered window or a read-ahead it is unlimited. Constructing one never
// throws for lack of descriptors.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>

#include <caf/error.hpp>

namespace asyncstream::detail {

class source_control {
public:
  source_control() noexcept = default;
  ~source_control();

  source_control(const source_control&) = delete;
  source_control& operator=(const source_control&) = delete;

  /// Opens the stop descriptor (an eventfd), readable after `stop()`. Returns
  /// `resource_exhausted` (or `io_error`) if it cannot be opened. Call once,
  /// before any other thread uses this object.
  caf::error open_fd();

  /// Requests the source reader to stop.
  void stop() noexcept;

  /// Returns whether `stop()` was called.
  bool stopped() const noexcept {
    return stopped_.load(std::memory_order_acquire);
  }

  /// Marks the stream's actor system as gone (it shut down while the
  /// stream still existed), then stops: from now on nothing may send to the
  /// stream's actors.
  void set_system_gone() noexcept {
    system_gone_.store(true, std::memory_order_release);
    stop();
  }

  /// Returns whether the stream's actor system is gone.
  bool system_gone() const noexcept {
    return system_gone_.load(std::memory_order_acquire);
  }

  /// Returns the stop descriptor, -1 unless `open_fd()` succeeded.
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
  int fd_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> system_gone_{false};
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::uint64_t allowed_ = std::numeric_limits<std::uint64_t>::max();
};

} // namespace asyncstream::detail
