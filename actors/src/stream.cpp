#include "asyncstream/stream.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/detail/blocking_client.hpp"
#include "asyncstream/detail/exhaustion.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"
#include "asyncstream/readers_monitor_actor.hpp"
#include "asyncstream/source_reader_actor.hpp"
#include "asyncstream/stream_writer.hpp"
#include "asyncstream/transfer_actor.hpp"

namespace asyncstream {

namespace detail {

stream_core::~stream_core() {
  if (control) {
    // After its actor system went, nothing may touch the actors: the
    // system watch has shut them down already.
    if (control->system_gone())
      return;
    control->stop();
  }
  caf::anon_send(transfer, shutdown_atom::value);
  caf::anon_send(monitor, shutdown_atom::value);
}

std::uint64_t stream_core::next_reader_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

// Defined in blocking_reader.cpp.
caf::expected<blocking_reader>
open_blocking_reader(std::shared_ptr<stream_core> core,
                     std::optional<caf::timespan> timeout, reader_options opts);

namespace {

caf::error file_error(const char* what, const std::string& path,
                      const std::error_code& ec) {
  std::string msg = what;
  msg += path.empty() ? std::string{" (unnamed temporary file)"}
                      : " " + path;
  msg += ": ";
  msg += ec.message();
  auto code = ec.category() == std::generic_category()
                  && is_exhaustion(ec.value())
                ? errc::resource_exhausted
                : errc::io_error;
  return make_error(code, std::move(msg));
}

// -- the system watch -------------------------------------------------------
//
// A stream must go before its actor system. One that outlives it would
// otherwise hang `~actor_system()` forever (its actors never end) without a
// word. So the stream's actors are hidden (the system does not wait for
// them), and each actor system that has streams is watched: a functor
// attached to its spawn server runs when `~actor_system()` shuts that
// internal actor down, which it does right after every user actor is done
// and before it stops the scheduler and waits for detached threads. Then
// every stream of that system still alive is reported (stderr, once per
// process) and shut down: its source and writer stopped, its actors told
// to answer what is parked (`stream_gone`) and quit, and its handles from
// then on fail with `stream_gone` without touching the actors.

/// The live streams of one actor system.
struct system_watch {
  std::mutex mtx;
  /// The cores registered and not destroyed yet.
  std::unordered_set<stream_core*> cores;
  /// The system's spawn server, to tell a new system at the same address.
  caf::actor_addr spawn_serv;
  bool gone = false;
};

std::mutex watches_mtx;
std::unordered_map<caf::actor_system*, std::shared_ptr<system_watch>>
  watches;
std::atomic<bool> reported_outliving{false};

/// The system went while `cores` still exist: report, then shut them down.
void on_system_gone(caf::actor_system* sys,
                    const std::shared_ptr<system_watch>& w) {
  {
    std::lock_guard<std::mutex> guard{watches_mtx};
    auto i = watches.find(sys);
    if (i != watches.end() && i->second == w)
      watches.erase(i);
  }
  std::lock_guard<std::mutex> guard{w->mtx};
  w->gone = true;
  if (w->cores.empty())
    return;
  if (!reported_outliving.exchange(true))
    std::fprintf(stderr,
                 "asyncstream: %zu stream(s) outlive their caf::actor_system; "
                 "destroy every stream, reader and writer before the "
                 "actor_system (declare them after it). Shutting them down: "
                 "their calls fail with stream_gone from now on.\n",
                 w->cores.size());
  for (auto* core : w->cores) {
    // The actors answer what is parked and quit; the scheduler still runs
    // (a transfer actor on its own thread runs there).
    core->control->set_system_gone();
    caf::anon_send(core->transfer, shutdown_atom::value);
    caf::anon_send(core->monitor, shutdown_atom::value);
  }
}

/// Returns the watch of `sys`, attaching it to the system on first use.
std::shared_ptr<system_watch> watch_of(caf::actor_system& sys) {
  auto& serv = sys.spawn_serv();
  auto addr = caf::actor_cast<caf::actor_addr>(serv);
  std::lock_guard<std::mutex> guard{watches_mtx};
  auto& w = watches[&sys];
  if (w && w->spawn_serv == addr)
    return w;
  // First stream of this system (or a new system at the address of one
  // whose shutdown was never seen).
  w = std::make_shared<system_watch>();
  w->spawn_serv = addr;
  if (auto* ptr = caf::actor_cast<caf::abstract_actor*>(serv))
    ptr->attach_functor([sys = &sys, w = std::weak_ptr<system_watch>{w}] {
      // Streams destroyed in time are not waited for: their actors may
      // still have a shutdown queued when the scheduler stops, and CAF then
      // cleans them up without `on_exit`; they hold nothing that only
      // `on_exit` releases (the monitor is not a stateful_actor for this
      // reason). Blocking this worker to wait for them stalled
      // `~actor_system()` for the whole bound whenever the scheduler's
      // other worker had already stopped.
      if (auto sw = w.lock())
        on_system_gone(sys, sw);
    });
  return w;
}

/// A new core with its shared pieces; no actor yet. It is registered with
/// its system's watch until it is destroyed.
std::shared_ptr<stream_core> make_core(caf::actor_system& sys,
                                       const stream_options& opts) {
  auto w = watch_of(sys);
  auto* raw = new stream_core;
  std::shared_ptr<stream_core> core{raw, [w](stream_core* ptr) {
                                      {
                                        std::lock_guard<std::mutex> guard{
                                          w->mtx};
                                        w->cores.erase(ptr);
                                      }
                                      delete ptr;
                                    }};
  core->sys = &sys;
  core->options = opts;
  core->control = std::make_shared<source_control>();
  core->counters = std::make_shared<stream_counters>();
  std::lock_guard<std::mutex> guard{w->mtx};
  if (w->gone)
    core->control->set_system_gone(); // made during the system's shutdown
  else
    w->cores.insert(raw);
  return core;
}

/// Spawns the transfer actor of `core`, then its monitor (which tells the
/// transfer actor when an owner's death closes a reader). On failure the
/// core's destructor shuts down what was spawned.
caf::error spawn_actors(caf::actor_system& sys, stream_core& core,
                        transfer_config cfg) {
  auto transfer = try_spawn_transfer(sys, std::move(cfg),
                                     &core.transfer_inbox,
                                     &core.transfer_entry);
  if (!transfer)
    return std::move(transfer.error());
  core.transfer = std::move(*transfer);
  core.monitor = spawn_readers_monitor(sys, core.options.max_readers,
                                       core.counters, core.transfer);
  return {};
}

caf::expected<stream> make_stream(caf::actor_system& sys, source src,
                                  const stream_options& opts) {
  // Every step that may fail for lack of resources comes before the first
  // one that hands something to another thread, so that a failure leaves
  // nothing behind: what was taken so far dies with `core` and `src` here.
  auto core = make_core(sys, opts);
  // The initial credit must be in place before the producer exists: the
  // source reader may start reading before the transfer actor runs at all.
  if (opts.read_ahead)
    core->control->allow(*opts.read_ahead);
  transfer_config cfg;
  cfg.options = opts;
  cfg.control = core->control;
  cfg.counters = core->counters;
  if (opts.file) {
    std::error_code ec;
    core->file = file_store::create(opts.file->path, opts.file->directory, ec,
                                    opts.file->map_window,
                                    opts.file->cached_windows);
    if (!core->file)
      return file_error("creating the stream file", opts.file->path, ec);
    cfg.file = core->file;
  }
  bool pulled = true;
  if (auto* buf = std::get_if<source::buffer_source>(&src.get())) {
    cfg.complete_body = slice{buf->bytes, 0, buf->size};
    if (core->file) {
      if (auto ec = core->file->append(buf->bytes->data(), buf->size))
        return file_error("writing the stream file", opts.file->path, ec);
    }
    pulled = false;
  } else if (std::holds_alternative<source::push_source>(src.get())) {
    core->writer_available = true;
    pulled = false;
  } else if (std::holds_alternative<source::fd_source>(src.get())) {
    // Only a reader blocked in poll(2) needs a descriptor to be woken by.
    if (auto err = core->control->open_fd())
      return err;
  }
  source_reader_launcher reader; // abandons its thread unless run
  if (pulled) {
    if (auto err = reader.start(sys))
      return err;
  }
  if (auto err = spawn_actors(sys, *core, std::move(cfg)))
    return err;
  if (pulled)
    reader.run(std::move(src), core->transfer, core->transfer_inbox,
               core->counters, opts, core->control,
               core->file);
  return stream::adopt(std::move(core));
}

caf::expected<stream> reopen_stream(caf::actor_system& sys,
                                    const std::string& path,
                                    stream_options opts) {
  auto settings = opts.file ? *opts.file : file_storage{};
  std::error_code ec;
  auto file = file_store::open_readonly(path, ec, settings.map_window,
                                        settings.cached_windows);
  if (!file)
    return file_error("opening the stream file", path, ec);
  settings.path = path;
  opts.file = settings;
  opts.read_ahead.reset(); // there is no source to hold back
  auto core = make_core(sys, opts);
  core->file = file;
  transfer_config cfg;
  cfg.options = opts;
  cfg.control = core->control;
  cfg.counters = core->counters;
  cfg.file = std::move(file);
  if (auto err = spawn_actors(sys, *core, std::move(cfg)))
    return err;
  return stream::adopt(std::move(core));
}

} // namespace

} // namespace detail

namespace {

/// The error of every call on a stream whose actor system went first.
caf::error system_gone_error() {
  return make_error(errc::stream_gone,
                    "the stream's actor system is gone: destroy streams and "
                    "readers before it");
}

/// Returns why a call on `core` cannot reach the actors, if so.
caf::error unreachable(const std::shared_ptr<detail::stream_core>& core) {
  if (!core)
    return make_error(errc::invalid_argument, "invalid stream handle");
  if (core->control && core->control->system_gone())
    return system_gone_error();
  return {};
}

} // namespace

caf::expected<stream> stream::make(caf::actor_system& sys, source src,
                                   stream_options opts) {
  try {
    return detail::make_stream(sys, std::move(src), opts);
  } catch (...) {
    // Out of memory, or a thread CAF could not create: nothing was kept.
    return detail::exhaustion_from("stream::make", std::current_exception());
  }
}

caf::expected<stream> stream::reopen(caf::actor_system& sys,
                                     const std::string& path,
                                     stream_options opts) {
  try {
    return detail::reopen_stream(sys, path, std::move(opts));
  } catch (...) {
    return detail::exhaustion_from("stream::reopen",
                                   std::current_exception());
  }
}

caf::expected<blocking_reader>
stream::open_reader(reader_options opts) const {
  if (auto err = unreachable(core_))
    return err;
  return detail::open_blocking_reader(core_, std::nullopt, opts);
}

caf::expected<blocking_reader>
stream::open_reader(caf::timespan timeout, reader_options opts) const {
  if (auto err = unreachable(core_))
    return err;
  return detail::open_blocking_reader(core_, timeout, opts);
}

// Defined in stream_writer.cpp.
namespace detail {
stream_writer make_writer(std::shared_ptr<stream_core> core);
} // namespace detail

caf::expected<stream_writer> stream::writer() const {
  if (auto err = unreachable(core_))
    return err;
  if (!core_->writer_available.exchange(false))
    return make_error(errc::invalid_argument,
                      "not a pushed stream, or its writer was taken");
  return detail::make_writer(core_);
}

stream_stats stream::stats() const {
  stream_stats out;
  if (!core_)
    return out;
  out.declared_length = core_->options.declared_length;
  auto* c = core_->counters.get();
  if (c == nullptr)
    return out;
  // `final` first: once it is set, the size and the error read after it
  // are the final ones.
  out.final = c->final.load(std::memory_order_acquire);
  out.size = c->size.load(std::memory_order_relaxed);
  out.oldest = c->oldest.load(std::memory_order_relaxed);
  out.parked = c->parked.load(std::memory_order_relaxed);
  out.readers = static_cast<std::size_t>(
    c->readers.load(std::memory_order_relaxed));
  out.waiting = static_cast<std::size_t>(
    c->waiting.load(std::memory_order_relaxed));
  if (out.final) {
    std::lock_guard<std::mutex> guard{c->mtx};
    out.error = c->error;
  }
  return out;
}

caf::expected<stream_status> stream::status() const {
  if (auto err = unreachable(core_))
    return err;
  detail::blocking_client client{*core_->sys};
  return client.call<stream_status>(core_->transfer, std::nullopt,
                                    status_atom::value);
}

caf::expected<std::uint64_t> stream::wait() const {
  if (auto err = unreachable(core_))
    return err;
  detail::blocking_client client{*core_->sys};
  auto st = client.call<stream_status>(core_->transfer, std::nullopt,
                                       wait_atom::value);
  if (!st)
    return std::move(st.error());
  if (st->error)
    return std::move(st->error);
  return st->size;
}

caf::error stream::close() {
  return shutdown(make_error(errc::closing, "stream closed"));
}

caf::error stream::remove() {
  if (!core_)
    return make_error(errc::invalid_argument, "invalid stream handle");
  shutdown(make_error(errc::removing));
  if (!core_->file)
    return {};
  std::lock_guard<std::mutex> guard{core_->close_mtx};
  if (auto ec = core_->file->remove())
    return detail::file_error("deleting the stream file",
                              core_->file->path(), ec);
  return {};
}

int stream::file_descriptor() const {
  if (!core_ || !core_->file)
    return -1;
  return core_->file->fd();
}

std::string stream::file_path() const {
  if (!core_ || !core_->file)
    return {};
  return core_->file->path();
}

caf::error stream::shutdown(caf::error err) {
  if (!core_)
    return make_error(errc::invalid_argument, "invalid stream handle");
  if (!err)
    return make_error(errc::invalid_argument, "shutdown: no error");
  auto& core = *core_;
  std::lock_guard<std::mutex> guard{core.close_mtx};
  if (core.close_result)
    return *core.close_result;
  if (core.control->system_gone()) {
    core.close_result = system_gone_error();
    return *core.close_result;
  }
  if (core.aborted.load()) {
    core.close_result = make_error(errc::canceled);
    return *core.close_result;
  }
  caf::anon_send(core.monitor, refuse_atom::value, std::move(err));
  detail::blocking_client client{*core.sys};
  {
    std::lock_guard<std::mutex> waiting{core.waiting_mtx};
    core.closing = &client;
  }
  if (core.aborted.load()) // an abort that came before we registered
    client.interrupt(make_error(errc::canceled));
  auto zero = client.call<std::uint64_t>(core.monitor, std::nullopt,
                                         wait_zero_atom::value);
  {
    std::lock_guard<std::mutex> waiting{core.waiting_mtx};
    core.closing = nullptr;
  }
  caf::error result;
  if (!zero) {
    result = std::move(zero.error());
    caf::anon_send(core.transfer, close_atom::value);
  } else {
    // Stop the source first, then ask: close() returns what status() says
    // from now on (`closed` for a stream stopped before its end, its own
    // end or error otherwise). Both messages come from this thread, so the
    // transfer actor handles the close before the question.
    caf::anon_send(core.transfer, close_atom::value);
    auto st = client.call<stream_status>(core.transfer, std::nullopt,
                                         status_atom::value);
    if (!st)
      result = std::move(st.error());
    else
      result = std::move(st->error);
  }
  core.control->stop();
  core.close_result = result;
  return result;
}

void stream::release() {
  if (!unreachable(core_))
    caf::anon_send(core_->transfer, release_atom::value);
}

void stream::abort() {
  if (unreachable(core_))
    return;
  auto& core = *core_;
  if (core.aborted.exchange(true))
    return;
  caf::anon_send(core.transfer, abort_atom::value);
  caf::anon_send(core.monitor, refuse_atom::value,
                 make_error(errc::canceled));
  core.control->stop();
  // A close() waiting for readers that will never close is released.
  std::lock_guard<std::mutex> waiting{core.waiting_mtx};
  if (core.closing != nullptr)
    core.closing->interrupt(make_error(errc::canceled));
}

transfer_actor stream::transfer() const {
  return core_ ? core_->transfer : transfer_actor{};
}

monitor_actor stream::monitor() const {
  return core_ ? core_->monitor : monitor_actor{};
}

} // namespace asyncstream
