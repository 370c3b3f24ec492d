// The readers-monitor actor: caps how many readers are open at once.
//
// Contract:
// - `open(id)` is answered with `id` once a slot is free; while `max_readers`
//   are open it waits, first come first served. `close(id)` frees the slot of
//   an open reader, or withdraws a waiting open (a client that gave up
//   waiting must send it, or the open would take the next free slot).
// - `wait_zero` is answered once no reader is open.
// - `refuse(err)` answers every waiting open and every later open with
//   `err` (graceful close and abort); readers already open stay open.
// - `open(id, owner)` makes actor `owner` the reader's owner: the monitor
//   watches it (once per owner, while it has open or waiting readers) and,
//   when it terminates for any reason, closes each of its readers: an open
//   one's slot is freed and the transfer actor (if given) is told
//   `cancel_atom, id`, which answers its parked requests with `closed` and
//   releases its tether; a waiting open is dropped (answered with `closed`)
//   and never takes a slot. `open(id)` has no owner actor: the reader's
//   handle closes it.
// - `shutdown` answers everything still waiting with `stream_gone`.
// - With `counters`, the numbers of open readers and of waiting opens are
//   published there whenever they change (for `stream::stats()`), before
//   the open that changed them is answered.
#pragma once

#include <cstddef>
#include <memory>

#include <caf/fwd.hpp>

#include "asyncstream/protocol.hpp"

namespace asyncstream {

namespace detail {
struct stream_counters;
} // namespace detail

/// Spawns a readers-monitor actor with a cap of `max_readers` (at least 1)
/// that publishes its counts to `counters` (may be null) and tells
/// `transfer` (may be invalid) when an owner's death closed a reader.
monitor_actor
spawn_readers_monitor(caf::actor_system& sys, std::size_t max_readers,
                      std::shared_ptr<detail::stream_counters> counters
                      = nullptr,
                      transfer_actor transfer = {});

} // namespace asyncstream
