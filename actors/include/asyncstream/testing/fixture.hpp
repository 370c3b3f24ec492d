// asyncstream::testing: a deterministic fixture for testing actors that
// consume streams, without threads and without sleeping.
//
// Contract:
// - `fixture` owns an actor system on CAF's test coordinator: nothing runs
//   until the test calls `run()` (all pending messages) or `run_once()` (one).
// - The stream has no source-reader thread: the test is the source. `emit`
//   publishes bytes exactly as the source reader would (copied into the tail
//   of a pooled chunk, one `next_slice` per call; with `stream_options::file`
//   appended to the stream file first); `end` and `fail` finish it. `emit`
//   ignores the credit (`credit()`): a test that plays a well-behaved source
//   emits at most `credit() - emitted()` bytes.
// - Or the test is a producer with a real `stream_writer` (`writer()`, a
//   pushed stream): it must then write at most `credit() - written()` bytes
//   per call, since a write past the credit blocks the test's own thread.
//   Destroy the writer before the fixture.
// - A `probe` is a scripted client actor that sends `slice_request`s and
//   records every `slice_result` in arrival order. Its getters read what was
//   recorded so far; call `run()` first.
// - `run_job(i)` runs one message of the `i`-th actor that has messages
//   waiting (`jobs()` of them), so a test can choose the order in which
//   actors run (a seeded schedule).
// - `stream()` returns a stream handle of the fixture's actors, for
//   `async_reader::open` inside the test's own actors. The blocking calls of
//   `stream` must not be used here (they would wait for a scheduler that
//   only runs when the test says so).
// - Not thread-safe: one test thread drives everything. Destroying the
//   fixture shuts down every actor it made.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"

namespace asyncstream {
class file_store;
} // namespace asyncstream

namespace asyncstream::testing {

/// What a probe has received.
struct probe_log {
  /// Every answer in arrival order.
  std::vector<slice_result> answers;
  /// Requests sent and not yet answered.
  std::size_t outstanding = 0;
  /// Global arrival sequence numbers of the answers (see `fixture::clock`).
  std::vector<std::uint64_t> arrival;
};

/// A scripted reader: sends requests, records answers.
class probe {
public:
  /// Asks for `max_size` bytes at `offset` (delivered at the next `run`).
  void request(std::uint64_t offset, std::uint64_t max_size);

  /// Reads the whole stream from `offset` with requests of `max_size`,
  /// each sent when the previous one was answered, until end or error.
  void read_all(std::uint64_t offset, std::uint64_t max_size);

  /// Closes this reader at the transfer actor (its parked requests fail
  /// with `closed`).
  void cancel();

  /// Returns the reader id used in this probe's requests.
  std::uint64_t id() const noexcept {
    return id_;
  }

  /// Returns every answer so far.
  const std::vector<slice_result>& answers() const {
    return log_->answers;
  }

  /// Returns how many requests wait for an answer.
  std::size_t outstanding() const {
    return log_->outstanding;
  }

  /// Returns the bytes of all answers, concatenated in arrival order.
  std::string received() const;

  /// Returns whether an answer said the stream ended.
  bool ended() const;

  /// Returns the first error an answer carried (or none).
  caf::error error() const;

  /// Returns the global arrival number of answer `i`.
  std::uint64_t arrival(std::size_t i) const {
    return log_->arrival.at(i);
  }

  /// @private
  probe(caf::actor handle, transfer_actor transfer, std::uint64_t id,
        std::shared_ptr<probe_log> log)
    : handle_(std::move(handle)),
      transfer_(std::move(transfer)),
      id_(id),
      log_(std::move(log)) {
    // nop
  }

  /// @private
  const caf::actor& handle() const noexcept {
    return handle_;
  }

private:
  caf::actor handle_;
  transfer_actor transfer_;
  std::uint64_t id_;
  std::shared_ptr<probe_log> log_;
};

/// A deterministic actor system with one stream fed by the test.
class fixture {
public:
  /// Creates the system and the stream's actors (no source thread). With
  /// `opts.file`, creates the stream file (throws `std::system_error` if
  /// that fails).
  explicit fixture(stream_options opts = {});

  ~fixture();

  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  // -- the scripted source ----------------------------------------------------

  /// Publishes `bytes` at the end of the stream (one `next_slice`).
  void emit(std::string_view bytes);

  /// Ends the stream cleanly after the bytes emitted so far.
  void end();

  /// Fails the stream after the bytes emitted so far.
  void fail(caf::error err);

  /// Returns how many bytes `emit` has published.
  std::uint64_t emitted() const noexcept {
    return emitted_;
  }

  /// Makes the stream a pushed one and hands out its one writer (a second
  /// call fails with `invalid_argument`). Writes go to the stream file
  /// first, if any. Do not mix with `emit`, `end` and `fail`.
  caf::expected<stream_writer> writer();

  // -- stepping ---------------------------------------------------------------

  /// Runs until no actor has a message left; returns how many ran.
  std::size_t run();

  /// Runs one message; returns false if there was none.
  bool run_once();

  /// Returns how many actors wait to run (a message, or their start).
  std::size_t jobs() const noexcept;

  /// Returns the `i`-th actor waiting to run (`i < jobs()`), in the
  /// coordinator's queue order; null if it is not an actor.
  caf::actor_addr job(std::size_t i) const;

  /// Runs one message of the `i`-th actor waiting to run; returns false if
  /// `i >= jobs()`.
  bool run_job(std::size_t i);

  // -- readers ----------------------------------------------------------------

  /// Spawns a probe with a fresh reader id.
  probe& add_probe();

  // -- access -----------------------------------------------------------------

  /// Returns the actor system.
  caf::actor_system& sys() noexcept {
    return *sys_;
  }

  /// Returns the deterministic scheduler.
  caf::scheduler::test_coordinator& sched() noexcept {
    return *sched_;
  }

  /// Returns a stream handle of the fixture's actors (for async readers).
  const asyncstream::stream& stream() const noexcept {
    return stream_;
  }

  /// Returns the transfer actor.
  transfer_actor transfer() const {
    return stream_.transfer();
  }

  /// Returns the readers-monitor actor.
  monitor_actor monitor() const {
    return stream_.monitor();
  }

  /// Returns the sequence counter probes stamp their answers with.
  std::shared_ptr<std::uint64_t> clock() const noexcept {
    return clock_;
  }

  /// Asks the transfer actor for its status and runs until answered.
  stream_status status();

  /// Returns the offset the producer may fill up to right now (flow control
  /// of a tethered window or a read-ahead limit; the maximum otherwise).
  std::uint64_t credit() const;

  /// Returns whether the stream told its producer to stop (a final status,
  /// a close or an abort).
  bool stopped() const;

  /// Returns the stream file of a file-backed stream (null in memory mode).
  const std::shared_ptr<file_store>& file() const noexcept {
    return file_;
  }

private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  asyncstream::stream stream_;
  std::shared_ptr<chunk_pool> pool_;
  std::shared_ptr<file_store> file_;
  mutable_chunk_ptr current_;
  std::size_t filled_ = 0;
  std::uint64_t emitted_ = 0;
  bool writer_offered_ = false;
  std::vector<std::unique_ptr<probe>> probes_;
  std::shared_ptr<std::uint64_t> clock_ = std::make_shared<std::uint64_t>(0);
};

} // namespace asyncstream::testing
