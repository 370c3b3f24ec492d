// Sources: where a pulled stream's bytes come from.
//
// Contract:
// - A `source` is a description; the stream takes it over when spawned. A
//   file descriptor source owns its descriptor only if asked to
//   (`from_fd(fd, true)`, `from_path`): then the descriptor is closed once,
//   when the source reader is done with it, or when the last copy of the
//   source goes without a stream having read it (`stream::make` failed, or
//   the source was never used). A source is never left holding a descriptor.
// - Reads of a pulled source happen on the source-reader actor's own thread
//   (never on CAF's scheduler). Descriptors are polled together with a stop
//   descriptor, so closing or aborting the stream wakes a blocked read.
// - A read function runs on that thread too; it cannot be interrupted, so the
//   stop request is seen between two calls.
// - A buffer source is complete from the start: its bytes are adopted without
//   a copy and the stream has ended before the first read.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "asyncstream/chunk.hpp"

namespace asyncstream {

/// What one call of a read function produced.
struct read_outcome {
  /// Bytes written into the buffer (kept even when `eof` or `error` is set).
  std::size_t size = 0;
  /// The source ended after these bytes.
  bool eof = false;
  /// The source failed after these bytes.
  caf::error error;
};

/// A blocking pull function: fill up to `max` bytes at `buf`.
using read_function = std::function<read_outcome(std::byte* buf,
                                                 std::size_t max)>;

/// Describes the source of a pulled stream.
class source {
public:
  /// A descriptor (pipe, socket, regular file); closed at the end when
  /// `take_ownership` is set (see the contract above).
  static source from_fd(int fd, bool take_ownership = false);

  /// A file, opened now (an error if it cannot be opened: `io_error`, or
  /// `resource_exhausted` when the process is out of descriptors).
  static caf::expected<source> from_path(const std::string& path);

  /// A complete in-memory buffer, adopted without a copy.
  static source from_bytes(std::shared_ptr<const std::string> bytes);

  /// A complete in-memory buffer (moved in, not copied).
  static source from_bytes(std::string bytes);

  /// A blocking pull function.
  static source from_function(read_function fn);

  /// No source: the bytes come from the stream's `stream_writer`.
  static source push();

  /// @private Closes an owned descriptor exactly once: explicitly
  /// (`close`, by the source reader at its end) or when the last copy of the
  /// source goes.
  class fd_owner {
  public:
    explicit fd_owner(int fd) noexcept : fd_(fd) {
      // nop
    }

    fd_owner(const fd_owner&) = delete;
    fd_owner& operator=(const fd_owner&) = delete;

    ~fd_owner() {
      close();
    }

    /// Closes the descriptor if it is still open. Thread-safe, idempotent.
    void close() noexcept;

  private:
    std::atomic<int> fd_;
  };

  /// @private
  struct fd_source {
    int fd;
    bool owned;
    /// Set iff `owned`.
    std::shared_ptr<fd_owner> owner;
  };

  /// @private
  struct buffer_source {
    chunk_ptr bytes;
    std::size_t size;
  };

  /// @private
  struct push_source {};

  /// @private
  using variant_type
    = std::variant<fd_source, buffer_source, read_function, push_source>;

  /// @private
  const variant_type& get() const noexcept {
    return impl_;
  }

private:
  explicit source(variant_type x) : impl_(std::move(x)) {
    // nop
  }

  variant_type impl_;
};

} // namespace asyncstream
