// byte_range: the HTTP pieces of streamerd that need no network and no
// actors: stream names, `Range: bytes=...` headers, and how a requested
// range maps onto a stream that may still be growing.
//
// Contract: plain functions on values; thread-safe; unit-tested in
// tests/streamerd_test.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace streamerd {

/// Returns whether `name` is a valid stream name: 1 to 64 characters of
/// `A-Z a-z 0-9 . _ -`, not starting with a dot.
bool valid_stream_name(std::string_view name) noexcept;

/// One `Range: bytes=...` request, as sent (not yet checked against a size).
struct byte_range {
  enum class kind {
    /// `bytes=N-` (to the end) or `bytes=N-M` (inclusive `last`).
    from,
    /// `bytes=-K`: the last `suffix` bytes.
    suffix,
  };
  kind form = kind::from;
  std::uint64_t first = 0;
  std::optional<std::uint64_t> last;
  std::uint64_t suffix = 0;
};

/// What `parse_range` found.
enum class range_parse { none, ok, malformed, multiple };

/// Parses the value of a Range header (empty: `none`). Only a single range
/// in bytes is supported; several ranges give `multiple`.
range_parse parse_range(std::string_view value, byte_range& out) noexcept;

/// What to send for a range on a stream of which `size` bytes exist, and
/// whether it is final (its length known).
struct range_plan {
  /// 416: the range starts at or past the end of a final stream (or a
  /// suffix of 0 bytes).
  bool unsatisfiable = false;
  /// First byte to send.
  std::uint64_t offset = 0;
  /// Bytes to send; none: up to the end of the stream, whenever that is.
  std::optional<std::uint64_t> length;
};

/// Maps `r` onto the stream. A suffix range needs a final stream (callers
/// wait for the end first).
range_plan plan_range(const byte_range& r, std::uint64_t size,
                      bool final) noexcept;

/// The value of a 206's Content-Range header: `bytes F-L/T` with `*` for an
/// unknown total, and `bytes F-*/*` when the end of the range is unknown.
std::string content_range(std::uint64_t offset,
                          std::optional<std::uint64_t> length,
                          std::optional<std::uint64_t> total);

/// Parses a non-negative decimal query value (`?wait=5`); false on garbage.
bool parse_seconds(std::string_view text, std::uint64_t& out) noexcept;

/// Returns the value of query parameter `key` in `target` (`/a?b=c&d=e`).
std::optional<std::string> query_param(std::string_view target,
                                       std::string_view key);

} // namespace streamerd
