#include "wakeup.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/detail/wake_trace.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"

#include "system.hpp"

namespace asyncstream::bench {

namespace {

/// The kernel's struct sched_attr (not in glibc's headers).
struct linux_sched_attr {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
};

/// Iterations run first and not counted (caches, lazy allocations).
constexpr std::size_t warmup_iterations = 200;

/// Ack bytes: 'k' is fine, 'x' means the reader failed.
constexpr char ack_ok = 'k';
constexpr char ack_fail = 'x';

/// A pair of pipe descriptors closed on scope exit.
struct pipe_pair {
  int fds[2] = {-1, -1};

  bool open() {
    return ::pipe2(fds, O_CLOEXEC) == 0;
  }

  void close_write() {
    if (fds[1] >= 0) {
      ::close(fds[1]);
      fds[1] = -1;
    }
  }

  /// Forgets the read end (a stream took ownership of it).
  int release_read() {
    auto fd = fds[0];
    fds[0] = -1;
    return fd;
  }

  ~pipe_pair() {
    for (auto fd : fds)
      if (fd >= 0)
        ::close(fd);
  }
};

bool write_byte(int fd, char c) {
  for (;;) {
    auto res = ::write(fd, &c, 1);
    if (res == 1)
      return true;
    if (res < 0 && errno == EINTR)
      continue;
    return false;
  }
}

bool read_byte(int fd, char& c) {
  for (;;) {
    auto res = ::read(fd, &c, 1);
    if (res == 1)
      return true;
    if (res < 0 && errno == EINTR)
      continue;
    return false;
  }
}

/// `--wakeup-priority`: how the calling thread (one of the row's own
/// threads: a writer, a blocking reader, the echo) asks the OS to schedule
/// it. "normal" leaves it; "slice" keeps SCHED_OTHER but asks for a 100 us
/// time slice (sched_setattr, Linux 6.12+ EEVDF: a woken task with a shorter
/// slice may preempt the running one; no privilege needed); "fifo" makes it
/// SCHED_FIFO priority 10 (needs CAP_SYS_NICE). Returns an error text.
std::string apply_priority(const std::string& how) {
  if (how.empty() || how == "normal")
    return {};
  if (how == "fifo") {
    sched_param sp{};
    sp.sched_priority = 10;
    if (auto rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
      return std::string{"SCHED_FIFO: "} + std::strerror(rc);
    return {};
  }
  if (how == "slice") {
    linux_sched_attr attr{};
    attr.size = sizeof(attr);
    attr.sched_policy = SCHED_OTHER;
    attr.sched_runtime = 100 * 1000; // ns: the requested slice
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0)
      return std::string{"sched_setattr: "} + std::strerror(errno);
    return {};
  }
  return "unknown priority " + how;
}

/// Applies `--wakeup-priority` to the calling thread for its lifetime (or
/// until the end of the scope: the main thread gets its own back).
class priority_scope {
public:
  explicit priority_scope(const std::string& how) {
    if (how.empty() || how == "normal")
      return;
    error_ = apply_priority(how);
    applied_ = error_.empty();
  }

  ~priority_scope() {
    if (!applied_)
      return;
    sched_param sp{};
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    linux_sched_attr attr{};
    attr.size = sizeof(attr);
    attr.sched_policy = SCHED_OTHER; // sched_runtime 0: the default slice
    ::syscall(SYS_sched_setattr, 0, &attr, 0);
  }

  const std::string& error() const {
    return error_;
  }

private:
  std::string error_;
  bool applied_ = false;
};

/// Sorts the measured latencies and fills the percentiles.
void summarize(std::vector<double>& us, wakeup_record& rec) {
  if (us.empty())
    return;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p * us.size()));
    rank = std::clamp<std::size_t>(rank, 1, us.size());
    return us[rank - 1];
  };
  rec.p50_us = pct(0.50);
  rec.p90_us = pct(0.90);
  rec.p99_us = pct(0.99);
  rec.max_us = us.back();
  double sum = 0;
  for (auto x : us)
    sum += x;
  rec.mean_us = sum / us.size();
}

/// The writer side shared by both variants: `emit` makes one byte
/// available; the reader answers on `ack`.
template <class Emit>
std::string drive(const wakeup_config& cfg, int ack,
                  std::vector<clock::time_point>& sent, Emit emit) {
  for (std::size_t i = 0; i < sent.size(); ++i) {
    if (cfg.gap_us > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(cfg.gap_us));
    sent[i] = clock::now();
    if (!emit())
      return "writer: cannot make a byte available";
    char c = 0;
    if (!read_byte(ack, c))
      return "writer: acknowledgement pipe closed";
    if (c != ack_ok)
      return {};
  }
  return {};
}

/// Per iteration, the hop timestamps of detail::wake_trace (ns; 0 = not
/// reached), when the library was built with them.
using hop_stamps
  = std::vector<std::array<std::int64_t, detail::wake_trace::count>>;

/// Takes the hop timestamps of iteration `i` (call when its read returned).
void take_hops(hop_stamps& hops, std::size_t i) {
  if (!detail::wake_trace::enabled())
    return;
  std::int64_t tmp[detail::wake_trace::count];
  detail::wake_trace::take(tmp);
  std::copy(std::begin(tmp), std::end(tmp), hops[i].begin());
}

/// Fills the per-hop p50s of `rec` (time after the write, microseconds).
void summarize_hops(const std::vector<clock::time_point>& sent,
                    const hop_stamps& hops, wakeup_record& rec) {
  if (!detail::wake_trace::enabled() || hops.empty())
    return;
  rec.hops = std::min<int>(detail::wake_trace::count, wakeup_record::max_hops);
  for (int h = 0; h < rec.hops; ++h) {
    std::vector<double> us;
    for (auto i = warmup_iterations; i < sent.size(); ++i) {
      auto t = hops[i][h];
      auto t0 = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  sent[i].time_since_epoch())
                  .count();
      if (t != 0 && t >= t0)
        us.push_back((t - t0) / 1000.0);
    }
    if (us.size() * 2 < sent.size() - warmup_iterations) {
      rec.hop_p50_us[h] = -1;
      continue;
    }
    std::sort(us.begin(), us.end());
    rec.hop_p50_us[h] = us[us.size() / 2];
  }
}

wakeup_record collect(const std::vector<clock::time_point>& sent,
                      const std::vector<clock::time_point>& got,
                      const std::string& writer_error,
                      const std::string& reader_error) {
  wakeup_record rec;
  if (!reader_error.empty()) {
    set_error(rec.error, reader_error);
    return rec;
  }
  if (!writer_error.empty()) {
    set_error(rec.error, writer_error);
    return rec;
  }
  std::vector<double> us;
  us.reserve(sent.size());
  for (auto i = warmup_iterations; i < sent.size(); ++i)
    us.push_back(
      std::chrono::duration<double, std::micro>(got[i] - sent[i]).count());
  summarize(us, rec);
  rec.ok = 1;
  return rec;
}

} // namespace

namespace {

/// `--wakeup-load N`: N blocking readers stream a pushed stream of their own
/// at full speed (64 KiB reads, a tethered 16 MiB window, one producer
/// thread writing 64 KiB at a time) in the measured row's actor system,
/// from before its first iteration until after its last.
class background_load {
public:
  background_load() = default;
  background_load(const background_load&) = delete;
  background_load& operator=(const background_load&) = delete;

  ~background_load() {
    stop();
  }

  /// Starts the load; returns once every reader has its slot. An error
  /// text if that fails.
  std::string start(caf::actor_system& sys, std::size_t readers) {
    if (readers == 0)
      return {};
    stream_options opts;
    opts.retention = 16 * 1024 * 1024;
    opts.policy = retention_policy::tethered;
    opts.max_readers = readers;
    auto s = stream::make(sys, source::push(), opts);
    if (!s)
      return "load stream: " + render(s.error());
    stream_.emplace(std::move(*s));
    auto w = stream_->writer();
    if (!w)
      return "load writer: " + render(w.error());
    std::size_t opened = 0;
    std::string err;
    std::mutex mtx;
    std::condition_variable cv;
    for (std::size_t i = 0; i < readers; ++i)
      threads_.emplace_back([&, this] {
        auto r = stream_->open_reader();
        {
          std::lock_guard<std::mutex> guard{mtx};
          if (!r && err.empty())
            err = "load reader: " + render(r.error());
          ++opened;
        }
        cv.notify_all();
        if (!r)
          return;
        std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
        for (;;) {
          auto n = r->read(buf.get(), read_size);
          if (!n || *n == 0)
            return; // aborted at the end of the row
          bytes_.fetch_add(*n, std::memory_order_relaxed);
        }
      });
    {
      std::unique_lock<std::mutex> guard{mtx};
      cv.wait(guard, [&] { return opened == readers; });
    }
    if (!err.empty())
      return err;
    threads_.emplace_back([this, w = std::move(*w)]() mutable {
      std::vector<std::byte> chunk(read_size, std::byte{'l'});
      while (!stopping_.load(std::memory_order_relaxed))
        if (w.write(chunk.data(), chunk.size()))
          break;
      w.close();
    });
    return {};
  }

  /// Ends the load: aborts its stream, joins its threads.
  void stop() {
    if (!stream_)
      return;
    stopping_ = true;
    stream_->abort();
    for (auto& t : threads_)
      t.join();
    threads_.clear();
    stream_.reset();
  }

  std::uint64_t bytes() const {
    return bytes_.load();
  }

private:
  std::optional<stream> stream_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> bytes_{0};
};

/// An actor that reads one byte at a time with `async_reader::read`,
/// stamping and acknowledging each like the blocking reader does.
struct async_wake_reader {
  caf::event_based_actor* self = nullptr;
  async_reader reader;
  std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
  std::vector<clock::time_point>* got = nullptr;
  hop_stamps* hops = nullptr;
  std::string* error = nullptr;
  int ack = -1;
  std::size_t i = 0;
  std::promise<void>* done = nullptr;

  void next() {
    reader.read(buf.get(), read_size,
                [this](caf::expected<std::size_t> n) { on_read(n); });
  }

  void on_read(caf::expected<std::size_t>& n) {
    (*got)[i] = clock::now();
    take_hops(*hops, i);
    if (!n || *n != 1) {
      finish(!n ? "read: " + render(n.error())
                : "read returned " + std::to_string(*n) + " bytes, expected 1");
      return;
    }
    write_byte(ack, ack_ok);
    if (++i == got->size()) {
      finish({});
      return;
    }
    next();
  }

  void finish(std::string err) {
    if (!err.empty()) {
      *error = std::move(err);
      write_byte(ack, ack_fail);
    }
    if (reader.valid())
      reader.close();
    self->quit();
    done->set_value();
  }
};

struct async_wake_holder {
  std::unique_ptr<async_wake_reader> r;
  static inline const char* name = "asyncstream.bench.wake_reader";
};

caf::behavior async_wake_actor(caf::stateful_actor<async_wake_holder>* self,
                               stream s, async_wake_reader* r) {
  self->state.r.reset(r);
  r->self = self;
  async_reader::open(self, s, [r](caf::expected<async_reader> x) {
    if (!x) {
      r->finish("open: " + render(x.error()));
      return;
    }
    r->reader = std::move(*x);
    write_byte(r->ack, ack_ok); // ready
    r->next();
  });
  return {[](int) {}};
}

/// Runs the kernel's rows: the producer is a `stream_writer` (`pushed`) or
/// a pipe that a source reader pulls; the reader a thread in
/// `blocking_reader::read` or an actor chaining `async_reader::read`.
wakeup_record run_kernel_variant(const wakeup_config& cfg, bool pushed,
                                 bool async) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<clock::time_point> sent(total);
  std::vector<clock::time_point> got(total);
  hop_stamps hops(detail::wake_trace::enabled() ? total : 0);
  std::string writer_error;
  std::string reader_error;
  pipe_pair data;
  pipe_pair ack;
  auto fail = [](std::string what) {
    wakeup_record rec;
    set_error(rec.error, what);
    return rec;
  };
  if ((!pushed && !data.open()) || !ack.open())
    return fail(std::string{"pipe: "} + std::strerror(errno));
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  background_load load;
  if (auto err = load.start(sys, cfg.load_readers); !err.empty())
    return fail(err);
  cpu_meter meter;
  auto t0 = clock::now();
  {
    stream_options sopts;
    sopts.transfer_thread = cfg.transfer_thread;
    auto s = stream::make(
      sys, pushed ? source::push() : source::from_fd(data.release_read(), true),
      sopts);
    if (!s)
      return fail("stream::make: " + render(s.error()));
    std::optional<stream_writer> writer;
    if (pushed) {
      auto w = s->writer();
      if (!w)
        return fail("stream::writer: " + render(w.error()));
      writer.emplace(std::move(*w));
    }
    std::thread reader;
    std::promise<void> actor_done;
    if (async) {
      auto* r = new async_wake_reader;
      r->got = &got;
      r->hops = &hops;
      r->error = &reader_error;
      r->ack = ack.fds[1];
      r->done = &actor_done;
      sys.spawn(async_wake_actor, *s, r);
    } else {
      reader = std::thread{[&] {
        priority_scope prio{cfg.priority};
        if (!prio.error().empty()) {
          reader_error = prio.error();
          write_byte(ack.fds[1], ack_fail);
          return;
        }
        auto r = s->open_reader();
        if (!r) {
          reader_error = "open_reader: " + render(r.error());
          write_byte(ack.fds[1], ack_fail);
          return;
        }
        write_byte(ack.fds[1], ack_ok); // ready
        std::unique_ptr<std::byte[]> buf{new std::byte[read_size]};
        for (std::size_t i = 0; i < total; ++i) {
          auto n = r->read(buf.get(), read_size);
          got[i] = clock::now();
          take_hops(hops, i);
          if (!n || *n != 1) {
            reader_error = !n ? "read: " + render(n.error())
                              : "read returned " + std::to_string(*n)
                                  + " bytes, expected 1";
            write_byte(ack.fds[1], ack_fail);
            return;
          }
          write_byte(ack.fds[1], ack_ok);
        }
      }};
    }
    char c = 0;
    priority_scope prio{cfg.priority};
    if (!prio.error().empty())
      writer_error = prio.error();
    else if (read_byte(ack.fds[0], c) && c == ack_ok) {
      writer_error = drive(cfg, ack.fds[0], sent, [&] {
        if (writer)
          return !writer->write("b", 1);
        return write_byte(data.fds[1], 'b');
      });
    }
    if (!writer_error.empty())
      s->abort(); // wakes the reader with `canceled`
    if (async)
      actor_done.get_future().wait();
    else
      reader.join();
    if (writer)
      writer->close();
    else
      data.close_write(); // the source reader sees the end of the pipe
  }
  auto rec = collect(sent, got, writer_error, reader_error);
  summarize_hops(sent, hops, rec);
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

/// A byte queue of the reference: one mutex and condition variable.
struct reference_queue {
  std::mutex mtx;
  std::condition_variable cv;
  std::size_t produced = 0;
  std::size_t consumed = 0;

  void put() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      ++produced;
    }
    cv.notify_one();
  }

  void get() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [this] { return produced > consumed; });
    consumed = produced;
  }
};

} // namespace

wakeup_record run_wakeup_kernel(const wakeup_config& cfg) {
  return run_kernel_variant(cfg, false, false);
}

wakeup_record run_wakeup_writer(const wakeup_config& cfg) {
  return run_kernel_variant(cfg, true, false);
}

wakeup_record run_wakeup_async(const wakeup_config& cfg) {
  return run_kernel_variant(cfg, true, true);
}

wakeup_record run_wakeup_reference(const wakeup_config& cfg) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<clock::time_point> sent(total);
  std::vector<clock::time_point> got(total);
  std::string writer_error;
  pipe_pair ack;
  wakeup_record rec;
  if (!ack.open()) {
    set_error(rec.error, std::string{"pipe: "} + std::strerror(errno));
    return rec;
  }
  // The same load as the kernel's rows get, in an actor system of its own.
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  background_load load;
  if (auto err = load.start(sys, cfg.load_readers); !err.empty()) {
    set_error(rec.error, err);
    return rec;
  }
  reference_queue q;
  cpu_meter meter;
  auto t0 = clock::now();
  std::thread reader{[&] {
    priority_scope prio{cfg.priority};
    for (std::size_t i = 0; i < total; ++i) {
      q.get();
      got[i] = clock::now();
      write_byte(ack.fds[1], ack_ok);
    }
  }};
  {
    priority_scope prio{cfg.priority};
    writer_error = prio.error();
    if (writer_error.empty())
      writer_error = drive(cfg, ack.fds[0], sent, [&] {
        q.put();
        return true;
      });
  }
  if (!writer_error.empty())
    for (std::size_t i = 0; i < total; ++i)
      q.put(); // lets the reader finish
  reader.join();
  rec = collect(sent, got, writer_error, {});
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

wakeup_record run_wakeup_ref_pipe(const wakeup_config& cfg) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<clock::time_point> sent(total);
  std::vector<clock::time_point> got(total);
  std::string writer_error;
  pipe_pair data;
  pipe_pair ack;
  wakeup_record rec;
  if (!data.open() || !ack.open()) {
    set_error(rec.error, std::string{"pipe: "} + std::strerror(errno));
    return rec;
  }
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  background_load load;
  if (auto err = load.start(sys, cfg.load_readers); !err.empty()) {
    set_error(rec.error, err);
    return rec;
  }
  reference_queue q;
  cpu_meter meter;
  auto t0 = clock::now();
  // The pulled path's threads without the kernel: a relay thread in
  // poll(2) + read(2) on the pipe, as the source reader does, hands each
  // byte to the reader through the reference queue.
  std::thread relay{[&] {
    pollfd pfd{data.fds[0], POLLIN, 0};
    char buf[64];
    for (;;) {
      if (::poll(&pfd, 1, -1) < 0 && errno == EINTR)
        continue;
      auto n = ::read(data.fds[0], buf, sizeof(buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return; // the writer closed the pipe
      for (ssize_t i = 0; i < n; ++i)
        q.put();
    }
  }};
  std::thread reader{[&] {
    priority_scope prio{cfg.priority};
    for (std::size_t i = 0; i < total; ++i) {
      q.get();
      got[i] = clock::now();
      write_byte(ack.fds[1], ack_ok);
    }
  }};
  {
    priority_scope prio{cfg.priority};
    writer_error = prio.error();
    if (writer_error.empty())
      writer_error = drive(cfg, ack.fds[0], sent,
                           [&] { return write_byte(data.fds[1], 'b'); });
  }
  if (!writer_error.empty())
    for (std::size_t i = 0; i < total; ++i)
      q.put(); // lets the reader finish
  data.close_write();
  relay.join();
  reader.join();
  rec = collect(sent, got, writer_error, {});
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

wakeup_record run_wakeup_ref_actor(const wakeup_config& cfg) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<clock::time_point> sent(total);
  std::vector<clock::time_point> got(total);
  std::string writer_error;
  pipe_pair ack;
  wakeup_record rec;
  if (!ack.open()) {
    set_error(rec.error, std::string{"pipe: "} + std::strerror(errno));
    return rec;
  }
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  background_load load;
  if (auto err = load.start(sys, cfg.load_readers); !err.empty()) {
    set_error(rec.error, err);
    return rec;
  }
  cpu_meter meter;
  auto t0 = clock::now();
  // CAF alone: an event-based actor woken by a message from a thread.
  auto fd = ack.fds[1];
  auto* got_ptr = &got;
  auto actor = sys.spawn([got_ptr, fd](caf::event_based_actor* self)
                           -> caf::behavior {
    return {
      [got_ptr, fd](std::uint64_t i) {
        (*got_ptr)[i] = clock::now();
        write_byte(fd, ack_ok);
      },
      [self](caf::exit_reason) { self->quit(); },
    };
  });
  std::uint64_t next = 0;
  writer_error = drive(cfg, ack.fds[0], sent, [&] {
    caf::anon_send(actor, next++);
    return true;
  });
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  rec = collect(sent, got, writer_error, {});
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

wakeup_record run_pingpong_kernel(const wakeup_config& cfg) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<double> us;
  us.reserve(cfg.iterations);
  wakeup_record rec;
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  background_load load;
  if (auto err = load.start(sys, cfg.load_readers); !err.empty()) {
    set_error(rec.error, err);
    return rec;
  }
  cpu_meter meter;
  auto t0 = clock::now();
  std::string echo_error;
  std::string error;
  {
    stream_options sopts;
    sopts.transfer_thread = cfg.transfer_thread;
    auto there = stream::make(sys, source::push(), sopts);
    auto back = stream::make(sys, source::push(), sopts);
    if (!there || !back) {
      set_error(rec.error, "stream::make: "
                             + render(!there ? there.error() : back.error()));
      return rec;
    }
    auto w_there = there->writer();
    auto w_back = back->writer();
    auto r_there = there->open_reader();
    auto r_back = back->open_reader();
    if (!w_there || !w_back || !r_there || !r_back) {
      set_error(rec.error, "cannot open the ping-pong streams' ends");
      return rec;
    }
    // The echo: reads a byte from the first stream, writes one to the second.
    std::thread echo{[&] {
      priority_scope prio{cfg.priority};
      std::byte b[16];
      for (std::size_t i = 0; i < total; ++i) {
        auto n = r_there->read(b, sizeof(b));
        if (!n || *n != 1) {
          echo_error = !n ? "echo read: " + render(n.error())
                          : "echo read returned " + std::to_string(*n);
          back->abort(); // wakes the ping
          return;
        }
        if (auto err = w_back->write("p", 1)) {
          echo_error = "echo write: " + render(err);
          back->abort();
          return;
        }
      }
    }};
    std::byte b[16];
    priority_scope prio{cfg.priority};
    error = prio.error();
    for (std::size_t i = 0; i < total && error.empty(); ++i) {
      if (cfg.gap_us > 0)
        std::this_thread::sleep_for(std::chrono::microseconds(cfg.gap_us));
      auto start = clock::now();
      if (auto err = w_there->write("p", 1)) {
        error = "ping write: " + render(err);
        break;
      }
      auto n = r_back->read(b, sizeof(b));
      auto stop = clock::now();
      if (!n || *n != 1) {
        error = !n ? "ping read: " + render(n.error())
                   : "ping read returned " + std::to_string(*n);
        break;
      }
      if (i >= warmup_iterations)
        us.push_back(
          std::chrono::duration<double, std::micro>(stop - start).count());
    }
    if (!error.empty())
      there->abort();
    echo.join();
  }
  if (!echo_error.empty() || !error.empty()) {
    set_error(rec.error, !echo_error.empty() ? echo_error : error);
    return rec;
  }
  summarize(us, rec);
  rec.ok = 1;
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

wakeup_record run_pingpong_reference(const wakeup_config& cfg) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<double> us;
  us.reserve(cfg.iterations);
  wakeup_record rec;
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  background_load load;
  if (auto err = load.start(sys, cfg.load_readers); !err.empty()) {
    set_error(rec.error, err);
    return rec;
  }
  cpu_meter meter;
  auto t0 = clock::now();
  reference_queue there;
  reference_queue back;
  std::thread echo{[&] {
    priority_scope prio{cfg.priority};
    for (std::size_t i = 0; i < total; ++i) {
      there.get();
      back.put();
    }
  }};
  priority_scope prio{cfg.priority};
  for (std::size_t i = 0; i < total; ++i) {
    if (cfg.gap_us > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(cfg.gap_us));
    auto start = clock::now();
    there.put();
    back.get();
    auto stop = clock::now();
    if (i >= warmup_iterations)
      us.push_back(
        std::chrono::duration<double, std::micro>(stop - start).count());
  }
  echo.join();
  summarize(us, rec);
  rec.ok = 1;
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

bool wakeup_variant_by_name(const std::string& name, const std::string& policy,
                            wakeup_variant& out) {
  out = wakeup_variant{};
  out.name = name;
  if (name == "thread") {
    out.transfer_thread = true;
    out.policy = policy;
    out.describe = "transfer actor on a thread of its own (" + policy
                   + " scheduler for the rest): one thread per stream";
  } else if (name == "sharing") {
    out.transfer_thread = false;
    out.policy = "sharing";
    out.describe = "transfer actor on CAF's scheduler, sharing policy "
                   "(workers sleep on one condition variable, every "
                   "enqueue signals it)";
  } else if (name == "stealing") {
    out.transfer_thread = false;
    out.policy = "stealing";
    out.describe = "transfer actor on CAF's scheduler, stealing policy with "
                   "CAF's defaults (an idle worker polls, then sleeps 50 us "
                   "between polls for a while, unwoken by new work)";
  } else if (name == "stealing-tuned") {
    out.transfer_thread = false;
    out.policy = "stealing";
    // Skip the phase of 50 us sleeps: after its short aggressive poll an
    // idle worker waits on its condition variable, which an enqueue from
    // outside the scheduler signals.
    out.settings = {{"work-stealing.moderate-poll-attempts", "0"}};
    out.describe = "transfer actor on CAF's scheduler, stealing policy with "
                   "work-stealing.moderate-poll-attempts=0 (no 50 us sleep "
                   "phase: an idle worker goes from polling straight to its "
                   "condition variable)";
  } else {
    return false;
  }
  return true;
}

} // namespace asyncstream::bench
