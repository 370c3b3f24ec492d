#include "fanout.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/detail/chunk_sizer.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"

#include "system.hpp"

namespace asyncstream::bench {

namespace {

/// What one reader ends with.
struct reader_out {
  reader_tally tally;
  std::string error;
};

/// Counts readers down; the main thread waits for zero.
class countdown {
public:
  explicit countdown(std::size_t n) : left_(n) {
    // nop
  }

  void arrive() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (--left_ == 0)
      cv_.notify_all();
  }

  void wait() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return left_ == 0; });
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::size_t left_;
};

/// The pull function of the in-memory source: at most 64 KiB per call, the
/// last bytes come together with end-of-file.
read_function make_read_function(const source_data& src) {
  const auto* data = src.bytes.data();
  auto size = src.bytes.size();
  return [data, size, off = std::size_t{0}](std::byte* buf,
                                            std::size_t max) mutable {
    auto n = std::min({max, read_size, size - off});
    std::memcpy(buf, data + off, n);
    off += n;
    return read_outcome{n, off == size, {}};
  };
}

stream_options make_stream_options(const fanout_config& cfg) {
  stream_options opts;
  opts.block_size = read_size;
  opts.transfer_thread = cfg.transfer_thread;
  // More than the default cap of readers: let them all in at once, so the
  // row measures fan-out and not the readers monitor's queue.
  opts.max_readers = std::max(opts.max_readers, cfg.readers);
  return opts;
}

// -- blocking and zerocopy: blocking_reader on std::threads -----------------

void blocking_loop(const stream& s, reader_out& out) {
  auto r = s.open_reader();
  if (!r) {
    out.error = "open_reader: " + render(r.error());
    return;
  }
  std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
  for (;;) {
    auto n = r->read(buf.get(), read_size);
    if (!n) {
      out.error = "read: " + render(n.error());
      return;
    }
    if (*n == 0)
      return;
    out.tally.touch(buf.get(), *n);
  }
}

void zerocopy_loop(const stream& s, reader_out& out) {
  auto r = s.open_reader();
  if (!r) {
    out.error = "open_reader: " + render(r.error());
    return;
  }
  for (;;) {
    auto xs = r->read_slices(read_size);
    if (!xs) {
      out.error = "read_slices: " + render(xs.error());
      return;
    }
    if (xs->empty())
      return;
    for (auto& x : *xs)
      out.tally.touch(x.data(), x.size());
  }
}

// -- actor: event-based actors chaining async_reader::read -----------------

/// One actor's reader. Owned by the actor's state only (handlers hold a raw
/// pointer), so it is destroyed when the actor is cleaned up, after the
/// handler that finished it has returned.
struct actor_reader {
  caf::event_based_actor* self = nullptr;
  async_reader reader;
  std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
  reader_out* out = nullptr;
  countdown* done = nullptr;

  void next() {
    reader.read(buf.get(), read_size,
                [this](caf::expected<std::size_t> n) { on_read(n); });
  }

  void on_read(caf::expected<std::size_t>& n) {
    if (!n) {
      finish("read: " + render(n.error()));
      return;
    }
    if (*n == 0) {
      finish({});
      return;
    }
    out->tally.touch(buf.get(), *n);
    next();
  }

  void finish(std::string err) {
    out->error = std::move(err);
    reader.close();
    self->quit();
    done->arrive();
  }
};

struct actor_holder {
  std::unique_ptr<actor_reader> r;
  static inline const char* name = "asyncstream.bench.reader";
};

caf::behavior fanout_actor(caf::stateful_actor<actor_holder>* self, stream s,
                           reader_out* out, countdown* done) {
  self->state.r = std::make_unique<actor_reader>();
  auto* r = self->state.r.get();
  r->self = self;
  r->out = out;
  r->done = done;
  async_reader::open(self, s, [r](caf::expected<async_reader> x) {
    if (!x) {
      r->out->error = "open: " + render(x.error());
      r->self->quit();
      r->done->arrive();
      return;
    }
    r->reader = std::move(*x);
    r->next();
  });
  // Nothing is sent to it; the behavior only keeps it alive until quit().
  return {[](int) {}};
}

// -- reference: one mutex + condition variable chunk list ------------------

struct reference_store {
  /// With --warm-memory: one pre-faulted block the chunks are cut from.
  std::unique_ptr<std::byte[]> arena;
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::byte*> chunks;
  std::vector<std::unique_ptr<std::byte[]>> owned;
  std::vector<std::size_t> sizes;
  std::size_t count = 0;
  bool done = false;
};

void reference_writer(reference_store& st, const source_data& src) {
  const auto* data = src.bytes.data();
  auto size = src.bytes.size();
  for (std::size_t off = 0; off < size; off += read_size) {
    auto n = std::min(read_size, size - off);
    std::unique_ptr<std::byte[]> fresh;
    std::byte* chunk = nullptr;
    if (st.arena) {
      chunk = st.arena.get() + off;
    } else {
      fresh.reset(new std::byte[n]);
      chunk = fresh.get();
    }
    std::memcpy(chunk, data + off, n);
    {
      std::lock_guard<std::mutex> guard{st.mtx};
      st.chunks.push_back(chunk);
      if (fresh)
        st.owned.push_back(std::move(fresh));
      st.sizes.push_back(n);
      ++st.count;
    }
    st.cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.done = true;
  }
  st.cv.notify_all();
}

void reference_reader(reference_store& st, reader_out& out) {
  std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
  for (std::size_t i = 0;; ++i) {
    const std::byte* ptr = nullptr;
    std::size_t n = 0;
    {
      std::unique_lock<std::mutex> guard{st.mtx};
      st.cv.wait(guard, [&] { return st.count > i || st.done; });
      if (st.count <= i)
        return;
      ptr = st.chunks[i];
      n = st.sizes[i];
    }
    std::memcpy(buf.get(), ptr, n);
    out.tally.touch(buf.get(), n);
  }
}

// -- checks -------------------------------------------------------------------

/// Checks readers `first`, `first + 1`, ... of `outs` against `expected`
/// (the stream's length and checksum).
std::string check(const std::vector<reader_out>& outs,
                  const reader_tally& expected, std::size_t first = 0) {
  for (std::size_t i = first; i < outs.size(); ++i) {
    auto& o = outs[i];
    if (!o.error.empty())
      return "reader " + std::to_string(i) + ": " + o.error;
    if (o.tally.pos != expected.pos)
      return "reader " + std::to_string(i) + " read "
             + std::to_string(o.tally.pos) + " bytes, expected "
             + std::to_string(expected.pos);
    if (o.tally.sum != expected.sum)
      return "reader " + std::to_string(i) + ": checksum "
             + std::to_string(o.tally.sum) + ", expected "
             + std::to_string(expected.sum);
  }
  return {};
}

/// Marks `rec` as passed, or failed with `err`, and returns it.
fanout_record& conclude(fanout_record& rec, const std::string& err) {
  if (!err.empty())
    set_error(rec.error, err);
  else
    rec.ok = 1;
  return rec;
}

/// The length and checksum of the whole of `src`.
reader_tally whole(const source_data& src) {
  return {src.bytes.size(), src.checksum};
}

void finish_record(fanout_record& rec, const cpu_meter& meter,
                   clock::time_point t0, clock::time_point t1) {
  rec.seconds = std::chrono::duration<double>(t1 - t0).count();
  rec.peak_rss_mib = proc_status_mib("VmHWM");
  rec.foreign_cpu_pct = meter.foreign_pct(rec.seconds);
}

/// Returns how much the process-wide pools of a kernel row have mapped,
/// MiB (a stream's chunks grow through several sizes, one pool each).
double pool_mapped_mib(std::size_t) {
  auto bytes = chunk_pool::shared_stats().mapped_bytes;
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

/// Acquires enough chunks for `bytes` from the process-wide pools the
/// stream will use (its first, smaller chunks and then `chunk_size` ones),
/// faults their pages in, and gives them back: they stay cached (resident)
/// in the pools, and the stream's producer reuses them.
void warm_pool(std::size_t chunk_size, std::size_t bytes) {
  std::vector<mutable_chunk_ptr> chunks;
  auto touch = [&](const std::shared_ptr<chunk_pool>& pool) {
    chunks.push_back(pool->acquire());
    std::memset(chunks.back()->mutable_data(), 0, pool->chunk_size());
  };
  auto max = chunk_pool::round_chunk_size(chunk_size);
  for (auto size = detail::chunk_sizer::first_size; size < max;
       size *= detail::chunk_sizer::growth)
    touch(chunk_pool::shared(size));
  auto pool = chunk_pool::shared(max);
  for (std::size_t n = 0; n < bytes + 2 * pool->chunk_size();
       n += pool->chunk_size())
    touch(pool);
}

fanout_record run_kernel_row(const fanout_config& cfg) {
  fanout_record rec;
  rec.baseline_rss_mib = proc_status_mib("VmRSS");
  const auto& src = *cfg.source;
  std::vector<reader_out> outs(cfg.readers);
  countdown done{cfg.readers}; // outlives the actors that arrive at it
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  auto opts = make_stream_options(cfg);
  if (cfg.warm_memory)
    warm_pool(opts.chunk_size, src.bytes.size());
  {
    cpu_meter meter;
    auto t0 = clock::now();
    auto s = stream::make(sys, source::from_function(make_read_function(src)),
                          opts);
    if (!s) {
      set_error(rec.error, "stream::make: " + render(s.error()));
      return rec;
    }
    if (cfg.what == kind::actor) {
      for (std::size_t i = 0; i < cfg.readers; ++i)
        sys.spawn(fanout_actor, *s, &outs[i], &done);
      done.wait();
    } else {
      std::vector<std::thread> threads;
      threads.reserve(cfg.readers);
      for (std::size_t i = 0; i < cfg.readers; ++i) {
        if (cfg.what == kind::zerocopy)
          threads.emplace_back([&s, &outs, i] { zerocopy_loop(*s, outs[i]); });
        else
          threads.emplace_back([&s, &outs, i] { blocking_loop(*s, outs[i]); });
      }
      for (auto& t : threads)
        t.join();
    }
    auto t1 = clock::now();
    finish_record(rec, meter, t0, t1);
    rec.pool_mapped_mib = pool_mapped_mib(opts.chunk_size);
  }
  // The stream handle is gone; the actors' readers release it as they exit.
  return conclude(rec, check(outs, whole(src)));
}

// -- writer and untethered: a pushed stream fed by a producer thread ---------

/// Checksum of the first `n` source bytes as a reader computes it.
std::uint64_t prefix_checksum(const source_data& src, std::uint64_t n) {
  reader_tally t;
  t.touch(src.bytes.data(), static_cast<std::size_t>(n));
  return t.sum;
}

/// One reader of a pushed stream: the "blocking" loop, with an optional
/// stall (read 1 byte, wait for `stall_until`, read on). Arrives at
/// `opened` once its open returned, whatever it returned.
void pushed_loop(const stream& s, reader_out& out, int& data_loss,
                 countdown& opened, const std::shared_future<void>* stall_until) {
  auto r = s.open_reader();
  opened.arrive();
  if (!r) {
    out.error = "open_reader: " + render(r.error());
    return;
  }
  std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
  auto fail = [&](const char* what, const caf::error& err) {
    data_loss = is(err, errc::data_loss) ? 1 : 0;
    out.error = std::string{what} + " at offset " + std::to_string(out.tally.pos)
                + ": " + render(err);
  };
  if (stall_until != nullptr) {
    auto n = r->read(buf.get(), 1);
    if (!n) {
      fail("read", n.error());
      return;
    }
    out.tally.touch(buf.get(), *n);
    stall_until->wait();
  }
  for (;;) {
    auto n = r->read(buf.get(), read_size);
    if (!n) {
      fail("read", n.error());
      return;
    }
    if (*n == 0)
      return;
    out.tally.touch(buf.get(), *n);
  }
}

fanout_record run_push_row(const fanout_config& cfg) {
  fanout_record rec;
  rec.baseline_rss_mib = proc_status_mib("VmRSS");
  const auto& src = *cfg.source;
  const bool untethered = cfg.what == kind::untethered;
  if (untethered && cfg.readers < 2) {
    set_error(rec.error, "the untethered kind needs at least 2 readers");
    return rec;
  }
  // Reader 0 of the untethered kind is the stalled one.
  const std::size_t first_fast = untethered ? 1 : 0;
  std::vector<reader_out> outs(cfg.readers);
  std::vector<int> losses(cfg.readers, 0);
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  auto opts = make_stream_options(cfg);
  if (untethered) {
    opts.retention = cfg.window;
    opts.policy = retention_policy::untethered;
  }
  if (cfg.what == kind::filebacked) {
    file_storage fs;
    fs.directory = cfg.file_dir;
    opts.file = fs;
  }
  // What the readers must see: the producer tallies what it writes.
  reader_tally expected;
  const std::size_t cycle = src.bytes.size() - read_size;
  if (cfg.generated_bytes > 0 && untethered) {
    set_error(rec.error, "the untethered kind reads its source, not a "
                         "generated stream");
    return rec;
  }
  if (cfg.generated_bytes > 0 && src.bytes.size() < (1u << 20) + read_size) {
    set_error(rec.error, "a generated stream needs a source of 1 MiB + 64 KiB");
    return rec;
  }
  if (cfg.warm_memory)
    warm_pool(opts.chunk_size,
              untethered ? static_cast<std::size_t>(std::min<std::uint64_t>(
                src.bytes.size(), cfg.window))
                         : src.bytes.size());
  std::string producer_error;
  {
    std::promise<void> closed_promise;
    std::shared_future<void> closed = closed_promise.get_future().share();
    countdown opened{cfg.readers};
    cpu_meter meter;
    auto t0 = clock::now();
    auto s = stream::make(sys, source::push(), opts);
    if (!s) {
      set_error(rec.error, "stream::make: " + render(s.error()));
      return rec;
    }
    auto w = s->writer();
    if (!w) {
      set_error(rec.error, "stream::writer: " + render(w.error()));
      return rec;
    }
    std::vector<std::thread> threads;
    threads.reserve(cfg.readers);
    for (std::size_t i = 0; i < cfg.readers; ++i) {
      const std::shared_future<void>* stall
        = untethered && i == 0 ? &closed : nullptr;
      threads.emplace_back([&s, &outs, &losses, &opened, stall, i] {
        pushed_loop(*s, outs[i], losses[i], opened, stall);
      });
    }
    // The producer starts once every reader has opened at offset 0: with a
    // retention window, a reader that opened late would find the start gone.
    std::thread producer{[&] {
      opened.wait();
      // The producer's own tally is what the readers must match. A
      // generated stream's byte k is source byte k % cycle; the source holds
      // its first 64 KiB twice, so every write is one contiguous piece.
      const auto* data = src.bytes.data();
      const bool generated = cfg.generated_bytes > 0;
      const std::uint64_t total = generated ? cfg.generated_bytes
                                            : src.bytes.size();
      expected = reader_tally{};
      for (std::uint64_t off = 0; off < total; off += read_size) {
        auto n = static_cast<std::size_t>(
          std::min<std::uint64_t>(read_size, total - off));
        const auto* p = data + (generated ? off % cycle : off);
        expected.touch(p, n);
        if (auto err = w->write(p, n)) {
          producer_error = "write at offset " + std::to_string(off) + ": "
                           + render(err);
          break;
        }
      }
      if (auto err = w->close(); err && producer_error.empty())
        producer_error = "close: " + render(err);
      closed_promise.set_value();
    }};
    for (std::size_t i = first_fast; i < cfg.readers; ++i)
      threads[i].join();
    auto t1 = clock::now();
    finish_record(rec, meter, t0, t1);
    rec.pool_mapped_mib = pool_mapped_mib(opts.chunk_size);
    producer.join();
    for (std::size_t i = 0; i < first_fast; ++i)
      threads[i].join();
    // The stalled reader's read-on may have raised the peak a little.
    rec.peak_rss_mib = proc_status_mib("VmHWM");
  }
  if (!producer_error.empty()) {
    set_error(rec.error, "producer: " + producer_error);
    return rec;
  }
  for (std::size_t i = first_fast; i < cfg.readers; ++i) {
    if (losses[i] != 0) {
      set_error(rec.error,
                "fast reader " + std::to_string(i)
                  + " fell behind the retention window (data_loss): "
                  + outs[i].error);
      return rec;
    }
  }
  auto err = check(outs, expected, first_fast);
  if (err.empty() && untethered) {
    auto& st = outs[0];
    rec.stalled_read_bytes = st.tally.pos;
    reader_options ropts;
    // Bytes the stalled reader may still get after the window moved on: the
    // slices it already holds (up to one prefetch) and the chunk granularity
    // of the drop.
    auto slack = cfg.window + opts.chunk_size + ropts.prefetch;
    if (losses[0] != 0 && src.bytes.size() <= cfg.window) {
      err = "stalled reader: data_loss though bytes <= window: " + st.error;
    } else if (losses[0] != 0) {
      rec.stalled_data_loss = 1;
      if (st.tally.sum != prefix_checksum(src, st.tally.pos))
        err = "stalled reader: checksum of the " + std::to_string(st.tally.pos)
              + " bytes before data_loss is wrong";
    } else if (!st.error.empty()) {
      err = "stalled reader: expected data_loss, got " + st.error;
    } else if (src.bytes.size() > slack) {
      err = "stalled reader: read all " + std::to_string(st.tally.pos)
            + " bytes, expected data_loss (bytes > window)";
    } else {
      err = check({st}, expected);
      if (!err.empty())
        err = "stalled reader: " + err;
    }
  }
  return conclude(rec, err);
}

fanout_record run_reference_row(const fanout_config& cfg) {
  fanout_record rec;
  rec.baseline_rss_mib = proc_status_mib("VmRSS");
  const auto& src = *cfg.source;
  std::vector<reader_out> outs(cfg.readers);
  {
    reference_store st;
    st.chunks.reserve(src.bytes.size() / read_size + 1);
    st.sizes.reserve(src.bytes.size() / read_size + 1);
    st.owned.reserve(src.bytes.size() / read_size + 1);
    if (cfg.warm_memory) {
      st.arena.reset(new std::byte[src.bytes.size()]);
      std::memset(st.arena.get(), 0, src.bytes.size());
    }
    cpu_meter meter;
    auto t0 = clock::now();
    std::thread writer{[&] { reference_writer(st, src); }};
    std::vector<std::thread> threads;
    threads.reserve(cfg.readers);
    for (std::size_t i = 0; i < cfg.readers; ++i)
      threads.emplace_back([&st, &outs, i] { reference_reader(st, outs[i]); });
    for (auto& t : threads)
      t.join();
    writer.join();
    auto t1 = clock::now();
    finish_record(rec, meter, t0, t1);
  }
  return conclude(rec, check(outs, whole(src)));
}

} // namespace

fanout_record run_fanout_row(const fanout_config& cfg) {
  if (cfg.what == kind::reference)
    return run_reference_row(cfg);
  if (cfg.what == kind::writer || cfg.what == kind::untethered
      || cfg.what == kind::filebacked)
    return run_push_row(cfg);
  return run_kernel_row(cfg);
}

} // namespace asyncstream::bench
