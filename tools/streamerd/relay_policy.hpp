// relay_policy: the decisions of a relay (relay.hpp) from values alone: what
// an upstream's response head means, what the end of its body means, when
// to retry and how long to wait, and the range of a resumed request.
//
// The wire signal (docs/relays.md, "The failure signal"): every stream
// response of streamerd carries `X-Stream-State: live|ended|failed`; a
// failed stream's responses (206/200 heads, and the 500 of a range at or
// past the failure) also carry `X-Stream-Failed-At: N` (its bytes before the
// error) and `X-Stream-Error: TEXT`. A resumed request asks for
// `bytes=(N-1)-`, one byte the relay has already: the head then comes at
// once (a live range waits for its first byte), and that byte is checked.
//
// Contract: pure, unit-tested in tests/streamerd_relay_test.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace streamerd {

/// How hard a relay tries (`--relay-retries`, `--relay-backoff-ms`,
/// `--relay-backoff-max-ms`, `--relay-idle-timeout`).
struct relay_limits {
  /// Consecutive attempts without a usable response head before the relay
  /// gives up and fails its stream.
  unsigned retries = 10;
  /// The wait before the first retry; doubled for each next failed
  /// attempt, up to `backoff_max`.
  std::chrono::milliseconds backoff{100};
  std::chrono::milliseconds backoff_max{5000};
  /// Time to connect and get a head, and the longest time without a byte
  /// from the upstream before the connection counts as broken.
  std::chrono::milliseconds idle_timeout{30000};
};

/// The fields of an upstream response head a relay looks at.
struct upstream_head {
  unsigned status = 0;
  std::optional<std::string> state;          // X-Stream-State
  std::optional<std::string> failed_at;      // X-Stream-Failed-At
  std::optional<std::string> error;          // X-Stream-Error
  std::optional<std::string> content_range;  // Content-Range
  std::optional<std::string> content_length; // Content-Length
};

/// What to do after a head, or at the end of a body.
enum class relay_step {
  /// Read the body (after a head only).
  body,
  /// The upstream stream ended here: close the local stream.
  end,
  /// The upstream stream failed (or cannot continue): fail the local one.
  fail,
  /// The connection is no good: try again after the backoff.
  retry,
};

const char* to_string(relay_step x) noexcept;

/// The verdict on a response head.
struct head_verdict {
  relay_step step = relay_step::retry;
  /// Why (for `end`, `fail` and `retry`; logged).
  std::string reason;
  /// Body bytes to drop before the first new byte (the overlap byte of a
  /// resumed request).
  std::uint64_t skip = 0;
  /// The upstream stream's length, when the head says it.
  std::optional<std::uint64_t> total;
  /// The upstream failed after this many bytes (`X-Stream-Failed-At`).
  std::optional<std::uint64_t> failed_at;
};

/// Judges the head of the answer to a request for bytes from `asked_from`
/// (0: no Range header) when `have` bytes are relayed already.
head_verdict judge_head(const upstream_head& h, std::uint64_t asked_from,
                        std::uint64_t have);

/// Judges the end of a body the relay was reading after `accepted`:
/// `complete` if the response ended as its framing says (the final chunk,
/// or Content-Length bytes), else it broke off (reset, truncated,
/// timeout). `have` is the bytes relayed by then.
head_verdict judge_end(bool complete, const head_verdict& accepted,
                       std::uint64_t have);

/// The offset a request should start at when `have` bytes are relayed:
/// 0, or `have - 1` (one byte of overlap).
std::uint64_t resume_offset(std::uint64_t have) noexcept;

/// The wait before the next attempt after `failures` consecutive failed
/// attempts (`backoff * 2^(failures-1)`, at most `backoff_max`; `backoff`
/// for 0).
std::chrono::milliseconds backoff_delay(unsigned failures,
                                        const relay_limits& lim) noexcept;

/// Whether `failures` consecutive failed attempts reach the bound.
bool gives_up(unsigned failures, const relay_limits& lim) noexcept;

/// Parses `bytes F-L/T`, `bytes F-*/*`, `bytes F-L/*` or `bytes */T` (as
/// streamerd sends them): `first` none for `*/T`, `total` none for `/*`.
/// False on anything else.
bool parse_content_range(std::string_view value,
                         std::optional<std::uint64_t>& first,
                         std::optional<std::uint64_t>& total) noexcept;

/// Finds the byte count of stream `name` in a streamerd's /status.json
/// text (its `"bytes"` field); none if the stream is not listed.
std::optional<std::uint64_t> stream_bytes_in_status(std::string_view json,
                                                    std::string_view name);

} // namespace streamerd
