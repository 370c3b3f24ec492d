#include "asyncstream/transfer_actor.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <system_error>

#include <caf/actor_cast.hpp>
#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "asyncstream/body_index.hpp"
#include "asyncstream/detail/wake_trace.hpp"
#include "asyncstream/detail/exhaustion.hpp"
#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/file_store.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/pending_index.hpp"

namespace asyncstream {

namespace {

using slice_promise = caf::typed_response_promise<slice_result>;
using status_promise = caf::typed_response_promise<stream_status>;

struct transfer_state {
  /// The published bytes held in memory: all of them, or with a stream file
  /// the newest `memory_cache` bytes.
  body_index body;
  /// The stream file, if file-backed: every published byte is in it.
  std::shared_ptr<file_store> file;
  std::uint64_t memory_cache = 0;
  /// The oldest byte readers may still ask for (a retention window moves it).
  std::uint64_t kept = 0;
  pending_index<slice_promise> pending;
  std::vector<status_promise> waiters;
  stream_options options;
  std::shared_ptr<detail::source_control> control;
  /// The body never grows past this offset (capacity or declared length).
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  bool final = false;
  caf::error final_error;
  bool aborted = false;
  /// Tethered window: the offset each reader asked for last, and the same
  /// offsets ordered (the smallest holds the window back).
  std::unordered_map<std::uint64_t, std::multiset<std::uint64_t>::iterator>
    reader_pos;
  std::multiset<std::uint64_t> positions;
  /// Readers closed lately (`cancel_atom`), oldest first: a request or a
  /// tether that raced with the close must not tether them again. Bounded:
  /// such a race spans a few messages, not thousands of closes.
  std::deque<std::uint64_t> closed_order;
  std::unordered_set<std::uint64_t> closed_readers;
  static constexpr std::size_t max_closed_remembered = 256;
  /// Maximum lag (tethered): readers cut loose for good (untethered until
  /// they close), and the hold being timed: while the window is full, the
  /// slowest tether `lag_pos` holds the producer; `lag_gen` names the timer
  /// of the current hold (a new hold or a moved tether starts a new one).
  std::unordered_set<std::uint64_t> cut_loose;
  bool lag_armed = false;
  std::uint64_t lag_pos = 0;
  std::uint64_t lag_gen = 0;
  /// Sends `lag_atom, gen` to the actor after `max_lag` (set by the host).
  std::function<void(std::uint64_t)> start_lag_timer;
  /// Demand-driven reading: one past the furthest byte any reader asked for,
  /// and whether the limit was lifted.
  std::uint64_t furthest = 0;
  bool released = false;
  /// Where `stream::stats()` reads from (may be null), and what was
  /// published there last (so that a message stores only what changed).
  std::shared_ptr<detail::stream_counters> counters;
  std::uint64_t published_size = 0;
  std::uint64_t published_oldest = 0;
  std::uint64_t published_parked = 0;

  /// Builds the answer for a request; `ready` tells whether it may be sent
  /// now (bytes, a final status, or a zero-length request).
  slice_result answer(std::uint64_t offset, std::uint64_t max_size,
                      bool& ready) const {
    slice_result res;
    res.offset = offset;
    ready = true;
    if (aborted) {
      res.error = make_error(errc::canceled, "read canceled");
      return res;
    }
    if (offset < kept) {
      res.error = make_data_loss(offset, kept);
      return res;
    }
    if (max_size == 0) {
      // Never waits; at or past the final offset it tells what a read there
      // would get: the pending error, or the end.
      if (final && offset >= body.size()) {
        if (final_error)
          res.error = final_error;
        else
          res.end = true;
      }
      return res;
    }
    auto want = static_cast<std::size_t>(
      std::min<std::uint64_t>(max_size, std::numeric_limits<std::size_t>::max()));
    if (file && offset < body.begin()) {
      // Older than the memory cache: slices of the stream file's mappings.
      auto n = static_cast<std::size_t>(
        std::min<std::uint64_t>(want, body.begin() - offset));
      std::error_code ec;
      res.size = file->collect(offset, n, res.slices, ec);
      if (ec) {
        res.error = make_error(errc::io_error,
                               "mapping the stream file: " + ec.message());
        return res;
      }
      offset += res.size;
      want -= static_cast<std::size_t>(res.size);
    }
    res.size += body.collect(offset, want, res.slices);
    if (final && res.offset + res.size >= body.size()) {
      if (final_error)
        res.error = final_error;
      else
        res.end = true;
    } else if (res.size == 0) {
      ready = false;
    }
    return res;
  }

  stream_status status() const {
    stream_status st;
    st.size = body.size();
    st.oldest = kept;
    st.final = final;
    st.error = final_error;
    st.declared_length = options.declared_length;
    st.parked = pending.size();
    return st;
  }

  void stop_source() {
    if (control)
      control->stop();
  }

  /// Publishes the counters that changed since the last call: one relaxed
  /// store each, none for a reader (the hot path of a batch of bytes is one
  /// store of the size).
  void publish() {
    check_lag();
    if (!counters)
      return;
    auto size = body.size();
    if (size != published_size) {
      published_size = size;
      counters->size.store(size, std::memory_order_relaxed);
    }
    if (kept != published_oldest) {
      published_oldest = kept;
      counters->oldest.store(kept, std::memory_order_relaxed);
    }
    auto parked = static_cast<std::uint64_t>(pending.size());
    if (parked != published_parked) {
      published_parked = parked;
      counters->parked.store(parked, std::memory_order_relaxed);
    }
    if (final)
      counters->publish_final(final_error); // once; after the size
  }

  /// Maximum lag: starts timing a hold of the producer when the window
  /// fills (or its holder changes), stops when it empties. Called after
  /// every message that may change the body, the tethers or the end.
  void check_lag() {
    if (!options.max_lag || !tethered())
      return;
    bool held = false;
    std::uint64_t pos = 0;
    if (!final && !positions.empty()) {
      pos = *positions.begin();
      held = pos <= body.size() && body.size() - pos >= *options.retention;
    }
    if (held == lag_armed && (!held || pos == lag_pos))
      return; // the same hold goes on (or none)
    ++lag_gen;
    lag_armed = held;
    lag_pos = pos;
    if (held && start_lag_timer)
      start_lag_timer(lag_gen);
  }

  /// Maximum lag: the timer `gen` ran out. If its hold lasted all along,
  /// the readers at the slowest tether are cut loose: untethered for good.
  void on_lag(std::uint64_t gen) {
    if (gen != lag_gen || !lag_armed)
      return;
    std::vector<std::uint64_t> stuck;
    for (auto& [id, it] : reader_pos)
      if (*it == lag_pos)
        stuck.push_back(id);
    for (auto id : stuck) {
      cut_loose.insert(id);
      auto i = reader_pos.find(id);
      positions.erase(i->second);
      reader_pos.erase(i);
    }
    lag_armed = false;
    ++lag_gen;
    trim();
    update_credit();
    check_lag(); // the next slowest reader may hold the producer now
  }

  /// Answers every parked request whose bytes now exist.
  void serve_ready() {
    pending.take_ready(body.size(), [this](auto&& e) {
      bool ready = false;
      ASYNCSTREAM_WAKE_MARK(answered);
      e.payload.deliver(answer(e.offset, e.max_size, ready));
    });
  }

  /// Enters the final state and answers everything that waits for it.
  void finalize(caf::error err) {
    if (final)
      return;
    final = true;
    final_error = std::move(err);
    stop_source();
    // stats() says final before anybody learns it from an answer, so that
    // whoever acts on an answer (a daemon replying to its uploader) finds
    // the counters final too.
    publish();
    pending.take_all([this](auto&& e) {
      bool ready = false;
      e.payload.deliver(answer(e.offset, e.max_size, ready));
    });
    auto st = status();
    for (auto& w : waiters)
      w.deliver(st);
    waiters.clear();
  }

  void append(slice s) {
    if (final || s.empty())
      return;
    auto room = limit - body.size();
    if (s.size() > room) {
      body.append(s.subslice(0, static_cast<std::size_t>(room)));
      trim();
      finalize(limit_error());
      return;
    }
    body.append(std::move(s));
    trim();
    if (options.declared_length && body.size() == *options.declared_length) {
      // The declared length is reached: the stream is complete, whatever
      // more the source would have produced.
      finalize(caf::error{});
      return;
    }
    serve_ready();
  }

  bool tethered() const {
    return options.retention
           && options.policy == retention_policy::tethered;
  }

  /// Drops what falls out of the retention window (never what a tethered
  /// reader still needs), and with a stream file what falls out of the
  /// memory cache.
  void trim() {
    if (options.retention && body.size() - kept > *options.retention) {
      auto cut = body.size() - *options.retention;
      if (tethered() && !positions.empty() && *positions.begin() < cut)
        cut = *positions.begin();
      kept = std::max(kept, cut);
    }
    auto cut = kept;
    if (file && body.size() > memory_cache)
      cut = std::max(cut, body.size() - memory_cache);
    body.drop_front(cut);
  }

  static std::uint64_t saturating_add(std::uint64_t x, std::uint64_t y) {
    auto max = std::numeric_limits<std::uint64_t>::max();
    return x > max - y ? max : x + y;
  }

  /// Publishes how far the producer may fill: up to the slowest reader plus
  /// the window (tethered), and up to the furthest demand plus the read-ahead
  /// (demand-driven); unlimited otherwise.
  void update_credit() {
    if (!control)
      return;
    auto credit = std::numeric_limits<std::uint64_t>::max();
    if (tethered() && !positions.empty())
      credit = std::min(credit, saturating_add(*positions.begin(),
                                               *options.retention));
    if (options.read_ahead && !released)
      credit = std::min(credit, saturating_add(furthest, *options.read_ahead));
    control->allow(credit);
  }

  /// Demand-driven: records that a reader asked for [offset, offset + n).
  void demand(std::uint64_t offset, std::uint64_t n) {
    if (!options.read_ahead || released)
      return;
    auto end = saturating_add(offset, n);
    if (end <= furthest)
      return;
    furthest = end;
    update_credit();
  }

  /// Demand-driven: lets the source read to the end.
  void release() {
    if (released)
      return;
    released = true;
    update_credit();
  }

  /// Tethered: records that `reader` asked for `offset`. An offset below
  /// the oldest kept byte counts as that byte: those bytes are gone (the
  /// reader gets `data_loss`) and must not hold the producer back.
  void track(std::uint64_t reader, std::uint64_t offset) {
    if (!tethered() || cut_loose.count(reader) != 0)
      return;
    offset = std::max(offset, kept);
    auto i = reader_pos.find(reader);
    if (i != reader_pos.end()) {
      if (*i->second == offset)
        return;
      positions.erase(i->second);
      i->second = positions.insert(offset);
    } else {
      reader_pos.emplace(reader, positions.insert(offset));
    }
    trim();
    update_credit();
  }

  /// Tethered: registers `reader`'s tether at `max(offset, kept)` (or moves
  /// it there) and returns that position; returns `offset` untouched on a
  /// stream without a tethered window.
  std::uint64_t tether(std::uint64_t reader, std::uint64_t offset) {
    if (!tethered() || cut_loose.count(reader) != 0)
      return offset;
    track(reader, offset);
    return std::max(offset, kept);
  }

  /// Returns whether `reader` was closed lately.
  bool closed_reader(std::uint64_t reader) const {
    return closed_readers.count(reader) != 0;
  }

  /// Remembers that `reader` is closed (bounded, oldest forgotten first).
  void remember_closed(std::uint64_t reader) {
    if (!closed_readers.insert(reader).second)
      return;
    closed_order.push_back(reader);
    if (closed_order.size() > max_closed_remembered) {
      closed_readers.erase(closed_order.front());
      closed_order.pop_front();
    }
  }

  /// Tethered: `reader` no longer holds the window back.
  void untrack(std::uint64_t reader) {
    cut_loose.erase(reader);
    auto i = reader_pos.find(reader);
    if (i == reader_pos.end())
      return;
    positions.erase(i->second);
    reader_pos.erase(i);
    trim();
    update_credit();
  }

  /// The error for bytes past `limit`.
  caf::error limit_error() const {
    if (options.declared_length && limit == *options.declared_length)
      return caf::error{}; // cut at the declared length
    return make_error(errc::buffer_full,
                      "capacity " + std::to_string(limit) + " bytes");
  }

  void on_source_end(caf::error err) {
    if (final)
      return;
    if (!err && options.declared_length
        && body.size() < *options.declared_length)
      err = make_error(errc::unexpected_end,
                       "got " + std::to_string(body.size()) + " of "
                         + std::to_string(*options.declared_length)
                         + " declared bytes");
    finalize(std::move(err));
  }

  void abort() {
    if (aborted)
      return;
    aborted = true;
    if (!final) {
      final = true;
      final_error = make_error(errc::canceled);
    }
    stop_source();
    pending.take_all([](auto&& e) {
      slice_result res;
      res.offset = e.offset;
      res.error = make_error(errc::canceled, "read canceled");
      e.payload.deliver(std::move(res));
    });
    auto st = status();
    for (auto& w : waiters)
      w.deliver(st);
    waiters.clear();
  }

  void fail_reader(std::uint64_t reader, const caf::error& err) {
    pending.take_reader(reader, [&](auto&& e) {
      slice_result res;
      res.offset = e.offset;
      res.error = err;
      e.payload.deliver(std::move(res));
    });
  }

  void shutdown() {
    stop_source();
    auto gone = make_error(errc::stream_gone);
    pending.take_all([&](auto&& e) {
      slice_result res;
      res.offset = e.offset;
      res.error = gone;
      e.payload.deliver(std::move(res));
    });
    auto st = status();
    if (!st.final) {
      st.final = true;
      st.error = gone;
    }
    for (auto& w : waiters)
      w.deliver(st);
    waiters.clear();
  }
};

/// Builds the state the actor starts with, in the spawning thread: what is
/// known then (a complete body, a re-opened file) is published before the
/// stream handle exists.
std::shared_ptr<transfer_state> make_state(transfer_config cfg) {
  auto ptr = std::make_shared<transfer_state>();
  auto& st = *ptr;
  st.options = cfg.options;
  st.control = std::move(cfg.control);
  st.file = std::move(cfg.file);
  st.counters = std::move(cfg.counters);
  if (st.options.file)
    st.memory_cache = st.options.file->memory_cache;
  if (st.options.capacity)
    st.limit = *st.options.capacity;
  if (st.options.declared_length && *st.options.declared_length < st.limit)
    st.limit = *st.options.declared_length;
  if (st.file && st.file->read_only()) {
    // A stream file re-opened: complete, every byte in the file.
    st.body.skip(st.file->size());
    st.on_source_end(caf::error{});
  } else if (cfg.complete_body) {
    st.append(std::move(*cfg.complete_body));
    st.on_source_end(caf::error{});
  } else if (st.options.declared_length && *st.options.declared_length == 0) {
    st.finalize(caf::error{});
  }
  st.update_credit(); // the initial read-ahead, if any
  st.publish();
  return ptr;
}

/// The handlers, for either host: `Self` is the typed actor on the
/// scheduler or the companion on a thread of its own.
template <class Self>
transfer_actor::behavior_type transfer_behavior(Self* self,
                                                std::shared_ptr<transfer_state>
                                                  ptr) {
  auto* sp = ptr.get();
  if (sp->options.max_lag && sp->tethered()) {
    auto hdl = caf::actor_cast<transfer_actor>(self);
    auto lag = *sp->options.max_lag;
    // Weak: the state must not keep its own actor alive.
    sp->start_lag_timer = [weak = caf::actor_cast<caf::weak_actor_ptr>(hdl),
                           lag](std::uint64_t gen) {
      if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(weak))
        caf::delayed_anon_send(caf::actor_cast<transfer_actor>(strong), lag,
                               lag_atom::value, gen);
    };
    sp->lag_armed = false;
    sp->check_lag(); // a hold that began before the actor ran
  }
  return {
    [self, sp, ptr](const slice_request& req) -> caf::result<slice_result> {
      auto& st = *sp;
      // Only a reader's ordinary reads move (or, without `tether_atom`,
      // register) its tether: not a positional request, not a zero-length
      // one, and never for a reader that was closed.
      if (st.closed_reader(req.reader)) {
        // A request that raced with its reader's close: never parked.
        slice_result res;
        res.offset = req.offset;
        res.error = make_error(errc::closed, "reader closed");
        return res;
      }
      if (!req.positional && req.max_size > 0)
        st.track(req.reader, req.offset);
      st.demand(req.offset, req.max_size);
      bool ready = false;
      auto res = st.answer(req.offset, req.max_size, ready);
      if (ready) {
        st.publish(); // a tethered window may have moved
        ASYNCSTREAM_WAKE_MARK(answered);
        return res;
      }
      auto rp = self->template make_response_promise<slice_result>();
      st.pending.add(req.reader, req.offset, req.max_size, rp);
      st.publish();
      return rp;
    },
    [sp](next_slice& x) {
      ASYNCSTREAM_WAKE_MARK(handler);
      sp->append(std::move(x.bytes));
      sp->publish();
    },
    [sp](source_end& x) {
      sp->on_source_end(std::move(x.error));
      sp->publish();
    },
    [sp](status_atom) -> stream_status { return sp->status(); },
    [self, sp](wait_atom) -> caf::result<stream_status> {
      auto& st = *sp;
      st.release(); // waiting for the end needs the whole source
      if (st.final)
        return st.status();
      auto rp = self->template make_response_promise<stream_status>();
      st.waiters.push_back(rp);
      return rp;
    },
    [sp](cancel_atom, std::uint64_t reader) {
      sp->remember_closed(reader);
      sp->fail_reader(reader, make_error(errc::closed));
      sp->untrack(reader);
      sp->publish();
    },
    [sp](withdraw_atom, std::uint64_t reader) {
      sp->fail_reader(reader, make_error(errc::timeout));
      sp->publish();
    },
    [sp](tether_atom, std::uint64_t reader,
         std::uint64_t offset) -> caf::result<std::uint64_t> {
      if (sp->closed_reader(reader))
        return make_error(errc::closed, "reader closed");
      auto pos = sp->tether(reader, offset);
      sp->publish(); // the window may have moved
      return pos;
    },
    [sp](release_atom) { sp->release(); },
    [sp](lag_atom, std::uint64_t gen) {
      sp->on_lag(gen);
      sp->publish();
    },
    [sp](abort_atom) {
      sp->abort();
      sp->publish();
    },
    [sp](close_atom) {
      sp->stop_source();
      sp->finalize(make_error(errc::closed, "stream closed before its end"));
      sp->publish();
    },
    [self, sp](shutdown_atom) {
      sp->shutdown();
      sp->publish();
      self->quit();
    },
  };
}

/// `next_slice` without a message, for a producer that holds the actor's
/// token (detail/transfer_send.hpp).
class direct_entry : public detail::transfer_direct {
public:
  explicit direct_entry(std::shared_ptr<transfer_state> st)
    : st_(std::move(st)) {
    // nop
  }

  void append_slice(slice s) override {
    ASYNCSTREAM_WAKE_MARK(handler);
    st_->append(std::move(s));
    st_->publish();
  }

private:
  std::shared_ptr<transfer_state> st_;
};

} // namespace

caf::expected<transfer_actor>
try_spawn_transfer(caf::actor_system& sys, transfer_config cfg,
                   std::shared_ptr<detail::own_thread_inbox>* inbox,
                   std::shared_ptr<detail::transfer_direct>* direct) {
  try {
    auto state = make_state(std::move(cfg));
    // Hidden: `~actor_system()` does not wait for it; a stream that
    // outlives its system is shut down by the system watch (stream.cpp).
    if (!state->options.transfer_thread)
      return sys.spawn<caf::hidden>([state](transfer_actor::pointer self) {
        return transfer_behavior(self, state);
      });
    auto direct_state = state;
    auto hdl = detail::spawn_on_own_thread(
      sys, "as.transfer", [state](caf::actor_companion* self) mutable {
        auto bhvr = transfer_behavior(self, std::move(state));
        return std::move(bhvr.unbox());
      },
      inbox);
    if (!hdl)
      return std::move(hdl.error());
    if (direct)
      *direct = std::make_shared<direct_entry>(std::move(direct_state));
    return caf::actor_cast<transfer_actor>(std::move(*hdl));
  } catch (...) {
    return detail::exhaustion_from("transfer actor", std::current_exception());
  }
}

transfer_actor spawn_transfer(caf::actor_system& sys, transfer_config cfg) {
  auto hdl = try_spawn_transfer(sys, std::move(cfg));
  if (!hdl)
    throw std::system_error{
      std::make_error_code(std::errc::resource_unavailable_try_again),
      render(hdl.error())};
  return std::move(*hdl);
}

} // namespace asyncstream
