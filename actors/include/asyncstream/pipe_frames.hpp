// pipe_frames: the framing a backed pipe runs on a connection after the
// handshake (pipe_handshake.hpp), and its incremental parser.
//
// Contract:
// - Every frame starts with a 13-byte header (integers big-endian): the
//   type (one byte), a value (u64) and a payload length (u32).
//   - 'D' data: value = sequence number (stream offset) of the first
//     payload byte; 1 to `max_frame_payload` payload bytes follow.
//   - 'A' acknowledgement: value = the receiver's read position (every
//     byte below it arrived and was read by its user; the sender may drop
//     them from its window and send up to this plus the receive window).
//   - 'W' receive window: value = how many bytes past its last
//     acknowledgement the receiver takes (at least 1). Each side sends
//     'W' and then 'A' first on every connection, and sends no data before
//     it has both from the peer.
//   - 'F' end of direction: value = the direction's final length; no
//     payload.
//   - 'E' end acknowledged: value = the final length the 'F' named.
//   - 'B' goodbye: value 0; the sender has finished both directions and
//     will close the connection.
// - `frame_parser` takes the bytes of a connection in pieces of any size
//   and calls its handler for each frame; a data frame's payload may come
//   in several calls (each with the sequence number of its first byte), so
//   nothing is buffered twice. A malformed frame (an unknown type, a
//   control frame with a payload, an empty or too long data frame, a 'B'
//   with a value, a 'W' of 0) is `protocol_error` naming what came; after an
//   error the parser takes nothing more.
// - The checks that need the pipe's state (a data frame at the wrong
//   sequence number, an acknowledgement of bytes never sent) are the
//   handler's: it returns an error and the parser stops there.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <caf/error.hpp>

namespace asyncstream {

/// Frame types on the wire.
enum class frame_type : std::uint8_t {
  data = 'D',
  ack = 'A',
  window = 'W',
  fin = 'F',
  fin_ack = 'E',
  bye = 'B',
};

/// Size of a frame header.
constexpr std::size_t frame_header_size = 13;

/// Largest payload of one data frame the parser accepts (1 MiB).
constexpr std::size_t max_frame_payload = 1024 * 1024;

/// Writes a header into `out`.
void write_frame_header(std::byte* out, frame_type type, std::uint64_t value,
                        std::uint32_t length);

/// What the parser calls; each returns an error to stop parsing.
class frame_handler {
public:
  virtual ~frame_handler();

  /// Payload bytes of a data frame: `n` bytes whose first has sequence
  /// number `seq` (a frame's payload may come in several calls).
  virtual caf::error
  on_data(std::uint64_t seq, const std::byte* data, std::size_t n)
    = 0;

  /// A control frame ('A', 'W', 'F', 'E', 'B') and its value.
  virtual caf::error on_control(frame_type type, std::uint64_t value) = 0;
};

/// Parses the frames of one connection; see the contract above.
class frame_parser {
public:
  /// Parses `n` bytes, calling `h`; returns the first error (the parser's
  /// or the handler's).
  caf::error feed(const std::byte* data, std::size_t n, frame_handler& h);

  /// Returns whether the parser stands between two frames.
  bool at_boundary() const noexcept {
    return header_fill_ == 0 && payload_left_ == 0;
  }

private:
  caf::error on_header(frame_handler& h);

  std::array<std::byte, frame_header_size> header_{};
  std::size_t header_fill_ = 0;
  std::uint64_t payload_seq_ = 0;
  std::size_t payload_left_ = 0;
  caf::error failed_;
};

} // namespace asyncstream
