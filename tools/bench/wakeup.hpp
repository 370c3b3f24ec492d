// Wake-up latency: a writer makes one byte available, a reader blocked in a
// read returns. Ping-pong: the reader acknowledges through a pipe before the
// writer sends the next byte, so every iteration measures one wake-up.
//
// - kernel: the byte goes through a pipe read by a `source::from_fd`
//   stream (the pulled path): write(2) on the pipe -> the
//   source-reader actor's thread (poll + read) -> `next_slice` to the
//   transfer actor (its own thread by default, `stream_options::
//   transfer_thread`; else a CAF scheduler hop) -> the parked
//   `slice_result` -> the blocking_reader's thread returns from `read()`.
// - writer: the pushed path: `stream_writer::write` of one byte ->
//   `next_slice` to the transfer actor -> the blocking_reader returns.
// - async: the pushed path with an event-based actor as the reader
//   (`async_reader::read` chained in its handlers).
// - reference: a std::mutex + std::condition_variable byte buffer; the
//   writer appends one byte and calls notify_one.
// - pingpong: the round trip of one byte through two pushed streams: the
//   ping thread writes a byte to the first, an echo thread reads it and
//   writes one to the second, which the ping thread reads (two wake-ups).
//   ref-pingpong: the same through two reference byte queues.
// - ref-pipe: the kernel row's thread hops without the kernel: a relay
//   thread in poll + read on the pipe hands the byte to the reader through a
//   mutex + condition variable.
// - ref-actor: CAF alone, no stream: a thread's `anon_send` wakes an
//   event-based actor on the scheduler (what the async row's last hop costs).
//
// With `load_readers` > 0 every row (the references too) runs while that
// many blocking readers stream a stream of their own at full speed in the
// same process (latency under load).
//
// The latency of one iteration is (time the reader's read returned) - (time
// just before the writer wrote), both on steady_clock. The acknowledgement
// is outside the measured interval.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common.hpp"

namespace asyncstream::bench {

/// Describes the kernel's wake-up path (printed with the results).
constexpr const char* kernel_wakeup_path
  = "pipe write -> source-reader thread (poll+read) -> transfer actor -> "
    "blocking_reader::read() returns";

constexpr const char* writer_wakeup_path
  = "stream_writer::write -> transfer actor -> blocking_reader::read() "
    "returns";

constexpr const char* async_wakeup_path
  = "stream_writer::write -> transfer actor -> async_reader::read() handler "
    "runs in its actor";

constexpr const char* pingpong_wakeup_path
  = "round trip: write -> stream 1 -> echo thread reads, writes -> stream 2 "
    "-> read returns";

constexpr const char* ref_pingpong_wakeup_path
  = "round trip through two mutex+condvar byte queues";

constexpr const char* ref_pipe_wakeup_path
  = "pipe write -> relay thread (poll+read) -> mutex+condvar -> reader "
    "returns (the pulled path's threads without the kernel)";

constexpr const char* ref_actor_wakeup_path
  = "CAF alone: anon_send from a thread -> an event-based actor's handler "
    "runs (the scheduler's wake-up)";

constexpr const char* reference_wakeup_path
  = "mutex+condvar: append 1 byte, notify_one -> reader returns from wait";

struct wakeup_config {
  std::size_t iterations = 10000;
  std::uint64_t gap_us = 0;
  std::size_t scheduler_threads = 2;
  std::string scheduler_policy = "sharing";
  bool transfer_thread = true;
  /// Readers streaming a stream of their own meanwhile (`--wakeup-load`).
  std::size_t load_readers = 0;
  /// How the row's own threads ask to be scheduled (`--wakeup-priority`):
  /// normal, slice or fifo.
  std::string priority = "normal";
  /// More CAF settings (`--caf-set`, a configuration's own).
  caf_settings settings;
};

/// A named configuration of the kernel's wake-up rows (`--wakeup-configs`):
/// where the transfer actor runs and how CAF's scheduler waits for work.
struct wakeup_variant {
  std::string name;
  bool transfer_thread = true;
  std::string policy;
  caf_settings settings;
  /// One line for the output: what the configuration is.
  std::string describe;
};

/// The names `--wakeup-configs` accepts, comma separated (for the help).
constexpr const char* wakeup_variant_names
  = "thread,sharing,stealing,stealing-tuned";

/// Fills `out` with the configuration `name`; `policy` is the scheduler
/// policy of "thread" (--scheduler-policy). False for an unknown name.
bool wakeup_variant_by_name(const std::string& name, const std::string& policy,
                            wakeup_variant& out);

wakeup_record run_wakeup_kernel(const wakeup_config& cfg);

wakeup_record run_wakeup_writer(const wakeup_config& cfg);

wakeup_record run_wakeup_async(const wakeup_config& cfg);

wakeup_record run_wakeup_reference(const wakeup_config& cfg);

wakeup_record run_wakeup_ref_actor(const wakeup_config& cfg);

wakeup_record run_wakeup_ref_pipe(const wakeup_config& cfg);

wakeup_record run_pingpong_kernel(const wakeup_config& cfg);

wakeup_record run_pingpong_reference(const wakeup_config& cfg);

} // namespace asyncstream::bench
