// The seeded kernel simulation (see simulation.hpp and docs/design.md,
// "Simulation").
//
// How it drives the kernel: the readers are plain client actors that speak
// the raw protocol (protocol.hpp), sent with `caf::send_as` so that each
// request enters the transfer actor's mailbox at the step the schedule
// chooses, and answered as ordinary messages (CAF 0.17 sends the reply to an
// asynchronous message back to its sender). So every answer is seen, also a
// second one, which a `request(...).then(...)` would drop silently; a client
// may send what no client library would (requests at any offset, several at
// once, after a close). The source is the test: a pulled source publishes
// through `fixture::emit`, a pushed one through a real `stream_writer`; both
// keep to the credit the transfer actor publishes. The stream operations are
// the messages `stream::shutdown`, `stream::abort` and `stream::release` send.
#include "simulation.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/stream_writer.hpp"
#include "asyncstream/testing/fixture.hpp"

namespace asyncstream::sim {

namespace {

using sim_throw_atom = caf::atom_constant<caf::atom("sim_throw")>;

constexpr auto u64_max = std::numeric_limits<std::uint64_t>::max();

std::uint64_t sat_add(std::uint64_t x, std::uint64_t y) {
  return x > u64_max - y ? u64_max : x + y;
}

std::uint64_t sat_sub(std::uint64_t x, std::uint64_t y) {
  return x > y ? x - y : 0;
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// A small deterministic generator (the same numbers on every platform).
class prng {
public:
  explicit prng(std::uint64_t seed) : state_(mix(seed)) {
    // nop
  }

  std::uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix(state_);
  }

  /// Uniform in [0, n); 0 for n == 0.
  std::uint64_t below(std::uint64_t n) {
    return n == 0 ? 0 : next() % n;
  }

  /// Uniform in [lo, hi].
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) {
    return lo + below(hi - lo + 1);
  }

  /// True with probability num/den.
  bool chance(std::uint64_t num, std::uint64_t den) {
    return below(den) < num;
  }

private:
  std::uint64_t state_;
};

/// The source's byte at offset `o`.
char byte_at(std::uint64_t salt, std::uint64_t o) {
  return static_cast<char>(mix(o ^ salt) >> 24);
}

std::string opt(const std::optional<std::uint64_t>& x) {
  return x ? std::to_string(*x) : std::string{"-"};
}

std::string num(std::uint64_t x) {
  if (x == u64_max)
    return "max";
  if (x > (u64_max >> 1))
    return "max-" + std::to_string(u64_max - x);
  return std::to_string(x);
}

// -- configuration
// -------------------------------------------------------------

enum class ending { end, fail, drop_writer };

struct config {
  bool pushed = false;
  bool file = false;
  bool named_file = false;
  std::uint64_t memory_cache = 0;
  std::size_t chunk_size = 4096;
  std::optional<std::uint64_t> capacity;
  std::optional<std::uint64_t> declared;
  std::optional<std::uint64_t> retention;
  bool tethered = false;
  /// Tethered only: `stream_options::max_lag` in milliseconds.
  std::optional<std::uint64_t> max_lag_ms;
  std::optional<std::uint64_t> read_ahead;
  std::size_t max_readers = 100;
  /// The bytes the source has before it finishes.
  std::uint64_t source_len = 0;
  ending how = ending::end;
  std::size_t readers = 1;
  std::size_t actions = 10;
  /// The action at which the source finishes, the stream is aborted, and a
  /// graceful close (or shutdown, or remove) starts; none: not in the
  /// random phase (the source finishes in the drain).
  std::optional<std::size_t> finish_at;
  std::optional<std::size_t> abort_at;
  std::optional<std::size_t> close_at;
  errc close_how = errc::closing;
  /// Instead of the drain, the last stream handle goes while readers wait
  /// (the stream core's shutdown): everything parked gets `stream_gone`.
  bool drop = false;

  std::string describe() const {
    std::ostringstream out;
    out << (pushed ? "pushed (stream_writer)" : "pulled (fixture::emit)")
        << ", "
        << (file ? (named_file ? "file (named)" : "file (unnamed)") : "memory");
    if (file)
      out << " memory_cache=" << memory_cache;
    out << ", chunk_size=" << chunk_size << ", capacity=" << opt(capacity)
        << ", declared_length=" << opt(declared)
        << ", retention=" << opt(retention);
    if (retention)
      out << (tethered ? " tethered" : " untethered");
    if (max_lag_ms)
      out << " max_lag=" << *max_lag_ms << "ms";
    out << ", read_ahead=" << opt(read_ahead) << ", max_readers=" << max_readers
        << ", source has " << source_len << " bytes then "
        << (how == ending::end    ? "ends"
            : how == ending::fail ? "fails"
                                  : "drops its writer")
        << ", " << readers << " readers, " << actions << " actions";
    if (finish_at)
      out << ", the source finishes at action " << *finish_at;
    if (abort_at)
      out << ", abort at action " << *abort_at;
    if (drop)
      out << ", the last handle goes at the end";
    if (close_at)
      out << ", "
          << (close_how == errc::closing    ? "close()"
              : close_how == errc::removing ? "remove()"
                                            : "shutdown(io_error)")
          << " at action " << *close_at;
    return out.str();
  }
};

config make_config(std::uint64_t seed) {
  prng rng{seed ^ 0xC0FFEEull};
  config c;
  c.pushed = rng.chance(1, 2);
  c.file = rng.chance(1, 4);
  c.named_file = c.file && rng.chance(1, 2);
  switch (rng.below(10)) {
    case 0:
      c.source_len = 0;
      break;
    case 1:
      c.source_len = rng.range(1, 8);
      break;
    case 2:
    case 3:
      c.source_len = rng.range(4000, 20000); // crosses chunks and windows
      break;
    case 4:
    case 5:
      c.source_len = rng.range(400, 4000);
      break;
    default:
      c.source_len = rng.range(1, 400);
  }
  auto around = [&](std::uint64_t n) { return rng.range(0, n + n / 2 + 2); };
  if (c.file)
    c.memory_cache = rng.chance(1, 3) ? 0 : around(c.source_len);
  if (rng.chance(1, 4))
    c.capacity = around(c.source_len);
  if (rng.chance(1, 4))
    c.declared = around(c.source_len);
  if (rng.chance(2, 5)) {
    c.retention = rng.range(1, std::max<std::uint64_t>(1, c.source_len / 2));
    c.tethered = rng.chance(1, 2);
    if (c.tethered && rng.chance(1, 2))
      c.max_lag_ms = rng.range(1, 1000);
  }
  if (rng.chance(3, 10))
    c.read_ahead = rng.range(0, std::max<std::uint64_t>(1, c.source_len / 3));
  c.max_readers = rng.chance(1, 3) ? rng.range(1, 3) : 100;
  c.readers = rng.range(1, 8);
  c.actions = rng.chance(1, 5) ? rng.range(600, 3000) : rng.range(20, 600);
  auto h = rng.below(10);
  c.how = h < 6                ? ending::end
          : h < 9 || !c.pushed ? ending::fail
                               : ending::drop_writer;
  if (rng.chance(1, 2))
    c.finish_at = static_cast<std::size_t>(rng.below(c.actions));
  if (rng.chance(1, 6))
    c.abort_at = static_cast<std::size_t>(rng.below(c.actions));
  c.drop = rng.chance(1, 8);
  if (!c.drop && rng.chance(1, 4)) {
    c.close_at = static_cast<std::size_t>(rng.below(c.actions));
    auto w = rng.below(3);
    c.close_how = w == 0   ? errc::closing
                  : w == 1 ? errc::removing
                           : errc::io_error;
  }
  return c;
}

stream_options to_options(const config& c, std::uint64_t seed) {
  stream_options opts;
  opts.chunk_size = c.chunk_size;
  opts.capacity = c.capacity;
  opts.declared_length = c.declared;
  opts.retention = c.retention;
  opts.policy = c.tethered ? retention_policy::tethered
                           : retention_policy::untethered;
  opts.read_ahead = c.read_ahead;
  if (c.max_lag_ms)
    opts.max_lag = std::chrono::milliseconds{*c.max_lag_ms};
  opts.max_readers = c.max_readers;
  opts.transfer_thread = false;
  if (c.file) {
    file_storage fs;
    fs.memory_cache = c.memory_cache;
    fs.map_window = 4096;
    fs.cached_windows = static_cast<std::size_t>(seed % 3);
    if (c.named_file) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), "/tmp/asyncstream-sim-%ld-%" PRIu64,
                    static_cast<long>(::getpid()), seed);
      fs.path = buf;
    }
    opts.file = fs;
  }
  return opts;
}

// -- the reference model of the stream's size and final status ---------------

/// What the transfer actor does with the source and stream messages, in the
/// order they were sent (its mailbox is FIFO): the size and final status it
/// must reach once it handled everything sent so far.
struct reference {
  std::uint64_t size = 0;
  std::uint64_t limit = u64_max;
  std::optional<std::uint64_t> declared;
  bool final = false;
  bool aborted = false;
  /// The final error (errc::none: a clean end).
  errc code = errc::none;
  /// The source's own error, when it failed (any code).
  caf::error source_error;

  void finalize(errc c) {
    if (final)
      return;
    final = true;
    code = c;
  }

  void append(std::uint64_t n) {
    if (final || n == 0)
      return;
    auto room = limit - size;
    if (n > room) {
      size = limit;
      finalize(declared && limit == *declared ? errc::none : errc::buffer_full);
      return;
    }
    size += n;
    if (declared && size == *declared)
      finalize(errc::none);
  }

  void source_end(errc c) {
    if (final)
      return;
    if (c == errc::none && declared && size < *declared)
      c = errc::unexpected_end;
    finalize(c);
  }

  void close() {
    finalize(errc::closed);
  }

  void abort() {
    aborted = true;
    finalize(errc::canceled);
  }
};

errc code_of(const caf::error& err) {
  if (!err)
    return errc::none;
  if (err.category() != error_category)
    return errc::none;
  return static_cast<errc>(err.code());
}

std::string code_name(errc c) {
  return c == errc::none ? std::string{"none"} : to_string(c);
}

// -- readers
// -------------------------------------------------------------------

enum class req_kind { read, read_at, wait_for, zero };

const char* kind_name(req_kind k) {
  switch (k) {
    case req_kind::read:
      return "read";
    case req_kind::read_at:
      return "read_at";
    case req_kind::wait_for:
      return "wait_for";
    default:
      return "read0";
  }
}

struct request {
  std::uint64_t seq = 0;
  req_kind kind = req_kind::read;
  std::uint64_t offset = 0;
  std::uint64_t max = 0;
  /// A withdraw (timeout) was sent after it.
  bool withdrawn = false;
  /// The reader's tether before this request (tethered streams).
  std::optional<std::uint64_t> tether_before;
  /// The stream's size when it was sent: the answer carries at least the
  /// bytes that existed then (a short read is never shorter than that).
  std::uint64_t size_at_send = 0;
  /// Sent after the stream's abort (the transfer actor's mailbox is FIFO:
  /// it must answer `canceled`, or `closed` for a closed reader).
  bool after_abort = false;
  /// The stream was final (as published) when it was sent: the transfer
  /// actor knew its end or error before it handled the request.
  bool final_at_send = false;
};

enum class rstate { idle, opening, tethering, open, closed, dead };

const char* state_name(rstate s) {
  switch (s) {
    case rstate::idle:
      return "idle";
    case rstate::opening:
      return "opening";
    case rstate::tethering:
      return "tethering";
    case rstate::open:
      return "open";
    case rstate::closed:
      return "closed";
    default:
      return "dead";
  }
}

struct reader {
  std::size_t index = 0;
  std::uint64_t id = 0;
  caf::actor client;
  rstate state = rstate::idle;
  /// The client's reading position (ordinary reads).
  std::uint64_t pos = 0;
  /// The kernel's tether of this reader, as the model knows it (change it
  /// through `simulator::set_tether`).
  std::optional<std::uint64_t> tether;
  /// `max_lag` cut it loose: never tethered again until it closes.
  bool cut_loose = false;
  std::vector<request> outstanding;
  /// An end-relative seek waits for the stream's final length.
  std::optional<std::int64_t> end_seek;
  /// End seeks the client gave up on (their answers still come).
  std::size_t abandoned_waits = 0;
  /// The offset its `tether_atom` asked for.
  std::uint64_t tether_sent_pos = 0;
  /// The drain withdrew its positional requests once.
  bool drain_withdrew = false;
  /// An open was sent after its owner died (once: a second open of an id
  /// that waits is a different matter, see simulation_test.cpp).
  bool ghost_open = false;
  /// Its client sent an open.
  bool open_sent = false;
  /// Its open was granted.
  bool granted = false;
  /// Dead, and every message since was handled (the monitor closed it at
  /// the transfer actor).
  bool dead_settled = false;
  /// The owner was told to die (its last messages may still run).
  bool dying = false;
  /// `cancel_atom` was sent for this reader.
  bool cancel_sent = false;
  /// A waiting open was withdrawn (`close_atom` to the monitor).
  bool open_withdrawn = false;
  /// Its open reached the monitor's mailbox after a refusal (graceful close
  /// or abort): it must be refused.
  bool open_after_refusal = false;
  /// Reached the end (an answer said so at its position) or a final error.
  bool done = false;
  bool refused = false;
  std::uint64_t answers = 0;
  /// Slices received, re-checked at the end (they must never change).
  std::vector<std::pair<std::uint64_t, slice>> held;
  std::uint64_t held_bytes = 0;
};

struct violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class simulator;

caf::behavior client_fun(caf::event_based_actor* self, simulator* sim,
                         std::size_t idx);
caf::behavior closer_fun(caf::event_based_actor* self, simulator* sim);
caf::behavior ops_fun(caf::event_based_actor* self, simulator* sim);

/// Checks every writer call against the writer's contract of issue 9
/// (stream_writer.hpp): exact limits (a write that crosses a declared length
/// or a capacity writes up to it and returns `closed` or `buffer_full`) and
/// the refusal each call returns once the writer takes no more bytes. Off:
/// only that writes after a close or a stop fail.
constexpr bool check_writer_contract = true;

// -- the simulator
// -------------------------------------------------------------

class simulator {
public:
  simulator(std::uint64_t seed, const options& opts)
    : seed_(seed)
    , opts_(opts)
    , cfg_(make_config(seed))
    , rng_(seed)
    , salt_(mix(seed * 31 + 7)) {
    ref_.declared = cfg_.declared;
    if (cfg_.capacity)
      ref_.limit = *cfg_.capacity;
    if (cfg_.declared && *cfg_.declared < ref_.limit)
      ref_.limit = *cfg_.declared;
    if (cfg_.declared && *cfg_.declared == 0)
      ref_.finalize(errc::none);
    if (cfg_.read_ahead)
      expected_furthest_ = 0;
  }

  ~simulator() {
    finished_ = true;
    writer_.reset(); // before the fixture (it sends to the transfer actor)
    if (fix_) {
      // No actor handle may outlive the fixture's actor system.
      for (auto& r : readers_) {
        if (r.client)
          caf::anon_send_exit(r.client, caf::exit_reason::user_shutdown);
        r.client = nullptr;
      }
      if (closer_)
        caf::anon_send_exit(closer_, caf::exit_reason::user_shutdown);
      if (ops_)
        caf::anon_send_exit(ops_, caf::exit_reason::user_shutdown);
      closer_ = nullptr;
      ops_ = nullptr;
      fix_.reset();
    }
    if (!path_.empty())
      ::unlink(path_.c_str());
  }

  outcome run() {
    outcome out;
    try {
      setup();
      for (std::size_t i = 0; i < cfg_.actions; ++i) {
        if (cfg_.finish_at == i)
          finish_source(cfg_.how);
        if (cfg_.abort_at == i)
          abort();
        if (cfg_.close_at == i)
          start_close(cfg_.close_how);
        random_action();
      }
      if (cfg_.drop) {
        drop_stream();
      } else {
        drain();
        final_checks();
      }
    } catch (const violation& v) {
      out.ok = false;
      out.report = report(v.what());
    } catch (const std::exception& e) {
      out.ok = false;
      out.report = report(std::string{"exception: "} + e.what());
    }
    out.steps = step_;
    out.messages = messages_;
    out.answers = answers_;
    out.coverage = coverage_;
    return out;
  }

  // -- callbacks from the actors (run inside `run_job`) -----------------------

  void on_slice(std::size_t r, slice_result& res);
  void on_u64(std::size_t r, std::uint64_t x);
  void on_status(std::size_t r, stream_status& st);
  void on_error(std::size_t r, caf::error& err);
  void on_dead(std::size_t r);
  void on_closer_u64(std::uint64_t);
  void on_closer_status(stream_status& st);
  void on_closer_error(caf::error& err);
  void on_ops_status(stream_status& st);

private:
  // -- bookkeeping ------------------------------------------------------------

  void count(const std::string& what, std::uint64_t n = 1) {
    coverage_[what] += n;
  }

  void log(std::string line) {
    if (opts_.trace)
      std::fprintf(stderr, "#%" PRIu64 " %s\n", step_, line.c_str());
    schedule_.push_back("#" + std::to_string(step_) + " " + std::move(line));
  }

  /// Records a violation found inside an actor's handler (which must not
  /// throw); the driver raises it after the step.
  void fail(std::string what) {
    if (finished_ || failure_)
      return;
    failure_ = std::move(what);
  }

  void raise_pending() {
    if (failure_) {
      auto what = std::move(*failure_);
      failure_.reset();
      throw violation{what};
    }
  }

  std::string report(const std::string& what) const {
    std::ostringstream out;
    out << "VIOLATION: " << what << "\n  seed: " << seed_
        << "\n  configuration: " << cfg_.describe() << "\n  model: size "
        << ref_.size
        << (ref_.final ? ", final " + code_name(ref_.code)
                       : std::string{", live"})
        << ", emitted " << produced_;
    out << "\n  readers:";
    for (auto& r : readers_) {
      out << "\n    r" << r.index << " id " << r.id << ": "
          << state_name(r.state) << ", pos " << num(r.pos) << ", tether "
          << (r.tether ? num(*r.tether) : std::string{"-"})
          << ", outstanding [";
      for (auto& q : r.outstanding)
        out << " " << kind_name(q.kind) << "@" << num(q.offset) << "+"
            << num(q.max);
      out << " ]" << (r.done ? ", done" : "");
    }
    out << "\n  schedule (" << schedule_.size() << " steps):\n";
    std::size_t first = schedule_.size() > 600 ? schedule_.size() - 600 : 0;
    if (first > 0)
      out << "    ... " << first << " earlier steps left out\n";
    for (auto i = first; i < schedule_.size(); ++i)
      out << "    " << schedule_[i] << "\n";
    out << "  replay: " << opts_.replay_command << " --seed " << seed_
        << " --trace\n";
    return out.str();
  }

  stream_stats stats() const {
    return fix_->stream().stats();
  }

  /// A copy of the fixture's stream handle (for its non-const calls).
  asyncstream::stream stream_handle() const {
    return fix_->stream();
  }

  std::string name_of(const caf::actor_addr& addr) const {
    if (!addr)
      return "?";
    if (addr == fix_->transfer().address())
      return "transfer";
    if (addr == fix_->monitor().address())
      return "monitor";
    if (closer_ && addr == closer_.address())
      return "closer";
    if (ops_ && addr == ops_.address())
      return "ops";
    for (auto& r : readers_)
      if (r.client && addr == r.client.address())
        return "r" + std::to_string(r.index);
    return "actor";
  }

  /// Names the first message in the mailbox of job `i`.
  std::string peek(std::size_t i) {
    auto& jobs = fix_->sched().jobs;
    if (i >= jobs.size())
      return "?";
    auto* actor = dynamic_cast<caf::scheduled_actor*>(jobs[i]);
    if (actor == nullptr)
      return "?";
#ifdef ASYNCSTREAM_UNDEFINED_SANITIZER
    // UBSan's vptr check reports CAF's own mailbox code (task_queue.hpp
    // casts its sentinel node) once a test peeks into a mailbox: name the
    // actor only; a build without UBSan replays the seed with the messages.
    return "a message of " + name_of(actor->address());
#endif
    auto* elem = actor->mailbox().peek();
    if (elem == nullptr)
      return name_of(actor->address()) + " starts";
    auto& msg = elem->content();
    std::string from
      = elem->sender ? name_of(caf::actor_cast<caf::actor_addr>(elem->sender))
                     : std::string{"test"};
    std::string what;
    if (msg.match_elements<slice_request>()) {
      auto& x = msg.get_as<slice_request>(0);
      what = std::string{"slice_request"} + (x.positional ? "(pos)" : "") + " @"
             + num(x.offset) + "+" + num(x.max_size);
    } else if (msg.match_elements<slice_result>()) {
      auto& x = msg.get_as<slice_result>(0);
      what = "slice_result @" + num(x.offset) + " size "
             + std::to_string(x.size) + (x.end ? " end" : "")
             + (x.error ? " " + code_name(code_of(x.error)) : "");
    } else if (msg.match_elements<next_slice>()) {
      what = "next_slice["
             + std::to_string(msg.get_as<next_slice>(0).bytes.size()) + "]";
    } else if (msg.match_elements<source_end>()) {
      what = "source_end "
             + code_name(code_of(msg.get_as<source_end>(0).error));
    } else if (msg.match_elements<stream_status>()) {
      auto& x = msg.get_as<stream_status>(0);
      what = "stream_status size " + std::to_string(x.size)
             + (x.final ? " final" : "");
    } else if (msg.match_elements<std::uint64_t>()) {
      what = "u64 " + num(msg.get_as<std::uint64_t>(0));
    } else if (msg.match_elements<caf::error>()) {
      what = "error " + code_name(code_of(msg.get_as<caf::error>(0)));
    } else if (msg.match_elements<caf::down_msg>()) {
      what = "down_msg";
    } else if (msg.match_elements<caf::exit_msg>()) {
      what = "exit_msg";
    } else if (msg.size() > 0 && msg.match_element<caf::atom_value>(0)) {
      what = caf::to_string(msg.get_as<caf::atom_value>(0));
      if (msg.size() > 1 && msg.match_element<std::uint64_t>(1))
        what += " " + num(msg.get_as<std::uint64_t>(1));
    } else {
      what = "message";
    }
    return name_of(actor->address()) + " <- " + what + " (from " + from + ")";
  }

  // -- setup ------------------------------------------------------------------

  void setup() {
    auto opts = to_options(cfg_, seed_);
    if (opts.file)
      path_ = opts.file->path;
    log("configuration: " + cfg_.describe());
    fix_ = std::make_unique<testing::fixture>(opts);
    if (cfg_.pushed) {
      auto w = fix_->writer();
      if (!w)
        throw violation{"fixture::writer(): " + render(w.error())};
      writer_ = std::make_unique<stream_writer>(std::move(*w));
      if (limit_is_declared() && ref_.limit == 0) {
        // Complete from the start: the writer takes nothing.
        wm_.refusal = errc::closed;
        wm_.outcome = errc::none;
      }
    }
    auto& sys = fix_->sys();
    closer_ = sys.spawn(closer_fun, this);
    ops_ = sys.spawn(ops_fun, this);
    for (std::size_t i = 0; i < cfg_.readers; ++i) {
      reader r;
      r.index = i;
      r.id = detail::stream_core::next_reader_id();
      r.client = sys.spawn(client_fun, this, i);
      r.client->attach_functor([this, i](const caf::error&) { on_dead(i); });
      readers_.push_back(std::move(r));
    }
    quiesce();
  }

  // -- stepping ---------------------------------------------------------------

  /// Runs one message of a job the seed picks.
  bool run_one() {
    auto n = fix_->jobs();
    if (n == 0)
      return false;
    auto i = static_cast<std::size_t>(rng_.below(n));
    ++step_;
    log("run " + peek(i));
    fix_->run_job(i);
    ++messages_;
    raise_pending();
    check_always();
    return true;
  }

  void run_some(std::size_t k) {
    for (std::size_t i = 0; i < k; ++i)
      if (!run_one())
        break;
  }

  void run_all() {
    std::size_t guard = 0;
    while (run_one())
      if (++guard > 200000)
        throw violation{"livelock: 200000 messages without quiescence"};
  }

  void quiesce() {
    run_all();
    check_quiet();
  }

  // -- the source -------------------------------------------------------------

  std::uint64_t room() const {
    auto credit = fix_->credit();
    return credit > produced_ ? credit - produced_ : 0;
  }

  std::string bytes_from(std::uint64_t offset, std::uint64_t n) const {
    std::string out(static_cast<std::size_t>(n), '\0');
    for (std::uint64_t i = 0; i < n; ++i)
      out[static_cast<std::size_t>(i)] = byte_at(salt_, offset + i);
    return out;
  }

  /// Produces up to `want` bytes (the source's remaining bytes and the
  /// credit permitting); returns how many were sent.
  std::uint64_t produce(std::uint64_t want) {
    if (source_done_)
      return 0;
    want = std::min(want,
                    cfg_.source_len - std::min(cfg_.source_len, produced_));
    auto credit = fix_->credit();
    auto n = std::min(want, room());
    ++step_;
    if (n == 0) {
      if (want == 0)
        return 0;
      log("source: nothing to send (wanted " + std::to_string(want)
          + ", credit " + num(credit) + ", produced "
          + std::to_string(produced_) + ")");
      return 0;
    }
    auto data = bytes_from(produced_, n);
    if (!cfg_.pushed) {
      if (fix_->stopped()) {
        // The source reader stops reading once told to.
        log("source: stopped, sends nothing");
        return 0;
      }
      fix_->emit(data);
      log("source: emit " + std::to_string(n) + " at "
          + std::to_string(produced_) + " (credit " + num(credit) + ")");
      produced_ += n;
      ref_.append(n);
      return n;
    }
    return write(n, data);
  }

  /// The writer's state in its contract: once it takes no more bytes, every
  /// write returns `refusal` and `close()` returns `outcome`.
  struct writer_model {
    std::optional<errc> refusal;
    errc outcome = errc::none;
  };

  /// A call begins: the writer notices an abort or a stop.
  void writer_sync() {
    if (wm_.refusal)
      return;
    if (aborted_) {
      wm_.refusal = errc::canceled;
      wm_.outcome = errc::canceled;
    } else if (fix_->stopped()) {
      wm_.refusal = errc::closed;
      wm_.outcome = errc::closed;
    }
  }

  bool limit_is_declared() const {
    return cfg_.declared && *cfg_.declared == ref_.limit;
  }

  /// Writes `data` through the writer (all of it within the credit) and
  /// checks the answer; returns the bytes the stream took.
  std::uint64_t write(std::uint64_t n, const std::string& data) {
    auto before = writer_->written();
    auto credit = fix_->credit();
    bool stopped = fix_->stopped();
    // What the contract says, from the state when the call begins.
    errc want_code = errc::none;
    std::uint64_t want_sent = n;
    bool cut_at_capacity = false;
    if (check_writer_contract) {
      writer_sync();
      if (wm_.refusal) {
        want_code = *wm_.refusal;
        want_sent = 0;
      } else if (n > ref_.limit - before) {
        want_sent = ref_.limit - before;
        wm_.refusal = errc::closed;
        if (limit_is_declared()) {
          want_code = errc::closed;
          wm_.outcome = errc::none;
        } else {
          want_code = errc::buffer_full;
          wm_.outcome = errc::buffer_full;
          cut_at_capacity = true;
        }
      } else if (limit_is_declared() && before + n == ref_.limit) {
        wm_.refusal = errc::closed;
        wm_.outcome = errc::none;
      }
    }
    caf::error err;
    auto how = rng_.below(4);
    if (how == 0)
      err = writer_->write(std::make_shared<const std::string>(data));
    else
      err = writer_->write(data.data(), data.size());
    auto after = writer_->written();
    auto sent = after - before;
    ++step_;
    log("writer: write " + std::to_string(n) + (how == 0 ? " (shared)" : "")
        + " at " + std::to_string(before) + " (credit " + num(credit) + ") -> "
        + (err ? render(err) : std::string{"ok"}) + ", took "
        + std::to_string(sent));
    if (after < before || sent > n)
      throw violation{"the writer counts " + std::to_string(sent)
                      + " bytes taken for a write of " + std::to_string(n)};
    if (sent > 0 && after > credit)
      throw violation{"the writer passed its credit: " + std::to_string(after)
                      + " > " + num(credit)};
    if (check_writer_contract) {
      if (code_of(err) != want_code || sent != want_sent)
        throw violation{
          "the writer answered " + (err ? render(err) : std::string{"none"})
          + " and took " + std::to_string(sent) + "; its contract says "
          + code_name(want_code) + " and " + std::to_string(want_sent)};
    } else {
      if ((stopped || writer_closed_) && !err)
        throw violation{"a write after the stream stopped its producer or "
                        "after the writer's close returned success"};
      if (!err && sent != n)
        throw violation{"a successful write took " + std::to_string(sent)
                        + " of " + std::to_string(n) + " bytes"};
      if (err && !writer_closed_ && !stopped && before + n <= ref_.limit)
        throw violation{"a write within the limits failed: " + render(err)};
      cut_at_capacity = is(err, errc::buffer_full);
    }
    if (!writer_closed_) {
      produced_ += sent;
      ref_.append(sent);
    }
    if (cut_at_capacity) {
      // The write that crosses the capacity ends the stream there: the
      // writer sends `source_end{buffer_full}` after the bytes that fit.
      ref_.source_end(errc::buffer_full);
    }
    return sent;
  }

  /// A write after the writer's close (it never waits for credit).
  void write_after_close(std::uint64_t n) {
    n = std::min<std::uint64_t>(n, 64);
    write(n, bytes_from(writer_->written(), n));
  }

  void finish_source(ending how) {
    if (source_done_)
      return;
    source_done_ = true;
    ++step_;
    if (!cfg_.pushed) {
      if (how == ending::end) {
        log("source: end");
        fix_->end();
        ref_.source_end(errc::none);
      } else {
        log("source: fail io_error");
        fix_->fail(make_error(errc::io_error, "simulated source failure"));
        ref_.source_end(errc::io_error);
      }
      return;
    }
    // The contract: `close()` returns none, or how the stream ended once
    // the writer took no more bytes; `close_with_error` none, or the
    // refusal a write would get; both send the end only if it takes bytes.
    writer_sync();
    bool taking = !wm_.refusal;
    switch (how) {
      case ending::end: {
        auto err = writer_->close();
        log("writer: close -> " + (err ? render(err) : std::string{"none"}));
        auto want = taking ? errc::none : wm_.outcome;
        if (check_writer_contract && code_of(err) != want)
          throw violation{"close() returned "
                          + (err ? render(err) : std::string{"none"})
                          + ", its contract says " + code_name(want)};
        ref_.source_end(errc::none);
        if (taking) {
          wm_.refusal = errc::closed;
          wm_.outcome = errc::none;
        }
        break;
      }
      case ending::fail: {
        auto err = writer_->close_with_error(
          make_error(errc::io_error, "simulated producer failure"));
        log("writer: close_with_error io_error -> "
            + (err ? render(err) : std::string{"none"}));
        auto want = taking ? errc::none : *wm_.refusal;
        if (check_writer_contract && code_of(err) != want)
          throw violation{"close_with_error() returned "
                          + (err ? render(err) : std::string{"none"})
                          + ", its contract says " + code_name(want)};
        ref_.source_end(errc::io_error);
        if (taking) {
          wm_.refusal = errc::closed;
          wm_.outcome = errc::io_error;
        }
        break;
      }
      default:
        log("writer: destroyed without close");
        writer_.reset();
        ref_.source_end(errc::unexpected_end);
    }
    writer_closed_ = true;
  }

  // -- readers: sending -------------------------------------------------------

  template <class... Ts>
  void send_transfer(reader& r, Ts&&... xs) {
    caf::send_as(r.client, fix_->transfer(), std::forward<Ts>(xs)...);
  }

  template <class... Ts>
  void send_monitor(reader& r, Ts&&... xs) {
    caf::send_as(r.client, fix_->monitor(), std::forward<Ts>(xs)...);
  }

  bool offset_taken(const reader& r, std::uint64_t offset) const {
    for (auto& q : r.outstanding)
      if (q.offset == offset)
        return true;
    return false;
  }

  bool has_ordinary(const reader& r) const {
    for (auto& q : r.outstanding)
      if (q.kind == req_kind::read)
        return true;
    return false;
  }

  void send_request(reader& r, req_kind kind, std::uint64_t offset,
                    std::uint64_t max) {
    request q;
    q.seq = ++request_seq_;
    q.kind = kind;
    q.offset = offset;
    q.max = max;
    q.tether_before = r.tether;
    q.after_abort = aborted_;
    auto st = stats();
    q.size_at_send = st.size;
    q.final_at_send = st.final;
    slice_request req{r.id, offset, max};
    req.positional = kind == req_kind::read_at || kind == req_kind::wait_for;
    ++step_;
    log("r" + std::to_string(r.index) + ": " + kind_name(kind) + " @"
        + num(offset) + "+" + num(max));
    send_transfer(r, req);
    if (!r.cancel_sent) {
      if (cfg_.read_ahead)
        expected_furthest_ = std::max(expected_furthest_, sat_add(offset, max));
      if (cfg_.tethered && kind == req_kind::read && max > 0 && !r.cut_loose)
        set_tether(r, offset); // max(offset, oldest): corrected by data_loss
    }
    r.outstanding.push_back(q);
  }

  void open(reader& r) {
    ++step_;
    log("r" + std::to_string(r.index) + ": open (owner r"
        + std::to_string(r.index) + ")");
    r.state = rstate::opening;
    r.open_sent = true;
    r.open_after_refusal = refusal_.has_value();
    send_monitor(r, open_atom::value, r.id, r.client.address());
  }

  void close(reader& r) {
    ++step_;
    bool monitor_first = rng_.chance(1, 2);
    log("r" + std::to_string(r.index) + ": close ("
        + (monitor_first ? "monitor, then transfer" : "transfer, then monitor")
        + ")");
    if (monitor_first)
      send_monitor(r, close_atom::value, r.id);
    send_transfer(r, cancel_atom::value, r.id);
    if (!monitor_first)
      send_monitor(r, close_atom::value, r.id);
    r.cancel_sent = true;
    set_tether(r, std::nullopt);
    r.state = rstate::closed;
  }

  void withdraw_open(reader& r) {
    ++step_;
    log("r" + std::to_string(r.index) + ": open times out (close_atom)");
    send_monitor(r, close_atom::value, r.id);
    r.open_withdrawn = true;
    r.state = rstate::closed;
  }

  void timeout(reader& r) {
    ++step_;
    count("withdraws");
    log("r" + std::to_string(r.index) + ": times out (withdraw_atom)");
    send_transfer(r, withdraw_atom::value, r.id);
    for (auto& q : r.outstanding)
      q.withdrawn = true;
  }

  void kill(reader& r) {
    ++step_;
    count("owner deaths");
    auto how = rng_.below(3);
    log("r" + std::to_string(r.index) + ": owner "
        + (how == 0   ? "killed"
           : how == 1 ? "shut down (user_shutdown)"
                      : "throws"));
    r.dying = true;
    if (how == 0)
      caf::anon_send_exit(r.client, caf::exit_reason::kill);
    else if (how == 1)
      caf::anon_send_exit(r.client, caf::exit_reason::user_shutdown);
    else
      caf::anon_send(r.client, sim_throw_atom::value);
  }

  std::uint64_t pick_offset(const reader& r) {
    auto size = ref_.size;
    switch (rng_.below(9)) {
      case 0:
        return 0;
      case 1:
        return stats().oldest;
      case 2:
        return size;
      case 3:
        return sat_add(size, rng_.range(1, 40));
      case 4:
        return rng_.chance(1, 2) ? u64_max - rng_.below(3)
                                 : static_cast<std::uint64_t>(
                                   std::numeric_limits<std::int64_t>::max());
      case 5:
        return sat_sub(r.pos, rng_.range(1, 20));
      default:
        return rng_.below(size + 1);
    }
  }

  std::uint64_t pick_size() {
    switch (rng_.below(8)) {
      case 0:
        return 1;
      case 1:
      case 2:
        return rng_.range(2, 16);
      case 3:
        return rng_.chance(1, 4) ? u64_max : rng_.range(1000, 100000);
      default:
        return rng_.range(1, 300);
    }
  }

  void seek(reader& r) {
    ++step_;
    auto w = rng_.below(3);
    auto label = "r" + std::to_string(r.index) + ": seek ";
    if (w == 0) {
      r.pos = pick_offset(r);
      log(label + "start " + num(r.pos));
    } else if (w == 1) {
      auto delta = static_cast<std::int64_t>(rng_.range(0, 60)) - 30;
      if (delta < 0 && static_cast<std::uint64_t>(-delta) > r.pos) {
        log(label + "current " + std::to_string(delta)
            + ": before 0, invalid_argument, position kept");
      } else {
        r.pos = delta < 0 ? r.pos - static_cast<std::uint64_t>(-delta)
                          : sat_add(r.pos, static_cast<std::uint64_t>(delta));
        log(label + "current " + std::to_string(delta) + " -> " + num(r.pos));
      }
    } else {
      auto delta = -static_cast<std::int64_t>(rng_.range(0, 20));
      if (cfg_.declared) {
        auto base = *cfg_.declared;
        if (static_cast<std::uint64_t>(-delta) <= base)
          r.pos = base - static_cast<std::uint64_t>(-delta);
        log(label + "end " + std::to_string(delta) + " (declared length) -> "
            + num(r.pos));
      } else {
        log(label + "end " + std::to_string(delta) + ": wait_atom");
        r.end_seek = delta;
        send_transfer(r, wait_atom::value);
        released_ = true; // waiting for the end lifts the read-ahead
      }
    }
  }

  /// One random operation of reader `r`.
  void reader_action(reader& r) {
    if (r.state == rstate::dead) {
      if (r.granted && r.dead_settled && rng_.chance(1, 20)) {
        // A request under the id of a reader whose owner died (its open was
        // granted, so the monitor closed it at the transfer actor too): it
        // must neither stay parked nor tether the reader again.
        ++step_;
        auto o = pick_offset(r);
        slice_request req{r.id, o, pick_size()};
        req.positional = rng_.chance(1, 3);
        log("r" + std::to_string(r.index) + ": a request @" + num(o)
            + " under its id after its owner died");
        send_transfer(r, req);
        count("requests after the owner died");
        return;
      }
      if (!r.ghost_open && !r.open_sent && rng_.chance(1, 4)) {
        r.ghost_open = true;
        // A message from an owner that is gone: the monitor watches a dead
        // actor, whose down message comes at once.
        ++step_;
        log("r" + std::to_string(r.index) + ": open from its dead owner");
        send_monitor(r, open_atom::value, r.id, r.client.address());
      }
      return;
    }
    if (r.dying)
      return;
    switch (r.state) {
      case rstate::idle:
        if (rng_.chance(1, 40)) {
          kill(r);
          return;
        }
        open(r);
        return;
      case rstate::opening:
        if (rng_.chance(1, 6))
          withdraw_open(r);
        else if (rng_.chance(1, 30))
          kill(r);
        return;
      case rstate::tethering:
        if (rng_.chance(1, 30))
          kill(r);
        return;
      case rstate::closed:
      case rstate::dead:
        return;
      case rstate::open:
        break;
    }
    if (r.end_seek)
      return;
    auto op = rng_.below(200);
    if (op < 100) {
      if (has_ordinary(r) || offset_taken(r, r.pos))
        return;
      auto n = rng_.chance(1, 12) ? 0 : pick_size();
      send_request(r, n == 0 ? req_kind::zero : req_kind::read, r.pos, n);
    } else if (op < 120) {
      auto o = pick_offset(r);
      if (!offset_taken(r, o))
        send_request(r, req_kind::read_at, o, pick_size());
    } else if (op < 135) {
      auto o = pick_offset(r);
      if (!offset_taken(r, o))
        send_request(r, req_kind::wait_for, o, 1);
    } else if (op < 160) {
      seek(r);
    } else if (op < 172) {
      if (!r.outstanding.empty())
        timeout(r);
    } else if (op < 177) {
      close(r);
    } else if (op < 180) {
      kill(r);
    } else {
      auto o = pick_offset(r);
      if (!offset_taken(r, o))
        send_request(r, req_kind::zero, o, 0);
    }
  }

  // -- maximum lag -------------------------------------------------------------

  /// Changes the model's tether of `r`. With `max_lag`, notes whether the
  /// change may have restarted the transfer actor's timing of a hold.
  void set_tether(reader& r, std::optional<std::uint64_t> value) {
    if (cfg_.max_lag_ms && hold_held_
        && (r.tether == hold_pos_ || (value && *value <= hold_pos_)))
      hold_touched_ = true;
    r.tether = value;
  }

  /// The hold the transfer actor times: while not final, the window is full
  /// past the slowest tether.
  std::pair<bool, std::uint64_t> current_hold() const {
    std::optional<std::uint64_t> slowest;
    for (auto& r : readers_)
      if (r.tether && (!slowest || *r.tether < *slowest))
        slowest = r.tether;
    if (ref_.final || !slowest)
      return {false, 0};
    auto size = ref_.size;
    bool held = *slowest <= size && size - *slowest >= *cfg_.retention;
    return {held, held ? *slowest : 0};
  }

  /// At rest: when did the current hold begin? Exactly now if it changed;
  /// somewhere between its old start and now if a tether touched it.
  void update_hold() {
    if (!cfg_.max_lag_ms)
      return;
    auto [held, pos] = current_hold();
    if (held != hold_held_ || pos != hold_pos_) {
      hold_held_ = held;
      hold_pos_ = pos;
      hold_since_earliest_ = clock_;
      hold_since_latest_ = clock_;
    } else if (hold_touched_) {
      hold_since_latest_ = clock_;
    }
    hold_touched_ = false;
  }

  /// Time passes (the test coordinator's clock): a hold of `max_lag` cuts
  /// its readers loose. Advances only by amounts whose outcome the model
  /// knows: before the earliest the hold may have begun plus `max_lag`, or
  /// past the latest.
  void time_passes() {
    quiesce();
    auto lag = static_cast<std::uint64_t>(
      std::chrono::nanoseconds{std::chrono::milliseconds{*cfg_.max_lag_ms}}
        .count());
    std::uint64_t d = 0;
    bool fire = false;
    if (hold_held_) {
      auto may = hold_since_earliest_ + lag;
      auto must = hold_since_latest_ + lag;
      if (may > clock_ + 1 && rng_.chance(1, 2)) {
        d = rng_.range(1, may - clock_ - 1);
      } else {
        d = (must > clock_ ? must - clock_ : 1) + rng_.below(lag);
        fire = true;
      }
    } else {
      d = rng_.range(1, 2 * lag);
    }
    clock_ += d;
    ++step_;
    log("time passes: " + std::to_string(d) + " ns"
        + (fire ? ", the hold at " + num(hold_pos_) + " lasted max_lag" : ""));
    count(fire ? "max_lag cuts" : "time steps");
    fix_->sched().advance_time(caf::timespan{static_cast<std::int64_t>(d)});
    run_all();
    if (fire) {
      for (auto& r : readers_) {
        if (r.tether == hold_pos_ && !r.cut_loose) {
          log("r" + std::to_string(r.index) + ": cut loose (max_lag)");
          r.cut_loose = true;
          set_tether(r, std::nullopt);
        }
      }
    }
    check_quiet();
  }

  // -- stream operations ------------------------------------------------------

  void start_close(errc why) {
    if (close_started_)
      return;
    close_started_ = true;
    close_code_ = why;
    ++step_;
    log(std::string{"stream: "}
        + (why == errc::closing    ? "close()"
           : why == errc::removing ? "remove()"
                                   : "shutdown(io_error)")
        + ": refuse_atom + wait_zero_atom");
    if (aborted_) {
      close_result_ = errc::canceled;
      log("stream: close after abort returns canceled at once");
      return;
    }
    refusal_ = why;
    caf::send_as(closer_, fix_->monitor(), refuse_atom::value, make_error(why));
    caf::send_as(closer_, fix_->monitor(), wait_zero_atom::value);
  }

  void abort() {
    if (aborted_)
      return;
    ++step_;
    log("stream: abort()");
    aborted_ = true;
    ref_.abort();
    if (!refusal_)
      refusal_ = errc::canceled;
    stream_handle().abort();
    if (close_started_ && !close_result_) {
      close_result_ = errc::canceled; // abort() releases a waiting close()
      log("stream: the waiting close returns canceled");
    }
  }

  void stream_action() {
    auto op = rng_.below(100);
    if (op < 30) {
      ++step_;
      log("stream: status_atom");
      ++ops_status_sent_;
      caf::send_as(ops_, fix_->transfer(), status_atom::value);
    } else if (op < 45) {
      ++step_;
      log("stream: wait_atom");
      ++ops_wait_sent_;
      released_ = true;
      caf::send_as(ops_, fix_->transfer(), wait_atom::value);
    } else if (op < 65) {
      ++step_;
      log("stream: release()");
      released_ = true;
      stream_handle().release();
    } else if (op < 70 && cfg_.pushed && writer_ && source_done_) {
      write_after_close(rng_.range(1, 64));
    }
  }

  void random_action() {
    auto op = rng_.below(100);
    if (op < 25) {
      auto want = rng_.chance(1, 5) ? rng_.range(100, 5000) : rng_.range(0, 40);
      produce(want);
    } else if (op < 60) {
      reader_action(readers_[rng_.below(readers_.size())]);
    } else if (op < 64) {
      stream_action();
    } else if (op < 67 && cfg_.max_lag_ms) {
      time_passes();
    } else if (op < 93) {
      run_some(static_cast<std::size_t>(rng_.range(1, 6)));
    } else {
      quiesce();
    }
    raise_pending();
  }

  // -- the last handle goes --------------------------------------------------

  /// What `~stream_core` does when the last handle goes, while readers may
  /// wait: stop the source, shut both actors down. Every parked request,
  /// waiting open and wait query must be answered (with `stream_gone`).
  void drop_stream() {
    ++step_;
    log("stream: the last handle goes (shutdown_atom to both actors)");
    dropped_ = true;
    fix_->stream().core()->control->stop();
    caf::anon_send(fix_->transfer(), shutdown_atom::value);
    caf::anon_send(fix_->monitor(), shutdown_atom::value);
    std::size_t guard = 0;
    while (run_one())
      if (++guard > 200000)
        throw violation{"livelock after the shutdown"};
    auto st = stats();
    for (auto& r : readers_) {
      if (r.state == rstate::dead)
        continue;
      if (!r.outstanding.empty())
        throw violation{"r" + std::to_string(r.index) + " has "
                        + std::to_string(r.outstanding.size())
                        + " requests unanswered after the shutdown"};
      if (r.end_seek)
        throw violation{"r" + std::to_string(r.index)
                        + "'s wait_atom unanswered after the shutdown"};
      if (r.state == rstate::opening)
        throw violation{"r" + std::to_string(r.index)
                        + "'s open unanswered after the shutdown"};
    }
    if (st.parked != 0 || st.readers != 0 || st.waiting != 0)
      throw violation{"after the shutdown: " + std::to_string(st.parked)
                      + " parked, " + std::to_string(st.readers) + " open, "
                      + std::to_string(st.waiting) + " waiting"};
    if (ops_answered_ != ops_status_sent_ + ops_wait_sent_)
      throw violation{
        std::to_string(ops_status_sent_ + ops_wait_sent_ - ops_answered_)
        + " status and wait queries unanswered after the "
          "shutdown"};
  }

  // -- the drain --------------------------------------------------------------

  /// The source finishes, every reader opens (if it never tried), reads to
  /// its end or error and closes; the graceful close (if any) completes.
  void drain() {
    log("-- drain --");
    std::size_t idle_rounds = 0;
    for (std::size_t round = 0;; ++round) {
      if (round > 100000)
        throw violation{"the drain did not finish in 100000 rounds"};
      quiesce();
      bool acted = false;
      if (!source_done_) {
        if (produced_ >= cfg_.source_len || fix_->stopped()) {
          finish_source(cfg_.how);
          acted = true;
        } else if (produce(rng_.range(1, 3000)) > 0) {
          acted = true;
        }
      }
      bool all_done = true;
      for (auto& r : readers_)
        if (drain_reader(r, acted))
          all_done = false;
      if (all_done && source_done_ && !acted) {
        quiesce();
        break;
      }
      if (!acted && fix_->jobs() == 0 && cfg_.max_lag_ms && hold_held_
          && !lag_tried_) {
        // A reader holds the producer: max_lag cuts it loose in time.
        lag_tried_ = true;
        time_passes();
        continue;
      }
      if (acted)
        lag_tried_ = false;
      if (!acted && fix_->jobs() == 0) {
        // An end seek on a tethered stream waits for bytes its own tether
        // holds back (by design: only reads move a tether): the client
        // gives up on it (a timeout) and reads on.
        for (auto& r : readers_) {
          if (r.end_seek && cfg_.tethered && r.state == rstate::open) {
            ++step_;
            log("r" + std::to_string(r.index)
                + ": gives up its end seek (held back by its own tether)");
            r.end_seek.reset();
            ++r.abandoned_waits;
            acted = true;
          }
        }
        // Nobody asks for more bytes of a demand-driven stream: the owner
        // lifts the read-ahead to let the source finish.
        if (!acted && cfg_.read_ahead && !released_ && !source_done_) {
          ++step_;
          log("stream: release() (no demand left)");
          released_ = true;
          stream_handle().release();
          acted = true;
        }
        if (acted)
          continue;
        if (++idle_rounds > 2)
          throw violation{stuck_report()};
      } else {
        idle_rounds = 0;
      }
    }
  }

  /// Moves reader `r` on in the drain; returns whether it is not finished.
  bool drain_reader(reader& r, bool& acted) {
    switch (r.state) {
      case rstate::idle:
        if (r.dying)
          return true;
        open(r);
        acted = true;
        return true;
      case rstate::opening:
      case rstate::tethering:
        return true;
      case rstate::closed:
        return !r.outstanding.empty();
      case rstate::dead:
        return false;
      case rstate::open:
        break;
    }
    if (r.dying)
      return true;
    if (r.done) {
      close(r);
      acted = true;
      return true;
    }
    if (r.end_seek)
      return true;
    if (!r.outstanding.empty()) {
      // Positional requests may wait for bytes this reader's own tether
      // holds back: the client gives up on them and reads on.
      if (!has_ordinary(r) && !r.drain_withdrew) {
        r.drain_withdrew = true;
        timeout(r);
        acted = true;
      }
      return true;
    }
    r.drain_withdrew = false;
    send_request(r, req_kind::read, r.pos,
                 rng_.chance(1, 3) ? rng_.range(1, 32) : pick_size());
    acted = true;
    return true;
  }

  std::string stuck_report() const {
    auto st = stats();
    std::ostringstream out;
    out << "stuck: nothing can move (liveness) - stream size " << st.size
        << ", oldest " << st.oldest << ", credit " << num(fix_->credit())
        << ", produced " << produced_ << " of " << cfg_.source_len
        << ", parked " << st.parked << ", open readers " << st.readers
        << ", waiting opens " << st.waiting;
    return out.str();
  }

  // -- checks -----------------------------------------------------------------

  /// After every message.
  void check_always() {
    auto st = stats();
    if (st.size > ref_.size)
      throw violation{"stats().size " + std::to_string(st.size)
                      + " is past the bytes sent (" + std::to_string(ref_.size)
                      + " after the limits)"};
    if (st.size < last_size_)
      throw violation{"stats().size went back from "
                      + std::to_string(last_size_) + " to "
                      + std::to_string(st.size)};
    if (st.oldest < last_oldest_)
      throw violation{"stats().oldest went back from "
                      + std::to_string(last_oldest_) + " to "
                      + std::to_string(st.oldest)};
    if (st.oldest > st.size)
      throw violation{"stats().oldest " + std::to_string(st.oldest)
                      + " is past the size " + std::to_string(st.size)};
    if (!cfg_.retention && st.oldest != 0)
      throw violation{"oldest " + std::to_string(st.oldest)
                      + " without a retention window"};
    if (last_final_ && !st.final)
      throw violation{"stats().final went back to false"};
    if (st.final && !ref_.final)
      throw violation{"the stream is final before anything made it final"};
    if (st.final && !last_final_) {
      // The final status: the model's (everything sent before it was handled
      // in order, so the size is final too).
      if (code_of(st.error) != ref_.code || st.size != ref_.size)
        throw violation{"final status " + code_name(code_of(st.error)) + " at "
                        + std::to_string(st.size) + ", expected "
                        + code_name(ref_.code) + " at "
                        + std::to_string(ref_.size)};
    }
    if (st.readers > cfg_.max_readers)
      throw violation{std::to_string(st.readers) + " readers open, cap "
                      + std::to_string(cfg_.max_readers)};
    last_size_ = st.size;
    last_oldest_ = st.oldest;
    last_final_ = st.final;
  }

  std::uint64_t expected_credit() const {
    auto credit = u64_max;
    if (cfg_.tethered) {
      std::optional<std::uint64_t> slowest;
      for (auto& r : readers_)
        if (r.tether && (!slowest || *r.tether < *slowest))
          slowest = r.tether;
      if (slowest)
        credit = std::min(credit, sat_add(*slowest, *cfg_.retention));
    }
    if (cfg_.read_ahead && !released_)
      credit = std::min(credit, sat_add(expected_furthest_, *cfg_.read_ahead));
    return credit;
  }

  /// When no actor has a message left.
  void check_quiet() {
    auto st = stats();
    if (st.size != ref_.size || st.final != ref_.final)
      throw violation{"at rest the stream has " + std::to_string(st.size)
                      + (st.final ? " bytes, final" : " bytes, live")
                      + "; the model " + std::to_string(ref_.size)
                      + (ref_.final ? " bytes, final" : " bytes, live")};
    if (st.final && code_of(st.error) != ref_.code)
      throw violation{"final error " + code_name(code_of(st.error))
                      + ", expected " + code_name(ref_.code)};
    // Retention: exact without a tether, below every tether with one.
    if (cfg_.retention && !ref_.aborted) {
      auto floor = sat_sub(st.size, *cfg_.retention);
      bool any_tether = false;
      for (auto& r : readers_) {
        if (!r.tether)
          continue;
        any_tether = true;
        if (st.oldest > *r.tether)
          throw violation{"the window dropped bytes tethered reader r"
                          + std::to_string(r.index) + " needs: oldest "
                          + std::to_string(st.oldest) + " > its tether "
                          + num(*r.tether)};
      }
      if (st.oldest > floor)
        throw violation{"oldest " + std::to_string(st.oldest)
                        + " is past size - window = " + std::to_string(floor)};
      if (!any_tether && st.oldest != floor)
        throw violation{"oldest " + std::to_string(st.oldest)
                        + " but size - window = " + std::to_string(floor)
                        + " and no reader is tethered"};
    }
    // Parked requests: exactly the unanswered ones of live readers; each
    // waits for bytes that do not exist (a short read otherwise).
    std::uint64_t outstanding = 0;
    for (auto& r : readers_) {
      if (r.state == rstate::dead)
        continue;
      for (auto& q : r.outstanding) {
        ++outstanding;
        if (q.max == 0)
          throw violation{"a zero-length request of r" + std::to_string(r.index)
                          + " is parked"};
        if (st.final)
          throw violation{"r" + std::to_string(r.index) + "'s "
                          + kind_name(q.kind) + " @" + num(q.offset)
                          + " is unanswered on a final stream"};
        if (q.offset < st.size)
          throw violation{"r" + std::to_string(r.index) + "'s "
                          + kind_name(q.kind) + " @" + num(q.offset)
                          + " is parked though bytes exist (size "
                          + std::to_string(st.size) + ")"};
      }
    }
    if (st.parked != outstanding)
      throw violation{"stats().parked is " + std::to_string(st.parked)
                      + ", the readers wait for " + std::to_string(outstanding)
                      + " answers"};
    // Slots: open slots equal open readers; waiting opens equal waiting
    // readers.
    std::uint64_t open = 0;
    std::uint64_t waiting = 0;
    for (auto& r : readers_) {
      if (r.state == rstate::tethering || r.state == rstate::open)
        ++open;
      else if (r.state == rstate::opening)
        ++waiting;
    }
    if (st.readers != open || st.waiting != waiting)
      throw violation{"the monitor counts " + std::to_string(st.readers)
                      + " open and " + std::to_string(st.waiting)
                      + " waiting readers; the model " + std::to_string(open)
                      + " and " + std::to_string(waiting)};
    count("quiet checks");
    for (auto& r : readers_)
      if (r.state == rstate::dead)
        r.dead_settled = true;
    // The producer's credit, while it may still produce.
    if (!fix_->stopped()) {
      auto credit = fix_->credit();
      auto expected = expected_credit();
      if (expected != u64_max)
        count("credit checks (limited)");
      if (credit != expected)
        throw violation{"credit " + num(credit) + ", expected "
                        + num(expected)};
    }
    if (close_started_ && !close_result_ && open == 0 && !aborted_)
      throw violation{"close() still waits with no reader open"};
    update_hold();
  }

  void final_checks() {
    auto st = stats();
    if (!st.final)
      throw violation{"the stream is not final after the drain"};
    for (auto& r : readers_) {
      if (r.state == rstate::dead)
        continue;
      if (!r.outstanding.empty())
        throw violation{"r" + std::to_string(r.index)
                        + " has unanswered requests after the drain"};
      if (r.state != rstate::closed)
        throw violation{"r" + std::to_string(r.index) + " is "
                        + state_name(r.state) + " after the drain"};
      // Every slice a reader holds still has the source's bytes.
      for (auto& [offset, s] : r.held) {
        auto* p = reinterpret_cast<const char*>(s.data());
        for (std::size_t i = 0; i < s.size(); ++i)
          if (p[i] != byte_at(salt_, offset + i))
            throw violation{"a held slice of r" + std::to_string(r.index)
                            + " changed at offset "
                            + std::to_string(offset + i)};
      }
    }
    if (st.readers != 0 || st.waiting != 0)
      throw violation{"readers left open after the drain"};
    if (close_started_ && !close_result_)
      throw violation{"close() did not return after every reader closed"};
    if (ops_answered_ != ops_status_sent_ + ops_wait_sent_)
      throw violation{
        std::to_string(ops_status_sent_ + ops_wait_sent_ - ops_answered_)
        + " status and wait queries unanswered"};
    if (close_result_ && *close_result_ != errc::canceled
        && close_code_ == errc::removing && fix_->file()) {
      if (auto ec = fix_->file()->remove())
        throw violation{"removing the stream file: " + ec.message()};
      log("stream: remove() deletes the stream file");
      // Slices of a deleted file stay valid.
      for (auto& r : readers_)
        for (auto& [offset, s] : r.held)
          for (std::size_t i = 0; i < s.size(); ++i)
            if (reinterpret_cast<const char*>(s.data())[i]
                != byte_at(salt_, offset + i))
              throw violation{"a held slice changed after remove()"};
    }
  }

  // -- per-answer checks ------------------------------------------------------

  /// Checks `err` on an answer of `q` that returned `size` bytes.
  void check_error(reader& r, const request& q, const slice_result& res) {
    auto what = "r" + std::to_string(r.index) + "'s "
                + std::string{kind_name(q.kind)} + " @" + num(q.offset) + "+"
                + num(q.max) + " got " + render(res.error);
    auto c = code_of(res.error);
    auto at_final_byte = [&] {
      return ref_.final
             && (res.size > 0 ? res.offset + res.size == ref_.size
                              : res.offset >= ref_.size);
    };
    switch (c) {
      case errc::canceled:
        if (!ref_.aborted || res.size != 0)
          fail(what + " without an abort");
        return;
      case errc::data_loss: {
        auto st = stats();
        if (res.size != 0 || !cfg_.retention || q.offset >= st.oldest) {
          fail(what + ": data_loss, yet oldest is "
               + std::to_string(st.oldest));
          return;
        }
        auto range = data_loss_range(res.error);
        if (!range || range->offset != q.offset || range->oldest <= q.offset
            || range->oldest > st.oldest) {
          fail(what + ": a wrong lost range");
          return;
        }
        if (cfg_.tethered && q.kind == req_kind::read && q.tether_before
            && q.offset >= *q.tether_before)
          fail(what + ": a tethered reader lost bytes at or above its tether "
               + num(*q.tether_before));
        if (cfg_.tethered && q.kind == req_kind::read && q.max > 0
            && !r.cancel_sent && !r.cut_loose)
          set_tether(r, range->oldest); // track() clamps to the oldest kept
        return;
      }
      case errc::closed:
        if (r.cancel_sent || (ref_.code == errc::closed && at_final_byte()))
          return;
        fail(what + " without a close");
        return;
      case errc::timeout:
        if (!q.withdrawn || res.size != 0)
          fail(what + " without a withdraw");
        return;
      case errc::stream_gone:
        if (!dropped_ || res.size != 0)
          fail(what + " while the stream lives");
        return;
      default:
        if (ref_.final && c == ref_.code && c != errc::none && at_final_byte())
          return;
        fail(what + ": not the stream's error at its byte (model: "
             + code_name(ref_.code) + " at " + std::to_string(ref_.size)
             + (ref_.final ? ")" : ", live)"));
    }
  }

  // -- state ------------------------------------------------------------------

  std::uint64_t seed_;
  options opts_;
  config cfg_;
  prng rng_;
  std::uint64_t salt_;
  reference ref_;
  std::uint64_t step_ = 0;
  std::uint64_t messages_ = 0;
  std::uint64_t answers_ = 0;
  std::uint64_t request_seq_ = 0;
  std::vector<std::string> schedule_;
  std::map<std::string, std::uint64_t> coverage_;
  std::optional<std::string> failure_;
  bool finished_ = false;
  std::string path_;
  // The source.
  std::uint64_t produced_ = 0;
  bool source_done_ = false;
  bool writer_closed_ = false;
  writer_model wm_;
  // The model of the kernel's flow control.
  std::uint64_t expected_furthest_ = 0;
  // Maximum lag: the test clock (ns) and the hold the transfer actor times.
  std::uint64_t clock_ = 0;
  bool hold_held_ = false;
  std::uint64_t hold_pos_ = 0;
  std::uint64_t hold_since_earliest_ = 0;
  std::uint64_t hold_since_latest_ = 0;
  bool hold_touched_ = false;
  bool lag_tried_ = false;
  bool released_ = false;
  // Stream operations.
  bool aborted_ = false;
  bool dropped_ = false;
  bool close_started_ = false;
  errc close_code_ = errc::none;
  std::optional<errc> close_result_;
  std::optional<errc> refusal_;
  std::uint64_t ops_status_sent_ = 0;
  std::uint64_t ops_wait_sent_ = 0;
  std::uint64_t ops_answered_ = 0;
  std::uint64_t ops_live_answers_ = 0;
  // What check_always saw last.
  std::uint64_t last_size_ = 0;
  std::uint64_t last_oldest_ = 0;
  bool last_final_ = false;
  std::vector<reader> readers_;
  caf::actor closer_;
  caf::actor ops_;
  // Destroyed first (see the destructor): the writer, then the fixture.
  std::unique_ptr<testing::fixture> fix_;
  std::unique_ptr<stream_writer> writer_;
};

// -- callbacks
// -----------------------------------------------------------------

void simulator::on_slice(std::size_t idx, slice_result& res) {
  if (finished_)
    return;
  auto& r = readers_[idx];
  ++answers_;
  ++r.answers;
  auto i
    = std::find_if(r.outstanding.begin(), r.outstanding.end(),
                   [&](const request& q) { return q.offset == res.offset; });
  if (i == r.outstanding.end()) {
    fail("r" + std::to_string(idx) + " got an answer @" + num(res.offset)
         + " that no unanswered request asked for (a second answer?)");
    return;
  }
  auto q = *i;
  r.outstanding.erase(i);
  auto what = "r" + std::to_string(idx) + "'s " + kind_name(q.kind) + " @"
              + num(q.offset) + "+" + num(q.max);
  // The bytes: as many as the slices hold, no more than asked, the source's.
  std::uint64_t total = 0;
  for (auto& s : res.slices) {
    auto* p = reinterpret_cast<const char*>(s.data());
    for (std::size_t k = 0; k < s.size(); ++k) {
      if (p[k] != byte_at(salt_, res.offset + total + k)) {
        fail(what + ": byte " + std::to_string(res.offset + total + k)
             + " differs from the source's");
        return;
      }
    }
    if (r.held_bytes < 256 * 1024) {
      r.held.emplace_back(res.offset + total, s);
      r.held_bytes += s.size();
    }
    total += s.size();
  }
  if (total != res.size) {
    fail(what + ": size " + std::to_string(res.size) + " but the slices hold "
         + std::to_string(total));
    return;
  }
  if (res.size > q.max) {
    fail(what + ": " + std::to_string(res.size) + " bytes, more than asked");
    return;
  }
  if (res.size > 0 && res.offset + res.size > ref_.size) {
    fail(what + ": bytes up to " + std::to_string(res.offset + res.size)
         + " but only " + std::to_string(ref_.size) + " were sent");
    return;
  }
  if (res.end && res.error) {
    fail(what + ": both end and an error");
    return;
  }
  if (res.end) {
    bool at_end = ref_.final && ref_.code == errc::none
                  && (res.size > 0 ? res.offset + res.size == ref_.size
                                   : res.offset >= ref_.size);
    if (!at_end) {
      fail(what + ": end at " + std::to_string(res.offset + res.size)
           + ", the model " + std::to_string(ref_.size)
           + (ref_.final ? " final " + code_name(ref_.code)
                         : std::string{" live"}));
      return;
    }
  }
  if (q.after_abort && !is(res.error, errc::canceled)
      && !(r.cancel_sent && is(res.error, errc::closed))) {
    fail(what + ": sent after the abort, answered without canceled");
    return;
  }
  if (res.error)
    check_error(r, q, res);
  count(std::string{"answer "} + kind_name(q.kind) + ": "
        + (res.error      ? code_name(code_of(res.error))
           : res.end      ? std::string{"end"}
           : res.size > 0 ? std::string{"bytes"}
                          : std::string{"empty"}));
  if (res.size > 0 && res.slices.size() > 1)
    count("answer with several slices");
  if (!res.end && !res.error && q.max > 0 && res.size == 0) {
    fail(what + ": an empty answer without end or error");
    return;
  }
  if (q.max == 0 && res.size != 0) {
    fail(what + ": bytes for a zero-length request");
    return;
  }
  if (q.kind == req_kind::zero && q.final_at_send
      && q.offset >= q.size_at_send && !res.error && !res.end) {
    // It never waits, but at a final offset it tells what a read there
    // gets: the end, or the pending error.
    fail(what + ": a zero-length request at the final offset "
         + num(q.size_at_send) + " answered neither the end nor an error");
    return;
  }
  if (!res.error && q.offset < q.size_at_send
      && res.size < std::min(q.max, q.size_at_send - q.offset)) {
    fail(what + ": " + std::to_string(res.size) + " bytes, though "
         + std::to_string(q.size_at_send - q.offset)
         + " existed when it was sent");
    return;
  }
  // The client: an ordinary read moves the position; the end or a final
  // error at the position ends the reader.
  if (q.kind == req_kind::read
      || (q.kind == req_kind::zero && q.offset == r.pos)) {
    if (q.kind == req_kind::read)
      r.pos = res.offset + res.size;
    auto c = code_of(res.error);
    if (res.end)
      r.done = true;
    else if (c == errc::data_loss) {
      if (auto range = data_loss_range(res.error))
        r.pos = range->oldest; // skip to the oldest kept byte
    } else if (res.error && c != errc::timeout)
      r.done = true;
  }
}

void simulator::on_u64(std::size_t idx, std::uint64_t x) {
  if (finished_)
    return;
  auto& r = readers_[idx];
  if (r.state == rstate::opening) {
    if (x != r.id) {
      fail("r" + std::to_string(idx) + "'s open granted id " + num(x));
      return;
    }
    count("opens granted");
    if (r.open_after_refusal) {
      fail("r" + std::to_string(idx)
           + "'s open was granted though the "
             "monitor had the refusal first");
      return;
    }
    r.state = rstate::tethering;
    r.granted = true;
    auto pos = r.pos;
    log("r" + std::to_string(idx) + ": granted; tether_atom @" + num(pos));
    send_transfer(r, tether_atom::value, r.id, pos);
    r.tether_sent_pos = pos;
    return;
  }
  if (r.state == rstate::tethering) {
    if (cfg_.tethered) {
      auto st = stats();
      if (x < r.tether_sent_pos || (x > r.tether_sent_pos && x > st.oldest)) {
        fail("r" + std::to_string(idx) + " tethered at " + num(x)
             + " for offset " + num(r.tether_sent_pos) + ", oldest "
             + std::to_string(st.oldest));
        return;
      }
      set_tether(r, x);
    } else if (x != r.tether_sent_pos) {
      fail("r" + std::to_string(idx)
           + ": tether_atom on a stream without "
             "a tethered window answered "
           + num(x));
      return;
    }
    r.state = rstate::open;
    return;
  }
  if (r.open_withdrawn)
    return; // a grant that raced with the withdraw: the close freed it
  fail("r" + std::to_string(idx) + " got an unexpected u64 " + num(x)
       + " in state " + state_name(r.state));
}

void simulator::on_status(std::size_t idx, stream_status& st) {
  if (finished_)
    return;
  auto& r = readers_[idx];
  if (!r.end_seek && r.abandoned_waits > 0) {
    --r.abandoned_waits;
    return;
  }
  if (!r.end_seek) {
    fail("r" + std::to_string(idx)
         + " got a stream_status it did not ask "
           "for");
    return;
  }
  auto delta = *r.end_seek;
  r.end_seek.reset();
  if (!st.final) {
    fail("r" + std::to_string(idx) + ": wait_atom answered before final");
    return;
  }
  if (st.error) {
    if (code_of(st.error) != ref_.code && !ref_.aborted
        && !(dropped_ && code_of(st.error) == errc::stream_gone))
      fail("wait_atom answered " + render(st.error) + ", the model "
           + code_name(ref_.code));
    return; // the seek fails with the stream's error
  }
  if (st.size != ref_.size) {
    fail("wait_atom answered size " + std::to_string(st.size) + ", the model "
         + std::to_string(ref_.size));
    return;
  }
  if (static_cast<std::uint64_t>(-delta) <= st.size)
    r.pos = st.size - static_cast<std::uint64_t>(-delta);
}

void simulator::on_error(std::size_t idx, caf::error& err) {
  if (finished_)
    return;
  auto& r = readers_[idx];
  auto c = code_of(err);
  if (r.state == rstate::opening || r.open_withdrawn) {
    bool ok = (r.open_withdrawn && c == errc::timeout)
              || (refusal_ && c == *refusal_)
              || (aborted_ && c == errc::canceled)
              || (dropped_ && c == errc::stream_gone);
    if (!ok) {
      fail("r" + std::to_string(idx) + "'s open refused with " + render(err));
      return;
    }
    count("opens refused");
    if (r.state == rstate::opening) {
      r.refused = true;
      r.state = rstate::closed;
    }
    return;
  }
  if (r.state == rstate::tethering) {
    fail("r" + std::to_string(idx) + "'s tether_atom failed: " + render(err));
    return;
  }
  fail("r" + std::to_string(idx) + " got an unexpected error " + render(err)
       + " in state " + state_name(r.state));
}

void simulator::on_dead(std::size_t idx) {
  if (finished_)
    return;
  auto& r = readers_[idx];
  ++step_;
  log("r" + std::to_string(idx) + ": owner terminated ("
      + std::to_string(r.outstanding.size()) + " requests unanswered)");
  r.state = rstate::dead;
  r.outstanding.clear(); // their answers have nobody to go to
  set_tether(r, std::nullopt); // the monitor cancels the reader
  r.end_seek.reset();
}

void simulator::on_closer_u64(std::uint64_t) {
  if (finished_)
    return;
  if (close_result_)
    return; // abort() released the close already
  for (auto& r : readers_)
    if (r.state == rstate::tethering || r.state == rstate::open)
      fail("wait_zero_atom answered while r" + std::to_string(r.index)
           + " is open");
  log("closer: zero readers; status_atom");
  caf::send_as(closer_, fix_->transfer(), status_atom::value);
}

void simulator::on_closer_status(stream_status& st) {
  if (finished_ || close_result_)
    return;
  close_result_ = code_of(st.error);
  log("closer: close_atom; close() returns " + code_name(*close_result_));
  if (st.final && code_of(st.error) != ref_.code)
    fail("the close's status says " + render(st.error) + ", the model "
         + code_name(ref_.code));
  caf::send_as(closer_, fix_->transfer(), close_atom::value);
  fix_->stream().core()->control->stop();
  ref_.close();
}

void simulator::on_closer_error(caf::error& err) {
  if (finished_)
    return;
  fail("the closer got an error: " + render(err));
}

void simulator::on_ops_status(stream_status& st) {
  if (finished_)
    return;
  // A wait answer is final; a status answer may be either.
  ++ops_answered_;
  if (!st.final)
    ++ops_live_answers_;
  if (ops_answered_ > ops_status_sent_ + ops_wait_sent_
      || ops_live_answers_ > ops_status_sent_)
    fail("a stream_status nobody asked for (or a wait answered live)");
  if (st.size > ref_.size)
    fail("status says size " + std::to_string(st.size) + ", only "
         + std::to_string(ref_.size) + " were sent");
  if (st.oldest > st.size)
    fail("status says oldest " + std::to_string(st.oldest) + " > size "
         + std::to_string(st.size));
  if (st.final && !ref_.final && !dropped_)
    fail("status says final before anything made the stream final");
  if (st.final && code_of(st.error) != ref_.code
      && !(dropped_ && code_of(st.error) == errc::stream_gone))
    fail("status says " + render(st.error) + ", the model "
         + code_name(ref_.code));
}

// -- actors
// ----------------------------------------------------------------------

caf::behavior client_fun(caf::event_based_actor* self, simulator* sim,
                         std::size_t idx) {
  self->set_error_handler([sim, idx](caf::scheduled_actor*, caf::error& err) {
    sim->on_error(idx, err);
  });
  // Quietly (CAF's default prints through a printer actor).
  self->set_exception_handler(
    [](caf::scheduled_actor*, std::exception_ptr&) -> caf::error {
      return caf::exit_reason::unhandled_exception;
    });
  return {
    [sim, idx](slice_result& res) { sim->on_slice(idx, res); },
    [sim, idx](std::uint64_t x) { sim->on_u64(idx, x); },
    [sim, idx](stream_status& st) { sim->on_status(idx, st); },
    [](sim_throw_atom) -> caf::result<void> {
      throw std::runtime_error("the owner throws");
    },
  };
}

caf::behavior closer_fun(caf::event_based_actor* self, simulator* sim) {
  self->set_error_handler([sim](caf::scheduled_actor*, caf::error& err) {
    sim->on_closer_error(err);
  });
  return {
    [sim](std::uint64_t x) { sim->on_closer_u64(x); },
    [sim](stream_status& st) { sim->on_closer_status(st); },
  };
}

caf::behavior ops_fun(caf::event_based_actor*, simulator* sim) {
  return {
    [sim](stream_status& st) { sim->on_ops_status(st); },
  };
}

} // namespace

outcome run_seed(std::uint64_t seed, const options& opts) {
  simulator sim{seed, opts};
  return sim.run();
}

std::string describe_config(std::uint64_t seed) {
  return make_config(seed).describe();
}

} // namespace asyncstream::sim
