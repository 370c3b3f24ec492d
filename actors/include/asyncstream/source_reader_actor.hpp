// The source-reader actor: pulls a source into pooled chunks.
//
// Contract: runs on its own thread (a detached blocking actor), never on the
// scheduler. It reads into the tail of a chunk only it writes to and sends
// each filled range to the transfer actor as a `next_slice` as soon as the
// read returns; bytes that come together with end of file are kept. It ends
// with one `source_end`, unless `control` was stopped first (then it sends
// nothing more). It owns the descriptor only if the source says so. With a
// stream file, each read is appended to the file before it is published; a
// failed write ends the stream with `io_error` at that byte.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "asyncstream/options.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/source.hpp"

namespace asyncstream {

class file_store;

namespace detail {
class source_control;
} // namespace detail

/// Spawns the source-reader actor for a pulled source (fd or function).
caf::actor spawn_source_reader(caf::actor_system& sys, source src,
                               transfer_actor transfer,
                               const stream_options& opts,
                               std::shared_ptr<detail::source_control> control,
                               std::shared_ptr<file_store> file = nullptr);

} // namespace asyncstream
