// asyncstream error codes.
//
// Contract: plain values, no ownership. The codes are the kernel's whole error
// vocabulary; actors/ binds them to a CAF error category (see error.hpp), so
// a `caf::error` carrying one of them renders with the message given here.
#pragma once

#include <cstdint>
#include <string>

namespace asyncstream {

/// Error codes of the kernel. The numeric values are stable: they cross
/// process boundaries inside `caf::error`.
enum class errc : std::uint8_t {
  /// Not an error.
  none = 0,
  /// A caller passed a negative offset, an unknown `whence` or similar.
  invalid_argument,
  /// The stream was aborted; every pending and later read (and write)
  /// fails with this.
  canceled,
  /// The reader (or the stream) was closed by its owner.
  closed,
  /// The stream is closing gracefully and accepts no new readers.
  closing,
  /// The source ended before the declared final length.
  unexpected_end,
  /// The source produced more than the fixed capacity.
  buffer_full,
  /// The requested bytes left the retention window.
  data_loss,
  /// Waiting for a reader slot (or another bounded wait) timed out.
  timeout,
  /// An I/O operation failed; the context names which one ("reading the
  /// source", "creating the stream file PATH", "writing the stream file at
  /// offset N", "mapping the stream file at offset N", ...) and the system
  /// error.
  io_error,
  /// The stream's actors are gone (the stream was shut down).
  stream_gone,
  /// The stream is being removed and accepts no new readers.
  removing,
  /// The process ran out of descriptors, memory or threads (the context
  /// names the resource and the system error). Nothing was taken: the call
  /// may succeed later.
  resource_exhausted,
  /// The peer of a connection broke the protocol: a malformed or unexpected
  /// message, or a sequence number that cannot be (a backed pipe's peer
  /// claiming to have read bytes that were never written). The context says
  /// what was received.
  protocol_error,
  /// The connection to the node that holds a remote stream broke (or the
  /// node went away): the reader is closed; open the stream again and
  /// seek to the position to read on. The context names the node.
  disconnected,
  /// No stream of that name (a remote open, a relay's upstream).
  not_found,
};

/// Returns a short human-readable description of `code`.
const char* describe(errc code) noexcept;

/// Returns the enumerator name of `code`, as CAF's `to_string` convention.
std::string to_string(errc code);

} // namespace asyncstream
