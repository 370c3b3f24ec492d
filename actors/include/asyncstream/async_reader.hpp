// async_reader: reads a stream from inside an event-based actor.
//
// Contract:
// - Every call must come from inside the actor `self` given to `open`, and
//   every handler runs inside that actor; nothing here blocks.
// - Operations complete in the order they were issued. A read served from
//   held slices completes at once (inside the call); one that needs bytes
//   sends one `slice_request` for up to `prefetch` bytes and completes when
//   the answer arrives. Handlers may issue further operations: they are
//   queued and run without recursion, so long read loops use no stack.
// - Same semantics as `blocking_reader` (short reads, 0 at end, errors at
//   their byte, `canceled` after abort). `close()` takes effect at once: the
//   waiting operation and every queued one complete with `closed`.
// - The buffer passed to `read` must stay valid until its handler runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"

namespace asyncstream {

class async_reader {
public:
  using open_handler = std::function<void(caf::expected<async_reader>)>;
  using size_handler = std::function<void(caf::expected<std::size_t>)>;
  using slices_handler
    = std::function<void(caf::expected<std::vector<slice>>)>;
  using offset_handler = std::function<void(caf::expected<std::uint64_t>)>;
  using wait_handler = std::function<void(caf::expected<bool>)>;

  /// Creates an invalid reader.
  async_reader() noexcept = default;

  /// Opens a reader for `self`; `f` runs inside `self` once a reader slot is
  /// granted (waiting while the cap is reached), or with the error.
  static void open(caf::event_based_actor* self, const stream& s,
                   open_handler f, reader_options opts = {});

  /// Like `open`, but gives up after `timeout` with `errc::timeout`.
  static void open(caf::event_based_actor* self, const stream& s,
                   caf::timespan timeout, open_handler f,
                   reader_options opts = {});

  /// Reads up to `n` bytes into `buf` (short reads; 0 at the end).
  void read(void* buf, std::size_t n, size_handler f);

  /// Reads exactly `n` bytes into `buf` unless the stream ends first.
  void read_exact(void* buf, std::size_t n, size_handler f);

  /// Takes up to `max` bytes as shared slices (empty at the end).
  void read_slices(std::size_t max, slices_handler f);

  /// Moves the position (`whence::end` waits for the end unless a length
  /// was declared); a failed seek leaves the position unchanged.
  void seek(std::int64_t offset, whence from, offset_handler f);

  /// Completes once the byte at `offset` exists (true) or the stream ended
  /// before it (false), or with the error.
  void wait_for(std::int64_t offset, wait_handler f);

  /// Returns the position after every completed operation.
  std::uint64_t position() const noexcept;

  /// Closes the reader; idempotent.
  void close();

  /// Returns whether this handle refers to an open or closed reader.
  bool valid() const noexcept {
    return state_ != nullptr;
  }

  /// @private
  struct state;

private:
  explicit async_reader(std::shared_ptr<state> st) : state_(std::move(st)) {
    // nop
  }

  static void open_impl(caf::event_based_actor* self, const stream& s,
                        caf::duration timeout, open_handler f,
                        reader_options opts);

  std::shared_ptr<state> state_;
};

} // namespace asyncstream
