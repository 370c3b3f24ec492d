#include "asyncstream/detail/wake_trace.hpp"

#include <time.h>

#include <atomic>

namespace asyncstream::detail::wake_trace {

namespace {

std::atomic<std::int64_t> stamps[count];

} // namespace

std::int64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void mark(hop h) noexcept {
  stamps[h].store(now_ns(), std::memory_order_relaxed);
}

void take(std::int64_t (&out)[count]) noexcept {
  for (int i = 0; i < count; ++i)
    out[i] = stamps[i].exchange(0, std::memory_order_relaxed);
}

bool enabled() noexcept {
#ifdef ASYNCSTREAM_WAKE_TRACE
  return true;
#else
  return false;
#endif
}

} // namespace asyncstream::detail::wake_trace
