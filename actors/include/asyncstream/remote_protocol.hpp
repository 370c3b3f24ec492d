// remote_protocol: the messages between nodes (CAF's middleman) when a
// stream is read on another node. See docs/scale-out.md.
//
// Contract:
// - Only these types cross a process boundary; the local protocol
//   (protocol.hpp) stays local and zero-copy. Both sides register them under
//   the same names (`remote::configure`).
// - Bytes travel as bytes: a `wire_bytes` is saved by writing each slice's
//   bytes (one copy into the middleman's buffer, which the network makes
//   anyway) and loaded into pooled chunks (one copy out of the receive
//   buffer). A peer cannot make the loader allocate more than the bytes it
//   sent, nor more than `max_wire_bytes` in one message.
// - Versioning: an `open_request` carries `protocol_version`; a node answers
//   a version it does not speak with `protocol_error` naming both versions.
//   Within a version, messages only grow by new message types.
// - Flow: the client opens a reader through the node's directory, which
//   spawns a session on the node (the reader's owner there). The session
//   reads the stream ordinarily (so the tether is the session's position)
//   and pushes `remote_chunk`s to the client while its position is below
//   the client's allowance (`allow_atom`: an absolute offset, a byte credit
//   of one window). The client moves the allowance as its user consumes,
//   repositions with `seek_atom` (a new generation: chunks of older ones are
//   dropped), and sends positional reads (`read_atom`) that the session
//   answers one by one without moving its position.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/atom.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/serializer.hpp>
#include <caf/typed_actor.hpp>

#include "asyncstream/protocol.hpp"
#include "asyncstream/slice.hpp"
#include "asyncstream/stream.hpp"

namespace asyncstream::remote {

/// The version of this protocol; bumped for incompatible changes.
constexpr std::uint32_t protocol_version = 1;

/// `a + b`, or the largest offset where that would overflow (allowances
/// at the top of the offset range must not wrap to small ones).
constexpr std::uint64_t add_offsets(std::uint64_t a, std::uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/// The most bytes one `wire_bytes` may carry (a loader refuses more).
constexpr std::uint64_t max_wire_bytes = 16u << 20;

/// Stream bytes on the wire (see the contract above).
struct wire_bytes {
  std::vector<slice> slices;
  std::uint64_t size = 0;
};

/// Writes the bytes of `x` (a `size`, then the raw bytes).
caf::error save_wire_bytes(caf::serializer& sink, const wire_bytes& x);

/// Reads bytes written by `save_wire_bytes` into pooled chunks.
caf::error load_wire_bytes(caf::deserializer& source, wire_bytes& x);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wire_bytes& x) {
  if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    return save_wire_bytes(f, x);
  } else if constexpr (std::is_base_of<caf::deserializer, Inspector>::value) {
    return load_wire_bytes(f, x);
  } else {
    // Printing: the length, not the bytes.
    return f(caf::meta::type_name("wire_bytes"), x.size);
  }
}

/// An error on the wire: its code and category, its text and, for a
/// `data_loss`, its range. Not a `caf::error`: CAF 0.17 loads an error's
/// context as a generic message, whose loaders allocate what a peer
/// announces (our fuzzer made it ask for 4 GiB); these fields are bounded
/// by the bytes that arrived.
struct wire_error {
  std::uint8_t code = 0;
  std::uint64_t category = 0;
  std::string text;
  bool has_range = false;
  std::uint64_t offset = 0;
  std::uint64_t oldest = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wire_error& x) {
  return f(caf::meta::type_name("wire_error"), x.code, x.category, x.text,
           x.has_range, x.offset, x.oldest);
}

/// The longest error text put on the wire (longer ones are cut).
constexpr std::size_t max_error_text = 4096;

/// Converts between `caf::error` and its wire form (none: code 0).
wire_error to_wire(const caf::error& err);
caf::error from_wire(const wire_error& err);

/// What is known about the stream on its node (the `stream_status` fields
/// a reader needs), sent with every chunk and as the answer to queries.
struct remote_status {
  std::uint64_t size = 0;
  std::uint64_t oldest = 0;
  bool final = false;
  wire_error error;
  bool has_declared_length = false;
  std::uint64_t declared_length = 0;
  std::uint64_t parked = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_status& x) {
  return f(caf::meta::type_name("remote_status"), x.size, x.oldest, x.final,
           x.error, x.has_declared_length, x.declared_length, x.parked);
}

/// Converts between the wire form and the local ones.
remote_status to_wire(const stream_status& st);
remote_status to_wire(const stream_stats& st);
stream_status from_wire(const remote_status& st);

/// The shape of a stream, fixed when it was made: what a client needs to
/// behave like a local reader of it.
struct stream_shape {
  /// The retention window in bytes, 0 without one.
  std::uint64_t retention = 0;
  /// Whether the retention window is tethered (readers hold producers).
  bool tethered = false;
  /// The stream's cap of concurrent readers.
  std::uint64_t max_readers = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_shape& x) {
  return f(caf::meta::type_name("stream_shape"), x.retention, x.tethered,
           x.max_readers);
}

/// Client -> directory: open a reader of stream `name`.
struct open_request {
  std::uint32_t version = protocol_version;
  std::string name;
  /// Where the session starts pushing.
  std::uint64_t offset = 0;
  /// The client's window: how far past its consumption it may be pushed.
  std::uint64_t window = 0;
  /// Chosen by the client, to withdraw an open that waits (`cancel_atom`).
  std::uint64_t token = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open_request& x) {
  return f(caf::meta::type_name("open_request"), x.version, x.name, x.offset,
           x.window, x.token);
}

/// Session -> client: bytes at `offset` of generation `generation` (a
/// pushed chunk), or the answer to a positional read (generation 0).
struct remote_chunk {
  std::uint64_t generation = 0;
  std::uint64_t offset = 0;
  wire_bytes bytes;
  /// The stream ends right after these bytes.
  bool end = false;
  /// The stream (or the read) fails right after these bytes.
  wire_error error;
  /// The stream's state on its node when the chunk left.
  remote_status status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_chunk& x) {
  return f(caf::meta::type_name("remote_chunk"), x.generation, x.offset,
           x.bytes, x.end, x.error, x.status);
}

// -- atoms
// ----------------------------------------------------------------------

using allow_atom = caf::atom_constant<caf::atom("as_allow")>;
using seek_atom = caf::atom_constant<caf::atom("as_seek")>;
using read_atom = caf::atom_constant<caf::atom("as_read")>;
using list_atom = caf::atom_constant<caf::atom("as_list")>;

// -- actor interfaces
// -------------------------------------------------------------

/// A reader's session on the stream's node. Every message must come from
/// the client that opened it (others are ignored or refused).
using session_actor = caf::typed_actor<
  // Push on up to (not including) `limit` in generation `gen`.
  caf::reacts_to<allow_atom, std::uint64_t /* gen */,
                 std::uint64_t /* limit */>,
  // Start generation `gen` at `offset`, pushing up to `limit`.
  caf::reacts_to<seek_atom, std::uint64_t /* gen */, std::uint64_t /* offset */,
                 std::uint64_t /* limit */>,
  // A positional read (never moves the session's position or tether).
  caf::replies_to<read_atom, std::uint64_t /* offset */,
                  std::uint64_t /* max */>::with<remote_chunk>,
  // The client gave up waiting on its positional reads.
  caf::reacts_to<withdraw_atom>,
  // Closes the reader and ends the session.
  caf::reacts_to<close_atom>>;

/// What a directory answers to an open.
struct open_reply {
  std::uint32_t version = protocol_version;
  session_actor session;
  stream_shape shape;
  remote_status status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open_reply& x) {
  return f(caf::meta::type_name("open_reply"), x.version, x.session, x.shape,
           x.status);
}

/// The published actor of a node: its named streams.
using directory_actor = caf::typed_actor<
  // Opens a reader (waits for a slot under the stream's cap).
  caf::replies_to<open_atom, open_request>::with<open_reply>,
  // Withdraws the waiting open with this token (from the same client).
  caf::reacts_to<cancel_atom, std::uint64_t /* token */>,
  // The names of the published streams.
  caf::replies_to<list_atom>::with<std::vector<std::string>>,
  // A stream's status, now or once final.
  caf::replies_to<status_atom, std::string>::with<remote_status>,
  caf::replies_to<wait_atom, std::string>::with<remote_status>,
  // Shape and status, for an open without a reader.
  caf::replies_to<open_atom, std::string>::with<stream_shape, remote_status>>;

} // namespace asyncstream::remote
