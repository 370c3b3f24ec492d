// read_cursor: a reader's position and the slices it already holds.
//
// Contract: owned by one reader, not thread-safe, no CAF calls. The held
// slices always start at the position; reads are served from them until
// they run out, so one `slice_result` serves many reads. Holding slices
// copies no bytes (they share the stream's chunks). An error an answer
// reported at an offset is remembered there, so a read (of any size, zero
// included) at that offset returns it without asking again.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "asyncstream/protocol.hpp"

namespace asyncstream::detail {

/// Outcome of `seek_target`.
enum class seek_check {
  /// The target is a valid position.
  ok,
  /// The target would be below offset 0.
  negative,
  /// The target would be past the largest position, 2^63 - 1 (positions
  /// must fit the `std::int64_t` offsets of `seek`, `read_at`, `wait_for`).
  too_far,
};

/// The largest position a reader may take.
constexpr std::uint64_t max_position
  = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// Computes `base + offset` without overflow for every pair of values
/// (`base` may be any unsigned 64-bit number, `offset` any signed one).
inline seek_check seek_target(std::uint64_t base, std::int64_t offset,
                              std::uint64_t& out) noexcept {
  if (offset >= 0) {
    auto forward = static_cast<std::uint64_t>(offset);
    if (base > max_position || forward > max_position - base)
      return seek_check::too_far;
    out = base + forward;
    return seek_check::ok;
  }
  // |offset| without negating INT64_MIN.
  auto back = static_cast<std::uint64_t>(-(offset + 1)) + 1;
  if (back > base)
    return seek_check::negative;
  out = base - back;
  return out > max_position ? seek_check::too_far : seek_check::ok;
}

class read_cursor {
public:
  /// Returns the offset of the next byte to read.
  std::uint64_t position() const noexcept {
    return pos_;
  }

  /// Returns how many bytes are held at the position.
  std::uint64_t held() const noexcept {
    return held_size_;
  }

  /// Returns whether the stream is known to have no byte at the position.
  bool at_end() const noexcept {
    if (held_size_ > 0)
      return false;
    return (end_at_ && *end_at_ <= pos_)
           || (empty_from_ && *empty_from_ <= pos_);
  }

  /// Returns the error a read at the position gets, if an answer already
  /// said so (null otherwise, and while bytes are held there).
  const caf::error* error_here() const noexcept {
    if (held_size_ > 0 || !error_at_ || error_at_->first != pos_)
      return nullptr;
    return &error_at_->second;
  }

  /// Remembers that a read at `offset` gets `err` (a stream error at its
  /// byte, or `data_loss` below the window); forgets it when `err` is empty.
  void set_error_at(std::uint64_t offset, caf::error err) {
    if (err)
      error_at_.emplace(offset, std::move(err));
    else
      error_at_.reset();
  }

  /// Returns the final length, if an answer told it.
  std::optional<std::uint64_t> end_offset() const noexcept {
    return end_at_;
  }

  /// Moves to `pos`, keeping held bytes that are still ahead.
  void seek(std::uint64_t pos) {
    if (pos >= pos_ && pos - pos_ < held_size_) {
      drop(static_cast<std::size_t>(pos - pos_));
      return;
    }
    held_.clear();
    held_size_ = 0;
    pos_ = pos;
  }

  /// Takes the bytes of an answer to a request made at the position.
  void absorb(slice_result& res) {
    // An end right after returned bytes gives the final length; an end
    // without bytes only says "the stream ended at or before this offset".
    if (res.end && res.size > 0)
      end_at_ = res.offset + res.size;
    else if (res.end && (!empty_from_ || res.offset < *empty_from_))
      empty_from_ = res.offset;
    if (res.error)
      error_at_.emplace(res.offset + res.size, res.error);
    if (res.offset != pos_ + held_size_ || res.size == 0)
      return;
    for (auto& s : res.slices)
      held_.push_back(std::move(s));
    held_size_ += res.size;
  }

  /// Copies up to `n` held bytes into `buf` and moves on; returns the count.
  std::size_t copy_to(std::byte* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n && !held_.empty()) {
      auto& s = held_.front();
      auto k = std::min(n - done, s.size());
      std::memcpy(buf + done, s.data(), k);
      done += k;
      consume_front(k);
    }
    return done;
  }

  /// Moves up to `n` held bytes into `out` as slices; returns the count.
  std::size_t take(std::size_t n, std::vector<slice>& out) {
    std::size_t done = 0;
    while (done < n && !held_.empty()) {
      auto& s = held_.front();
      auto k = std::min(n - done, s.size());
      out.push_back(s.subslice(0, k));
      done += k;
      consume_front(k);
    }
    return done;
  }

  /// Drops everything held (the position stays).
  void clear() noexcept {
    held_.clear();
    held_size_ = 0;
  }

private:
  void consume_front(std::size_t k) {
    auto& s = held_.front();
    if (k == s.size())
      held_.pop_front();
    else
      s.remove_prefix(k);
    held_size_ -= k;
    pos_ += k;
  }

  void drop(std::size_t n) {
    while (n > 0) {
      auto k = std::min(n, held_.front().size());
      consume_front(k);
      n -= k;
    }
  }

  std::uint64_t pos_ = 0;
  std::deque<slice> held_;
  std::uint64_t held_size_ = 0;
  std::optional<std::uint64_t> end_at_;
  std::optional<std::uint64_t> empty_from_;
  std::optional<std::pair<std::uint64_t, caf::error>> error_at_;
};

} // namespace asyncstream::detail
