// source_control: the stop switch shared by a stream and its source reader.
//
// Contract: thread-safe. `stop()` may be called from any thread any number
// of times; it wakes a `poll(2)` on `fd()` and sets `stopped()`.
#pragma once

#include <atomic>

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

private:
  int fd_;
  std::atomic<bool> stopped_{false};
};

} // namespace asyncstream::detail
