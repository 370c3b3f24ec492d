#pragma once

/// Wake-path tracing for latency work (docs/benchmarks.md, "Where a wake-up
/// goes"). Compiled in only with the CMake option ASYNCSTREAM_WAKE_TRACE
/// (never in a release build): each hop of one byte's way from its producer
/// to a parked reader stores a timestamp in a process-wide slot, so that a
/// ping-pong benchmark (one byte in flight at a time) can read the hops of
/// every iteration after it. With several bytes in flight the slots hold the
/// latest hop of any of them: only meaningful for one-at-a-time ping-pong.
/// Without the option every mark compiles to nothing.

#include <cstdint>

namespace asyncstream::detail::wake_trace {

/// The hops, in the order a byte takes them.
enum hop : int {
  /// The producer hands the byte over (stream_writer::write, or the source
  /// reader after its read returned).
  produced,
  /// The message is in the transfer actor's inbox (own-thread host).
  queued,
  /// The transfer actor's thread returned from its wait.
  host_woke,
  /// The transfer actor's handler runs (after CAF's activation).
  handler,
  /// The parked reader's answer is handed to CAF (response promise).
  answered,
  /// The answer is in the blocking reader's inbox (companion hook).
  reader_queued,
  /// The blocking reader's thread returned from its wait (or the async
  /// reader's handler runs).
  reader_woke,
  count
};

/// Monotonic nanoseconds (CLOCK_MONOTONIC).
std::int64_t now_ns() noexcept;

/// Stores now as the time of `h`.
void mark(hop h) noexcept;

/// Copies the latest timestamps of all hops into `out` and clears them
/// (0 = not reached since the last call).
void take(std::int64_t (&out)[count]) noexcept;

/// Whether the library was built with the marks.
bool enabled() noexcept;

} // namespace asyncstream::detail::wake_trace

#ifdef ASYNCSTREAM_WAKE_TRACE
#  define ASYNCSTREAM_WAKE_MARK(h)                                             \
    ::asyncstream::detail::wake_trace::mark(                                   \
      ::asyncstream::detail::wake_trace::h)
#else
#  define ASYNCSTREAM_WAKE_MARK(h) static_cast<void>(0)
#endif
