// byte_range: the HTTP pieces of streamerd that need no network and no
// actors: stream names, `Range: bytes=...` headers (RFC 9110 section 14),
// how a requested range maps onto a stream that may still be growing, the
// Content-Range values of the answers, and query parameters.
//
// Contract: plain functions on values, no CAF, no globals: thread-safe and
// reentrant. Total on every input: any byte string (including NUL bytes and
// bytes >= 0x80) and any uint64 value give a defined result; no arithmetic
// overflows (checked by the boundary sweep in tests/streamerd_test.cpp and
// by the libFuzzer targets in tests/fuzz/). Only `content_range`,
// `unsatisfied_range` and `query_param` allocate (their result).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace streamerd {

// -- stream names -------------------------------------------------------------

/// The longest valid stream name.
constexpr std::size_t max_stream_name_length = 64;

/// Returns whether `name` is a valid stream name: 1 to 64 characters of
/// `A-Z a-z 0-9 . _ -`, not starting with a dot. Any other byte (controls,
/// space, `/`, `%`, NUL, bytes >= 0x80) makes it invalid.
bool valid_stream_name(std::string_view name) noexcept;

// -- Range requests -----------------------------------------------------------

/// One `Range: bytes=...` request, as sent (not yet checked against a size).
struct byte_range {
  enum class kind {
    /// `bytes=N-` (to the end) or `bytes=N-M` (inclusive `last`).
    from,
    /// `bytes=-K`: the last `suffix` bytes.
    suffix,
  };
  /// Which of the two forms.
  kind form = kind::from;
  /// `from`: the first byte.
  std::uint64_t first = 0;
  /// `from`: the last byte, inclusive (none: to the end). `parse_range`
  /// guarantees `*last >= first`.
  std::optional<std::uint64_t> last;
  /// `suffix`: how many bytes at the end (may be 0: `bytes=-0`).
  std::uint64_t suffix = 0;
};

/// What `parse_range` found.
enum class range_parse {
  /// No Range header: empty or only whitespace. Answer 200.
  none,
  /// One syntactically valid byte range, stored in `out`. Plan it with
  /// `plan_range`.
  ok,
  /// Not a range in bytes: another unit (`items=0-5`), a bare token, or
  /// anything that does not start with `bytes=`. RFC 9110 14.2: a server
  /// MUST ignore a unit it does not understand; answer 200 with the whole
  /// body (as nginx does).
  ignored,
  /// `bytes=` followed by something that is not a byte-range-spec (`abc`,
  /// `9-3`, `-`, nothing, signs, whitespace inside or around the `-`, a
  /// number above 2^64-1). RFC 9110 14.2 allows rejecting it: answer 416.
  malformed,
  /// `bytes=` with a comma in the range set (`0-1,5-6`, even `0-1,`) whose
  /// elements are all valid or empty. RFC 9110 14.2 allows ignoring it:
  /// answer 200 with the whole body. (A comma list with an invalid element
  /// is `malformed`.)
  multiple,
};

/// Parses the value of a Range header per RFC 9110 14.1:
/// `OWS "bytes" "=" OWS range-spec OWS` with the unit case-insensitive,
/// `range-spec = 1*DIGIT "-" [1*DIGIT] / "-" 1*DIGIT`, leading zeros
/// allowed, OWS (spaces and tabs) around the spec and around commas but
/// nowhere inside it. Numbers are read into uint64 with explicit overflow
/// checks. `out` is written only when the result is `ok`.
range_parse parse_range(std::string_view value, byte_range& out) noexcept;

/// What to send for a range on a stream of which `size` bytes exist, and
/// whether it is final (its length known).
struct range_plan {
  /// 416: nothing of the stream lies in the range (see `plan_range`).
  bool unsatisfiable = false;
  /// First byte to send.
  std::uint64_t offset = 0;
  /// Bytes to send; none: up to the end of the stream, whenever that is.
  std::optional<std::uint64_t> length;
};

/// Maps `r` onto a stream of `size` bytes so far.
///
/// Final stream (`final`, `size` is its length L), RFC 9110 14.1.2:
/// - `from`: unsatisfiable if `first >= L`; else `offset = first` and
///   `length = min(last, L-1) - first + 1` (`L - first` without `last`).
/// - `suffix` K: unsatisfiable if `K == 0` (`bytes=-0`) or `L == 0`; else
///   `n = min(K, L)`, `offset = L - n`, `length = n`.
/// A satisfiable plan always has `1 <= length <= L - offset`.
///
/// Live stream (`!final`): the caller plans a `from` range once byte
/// `first` exists or while it waits for it: `offset = first`, `length =
/// last - first + 1` when `last` is given and that fits in uint64 (`bytes=0-
/// 18446744073709551615` does not: none), none for `bytes=N-`. `size` is
/// not consulted. A suffix range is planned exactly as on a final stream of
/// length `size` (the bytes that exist now): callers wait for the end
/// before they plan one.
///
/// Not produced by `parse_range`, but defined: a `from` range with `last <
/// first` is unsatisfiable, final or not.
range_plan plan_range(const byte_range& r, std::uint64_t size,
                      bool final) noexcept;

/// The value of a 206's Content-Range header: `bytes F-L/T` with `L = F +
/// length - 1` (saturated at 2^64-1, never overflowing) and `T` the total,
/// `*` when unknown (RFC 9110 14.4 allows `bytes F-L/*`).
///
/// When the end of the range is not known (`length` none, a live `bytes=N-`)
/// or `length` is 0, the last position is `*`: `bytes F-*/*`. This is a
/// deviation from RFC 9110, whose incl-range requires a last position; a
/// live stream has none to give yet. curl and browsers accept it.
std::string content_range(std::uint64_t offset,
                          std::optional<std::uint64_t> length,
                          std::optional<std::uint64_t> total);

/// The value of a 416's Content-Range header: `bytes */TOTAL`.
std::string unsatisfied_range(std::uint64_t total);

// -- query parameters ---------------------------------------------------------

/// Parses a non-negative decimal query value (`?wait=5`): one or more ASCII
/// digits and nothing else (no sign, no space). False on garbage or a value
/// above 2^64-1; `out` is written only on success.
bool parse_seconds(std::string_view text, std::uint64_t& out) noexcept;

/// Returns the value of query parameter `key` in `target` (`/a?b=c&d=e`):
/// the text after the first `?`, split at `&`, the first item whose name
/// (up to its first `=`) equals `key` exactly. An item without `=` has the
/// empty value. No percent-decoding. None if absent; an empty query (or
/// the empty rest after a last `&`) has no items.
std::optional<std::string> query_param(std::string_view target,
                                       std::string_view key);

} // namespace streamerd
