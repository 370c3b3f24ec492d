// file_store: the stream file of a file-backed stream.
//
// Contract:
// - One producer appends (`append`), strictly in stream order, from one thread
//   at a time; the bytes are in the file (the page cache) before `append`
//   returns, so they may be published afterwards.
// - The owner of the body (the transfer actor) reads with `collect`, from one
//   thread: it hands out slices of read-only shared mappings of the file
//   (windows of `window_size()` bytes). Nothing is copied; the bytes are read
//   from disk by the page faults of whoever touches them. A slice keeps its
//   window mapped, so it stays valid after the file is removed.
// - `collect` must only be asked for bytes that `append` has written (or that
//   the file held when it was opened read-only): a mapped window may reach past
//   the end of the file, and touching those pages would raise SIGBUS.
// - The file is closed when the last handle goes; a named file stays on disk
//   until `remove()`, an unnamed temporary file goes with its last handle and
//   its last mapping.
// - Errors are `std::error_code`s of the generic category (errno values).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "asyncstream/slice.hpp"

namespace asyncstream {

/// An append-only stream file read through shared mappings.
class file_store {
public:
  /// Default size of one mapped window: 2 MiB.
  static constexpr std::size_t default_window = std::size_t{2} << 20;

  /// Default number of recently used windows kept mapped.
  static constexpr std::size_t default_cached_windows = 4;

  /// Creates (or truncates) the stream file at `path`, or, for an empty
  /// `path`, an unnamed temporary file in `directory` (empty: `$TMPDIR`, else
  /// `/tmp`). `window` is rounded up to whole pages.
  static std::shared_ptr<file_store>
  create(const std::string& path, const std::string& directory,
         std::error_code& ec, std::size_t window = default_window,
         std::size_t cached_windows = default_cached_windows);

  /// Opens an existing stream file read-only; its current size is the
  /// stream's length.
  static std::shared_ptr<file_store>
  open_readonly(const std::string& path, std::error_code& ec,
                std::size_t window = default_window,
                std::size_t cached_windows = default_cached_windows);

  ~file_store();

  file_store(const file_store&) = delete;
  file_store& operator=(const file_store&) = delete;

  /// Appends `n` bytes at the end of the file (producer only). On error,
  /// nothing counts as written; the caller must not publish the bytes.
  std::error_code append(const std::byte* data, std::size_t n);

  /// Returns the number of bytes in the file.
  std::uint64_t size() const noexcept {
    return size_.load(std::memory_order_acquire);
  }

  /// Appends to `out` slices of mapped windows covering `[offset, offset + n)`
  /// and returns the number of bytes they hold (0 when a mapping fails or
  /// `ec` is set). The range must lie within the written bytes.
  std::size_t collect(std::uint64_t offset, std::size_t n,
                      std::vector<slice>& out, std::error_code& ec);

  /// Deletes a named file from its directory (a no-op for an unnamed
  /// temporary file, or when already removed). Open mappings stay valid.
  std::error_code remove();

  /// Returns the file's path (empty for an unnamed temporary file).
  const std::string& path() const noexcept {
    return path_;
  }

  /// Returns the file's descriptor (owned here: never close it, never write
  /// to it). Every byte below `size()` is in the file at its stream offset,
  /// for `sendfile(2)` and the like.
  int fd() const noexcept {
    return fd_;
  }

  /// Returns whether the file was opened read-only.
  bool read_only() const noexcept {
    return read_only_;
  }

  /// Returns the size of one mapped window.
  std::size_t window_size() const noexcept {
    return window_;
  }

  /// Returns the number of windows mapped right now (tests).
  std::size_t mapped_windows() const noexcept;

  /// @private
  file_store(int fd, std::string path, bool read_only, std::uint64_t size,
             std::size_t window, std::size_t cached_windows) noexcept;

private:
  /// Returns the mapping of window `index`, mapping it if needed.
  chunk_ptr window(std::uint64_t index, std::error_code& ec);

  int fd_;
  std::string path_;
  bool read_only_;
  bool removed_ = false;
  std::atomic<std::uint64_t> size_;
  std::size_t window_;
  std::size_t cached_windows_;
  /// Every window some slice still maps, by index.
  std::unordered_map<std::uint64_t, std::weak_ptr<const chunk>> windows_;
  /// The most recently used windows, kept mapped even without slices.
  std::deque<chunk_ptr> recent_;
};

} // namespace asyncstream
