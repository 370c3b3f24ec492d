#include "wakeup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"

#include "system.hpp"

namespace asyncstream::bench {

namespace {

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

/// Runs the kernel's variants: `pushed` writes through a `stream_writer`,
/// otherwise through a pipe that a source reader pulls.
wakeup_record run_kernel_variant(const wakeup_config& cfg, bool pushed) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<clock::time_point> sent(total);
  std::vector<clock::time_point> got(total);
  std::string writer_error;
  std::string reader_error;
  pipe_pair data;
  pipe_pair ack;
  if ((!pushed && !data.open()) || !ack.open()) {
    wakeup_record rec;
    set_error(rec.error, std::string{"pipe: "} + std::strerror(errno));
    return rec;
  }
  caf::actor_system_config sys_cfg;
  setup_config(sys_cfg, cfg.scheduler_threads, cfg.scheduler_policy,
               cfg.settings);
  caf::actor_system sys{sys_cfg};
  cpu_meter meter;
  auto t0 = clock::now();
  {
    stream_options sopts;
    sopts.transfer_thread = cfg.transfer_thread;
    auto s = stream::make(sys,
                          pushed ? source::push()
                                 : source::from_fd(data.release_read(), true),
                          sopts);
    if (!s) {
      wakeup_record rec;
      set_error(rec.error, "stream::make: " + render(s.error()));
      return rec;
    }
    std::optional<stream_writer> writer;
    if (pushed) {
      auto w = s->writer();
      if (!w) {
        wakeup_record rec;
        set_error(rec.error, "stream::writer: " + render(w.error()));
        return rec;
      }
      writer.emplace(std::move(*w));
    }
    std::thread reader{[&] {
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
    char c = 0;
    if (read_byte(ack.fds[0], c) && c == ack_ok) {
      writer_error = drive(cfg, ack.fds[0], sent, [&] {
        if (writer)
          return !writer->write("b", 1);
        return write_byte(data.fds[1], 'b');
      });
    }
    if (!writer_error.empty())
      s->abort(); // wakes the reader with `canceled`
    reader.join();
    if (writer)
      writer->close();
    else
      data.close_write(); // the source reader sees the end of the pipe
  }
  auto rec = collect(sent, got, writer_error, reader_error);
  rec.foreign_cpu_pct = meter.foreign_pct(
    std::chrono::duration<double>(clock::now() - t0).count());
  return rec;
}

} // namespace

wakeup_record run_wakeup_kernel(const wakeup_config& cfg) {
  return run_kernel_variant(cfg, false);
}

wakeup_record run_wakeup_writer(const wakeup_config& cfg) {
  return run_kernel_variant(cfg, true);
}

wakeup_record run_wakeup_reference(const wakeup_config& cfg) {
  auto total = cfg.iterations + warmup_iterations;
  std::vector<clock::time_point> sent(total);
  std::vector<clock::time_point> got(total);
  std::string writer_error;
  pipe_pair ack;
  if (!ack.open()) {
    wakeup_record rec;
    set_error(rec.error, std::string{"pipe: "} + std::strerror(errno));
    return rec;
  }
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::byte> buffer;
  buffer.reserve(total);
  cpu_meter meter;
  auto t0 = clock::now();
  std::thread reader{[&] {
    std::size_t consumed = 0;
    for (std::size_t i = 0; i < total; ++i) {
      {
        std::unique_lock<std::mutex> guard{mtx};
        cv.wait(guard, [&] { return buffer.size() > consumed; });
        consumed = buffer.size();
      }
      got[i] = clock::now();
      write_byte(ack.fds[1], ack_ok);
    }
  }};
  writer_error = drive(cfg, ack.fds[0], sent, [&] {
    {
      std::lock_guard<std::mutex> guard{mtx};
      buffer.push_back(std::byte{'b'});
    }
    cv.notify_one();
    return true;
  });
  reader.join();
  auto rec = collect(sent, got, writer_error, {});
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
