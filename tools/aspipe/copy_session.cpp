#include "copy_session.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <climits>
#include <new>

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "cli_values.hpp"

using asyncstream::backed_pipe;
using asyncstream::errc;
using asyncstream::pipe_state;
using clock_type = std::chrono::steady_clock;

namespace aspipe {

namespace {

constexpr std::size_t buffer_size = 1024 * 1024;

/// What the two copy threads report to the main loop.
struct copy_state {
  std::mutex mtx;
  std::condition_variable cv; // signaled on every change below
  bool input_done = false;    // stdin ended and close_write() succeeded
  bool output_done = false;   // the peer's direction ended, all written out
  bool failed = false;
  int code = exit_ok;
  std::string message;

  void fail(int c, std::string what) {
    std::lock_guard<std::mutex> guard{mtx};
    if (failed)
      return;
    failed = true;
    code = c;
    message = std::move(what);
    cv.notify_all();
  }
};

} // namespace

int exit_code_of(const caf::error& err) {
  if (asyncstream::is(err, errc::data_loss)
      || asyncstream::is(err, errc::protocol_error))
    return exit_peer_error;
  if (asyncstream::render(err).find("refused by the peer") != std::string::npos)
    return exit_peer_error;
  return exit_gave_up;
}

namespace {

int code_of(const caf::error& err) {
  return exit_code_of(err);
}

/// A self-pipe that wakes the input thread out of poll().
struct waker {
  int fds[2] = {-1, -1};

  waker() {
    if (::pipe(fds) != 0)
      fds[0] = fds[1] = -1;
  }

  ~waker() {
    for (auto fd : fds)
      if (fd >= 0)
        ::close(fd);
  }

  void wake() {
    if (fds[1] >= 0) {
      char c = 1;
      [[maybe_unused]] auto n = ::write(fds[1], &c, 1);
    }
  }
};

void copy_input(backed_pipe& pipe, int fd, waker& wk, copy_state& st) {
  // Standard input is read straight into pooled chunks, which the pipe
  // keeps as its window (write(slice)): no copy of our own.
  auto pool = asyncstream::chunk_pool::shared(buffer_size);
  asyncstream::mutable_chunk_ptr chunk;
  std::size_t fill = 0;
  for (;;) {
    if (!chunk || chunk->capacity() - fill < buffer_size / 16) {
      try {
        chunk = pool->acquire();
      } catch (const std::bad_alloc&) {
        st.fail(exit_local_error, "no memory for the input buffer");
        return;
      }
      fill = 0;
    }
    pollfd pfds[2] = {{fd, POLLIN, 0}, {wk.fds[0], POLLIN, 0}};
    auto r = ::poll(pfds, wk.fds[0] >= 0 ? 2 : 1, -1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      st.fail(exit_local_error, std::string{"waiting for standard input: "}
                                  + std::strerror(errno));
      return;
    }
    if (wk.fds[0] >= 0 && (pfds[1].revents & POLLIN))
      return; // stopping
    auto n = ::read(fd, chunk->mutable_data() + fill, chunk->capacity() - fill);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      st.fail(exit_local_error,
              std::string{"reading standard input: "} + std::strerror(errno));
      return;
    }
    if (n == 0) {
      if (auto err = pipe.close_write()) {
        st.fail(code_of(err),
                "ending the outgoing direction: " + asyncstream::render(err));
        return;
      }
      spdlog::debug("standard input ended; outgoing direction closed");
      std::lock_guard<std::mutex> guard{st.mtx};
      st.input_done = true;
      st.cv.notify_all();
      return;
    }
    auto k = static_cast<std::size_t>(n);
    if (auto err = pipe.write(asyncstream::slice{chunk, fill, k})) {
      st.fail(code_of(err), "sending: " + asyncstream::render(err));
      return;
    }
    fill += k;
  }
}

void copy_output(backed_pipe& pipe, int fd, copy_state& st) {
  // The pipe hands out slices of its own chunks; one writev writes them.
  std::vector<iovec> iov;
  for (;;) {
    auto xs = pipe.read_slices(buffer_size);
    if (!xs) {
      st.fail(code_of(xs.error()),
              "receiving: " + asyncstream::render(xs.error()));
      return;
    }
    if (xs->empty()) {
      spdlog::debug("the peer closed its direction; all bytes written out");
      std::lock_guard<std::mutex> guard{st.mtx};
      st.output_done = true;
      st.cv.notify_all();
      return;
    }
    iov.clear();
    for (auto& x : *xs)
      iov.push_back(iovec{const_cast<std::byte*>(x.data()), x.size()});
    std::size_t first = 0;
    while (first < iov.size()) {
      auto count
        = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
      auto n = ::writev(fd, iov.data() + first, count);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        st.fail(exit_local_error, std::string{"writing standard output: "}
                                    + std::strerror(errno));
        return;
      }
      // Skips what was written: whole buffers, then part of one.
      auto left = static_cast<std::size_t>(n);
      while (first < iov.size() && left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      }
      if (left > 0) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
  }
}

/// Logs connects and losses, prints progress.
class reporter {
public:
  reporter(backed_pipe& pipe, bool progress)
    : pipe_(pipe), progress_(progress), last_print_(clock_type::now()) {
    // nop
  }

  /// Called every tick of the main loop.
  void tick() {
    auto s = pipe_.stats();
    if (s.state == pipe_state::connected && s.generation != generation_) {
      if (generation_ == 0)
        spdlog::info("connected");
      else
        spdlog::info("reconnected (connection {})", s.generation);
      generation_ = s.generation;
    }
    bool finished = s.write_closed_acknowledged && s.peer_closed;
    if (was_connected_ && s.state != pipe_state::connected
        && s.state != pipe_state::closed && finished)
      spdlog::debug("connection ended after both directions closed");
    else if (was_connected_ && s.state != pipe_state::connected
             && s.state != pipe_state::closed)
      spdlog::warn("connection lost: {}", s.last_error
                                            ? asyncstream::render(s.last_error)
                                            : std::string{"no reason"});
    was_connected_ = s.state == pipe_state::connected;
    auto now = clock_type::now();
    if (progress_ && now - last_print_ >= std::chrono::seconds(1)) {
      auto secs = std::chrono::duration<double>(now - last_print_).count();
      auto moved = (s.written + s.received) - (last_written_ + last_received_);
      spdlog::info("progress: {} (connection {}, {} attempts) | out {} "
                   "written, {} acked, {} sent | in {} | {}/s",
                   asyncstream::to_string(s.state), s.generation, s.attempts,
                   show_bytes(s.written), show_bytes(s.acknowledged),
                   show_bytes(s.sent), show_bytes(s.received),
                   show_bytes(static_cast<std::uint64_t>(moved / secs)));
      last_print_ = now;
      last_written_ = s.written;
      last_received_ = s.received;
    }
  }

  /// Whether the pipe was connected at least once.
  bool ever_connected() const {
    return generation_ > 0;
  }

private:
  backed_pipe& pipe_;
  bool progress_;
  clock_type::time_point last_print_;
  std::uint64_t generation_ = 0;
  bool was_connected_ = false;
  std::uint64_t last_written_ = 0;
  std::uint64_t last_received_ = 0;
};

std::string seconds_of(caf::timespan x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s",
                std::chrono::duration<double>(x).count());
  return buf;
}

} // namespace

int run_copy_session(backed_pipe& pipe, const copy_options& opts) {
  copy_state st;
  waker wk;
  std::thread input{[&] { copy_input(pipe, opts.in_fd, wk, st); }};
  std::thread output{[&] { copy_output(pipe, opts.out_fd, st); }};
  reporter rep{pipe, opts.progress};
  auto started = clock_type::now();
  auto down_since = clock_type::now();
  bool acknowledged = false;
  for (;;) {
    rep.tick();
    bool both_done = false;
    {
      std::lock_guard<std::mutex> guard{st.mtx};
      if (st.failed)
        break;
      both_done = st.input_done && st.output_done;
    }
    // The passive side's watchdog (the active side's pipe has its limit).
    auto state = pipe.state();
    auto now = clock_type::now();
    if (state == pipe_state::connected)
      down_since = now;
    if (!rep.ever_connected() && opts.first_timeout
        && now - started > *opts.first_timeout) {
      st.fail(exit_gave_up,
              "no peer connected within " + seconds_of(*opts.first_timeout));
      break;
    }
    if (rep.ever_connected() && opts.reconnect_timeout
        && now - down_since > *opts.reconnect_timeout) {
      auto last = pipe.stats().last_error;
      st.fail(exit_gave_up,
              "the peer did not come back within "
                + seconds_of(*opts.reconnect_timeout) + " (last error: "
                + (last ? asyncstream::render(last) : std::string{"none"})
                + ")");
      break;
    }
    if (!both_done) {
      // The pipe may give up while neither copy thread calls it (standard
      // input idle, the peer's direction ended): its acknowledgement wait
      // says so at once.
      auto err = pipe.wait_acknowledged(caf::timespan{0});
      if (err && !asyncstream::is(err, errc::timeout)) {
        st.fail(code_of(err), "the pipe failed: " + asyncstream::render(err));
        break;
      }
      std::unique_lock<std::mutex> guard{st.mtx};
      st.cv.wait_for(guard, std::chrono::milliseconds(100), [&] {
        return st.failed || (st.input_done && st.output_done);
      });
      continue;
    }
    // Both directions are closed: wait for the acknowledgements, a slice
    // at a time so that the watchdog keeps running.
    auto err
      = pipe.wait_acknowledged(caf::timespan{std::chrono::milliseconds(100)});
    if (err && asyncstream::is(err, errc::timeout)) {
      // The peer acknowledged our end: it received every byte before it
      // (one ordered stream), even if the byte acknowledgement itself did
      // not arrive before the connection ended.
      if (pipe.stats().write_closed_acknowledged) {
        acknowledged = true;
        break;
      }
      continue;
    }
    if (err) {
      st.fail(code_of(err), "waiting for the peer's acknowledgement: "
                              + asyncstream::render(err));
      break;
    }
    acknowledged = true;
    break;
  }
  if (acknowledged) {
    if (!pipe.wait_peer_done(opts.linger) && opts.linger.count() > 0)
      spdlog::warn("the peer did not confirm the end within {} (all bytes "
                   "were acknowledged)",
                   seconds_of(opts.linger));
    rep.tick();
  }
  pipe.close();
  wk.wake();
  input.join();
  output.join();
  if (!acknowledged) {
    std::lock_guard<std::mutex> guard{st.mtx};
    auto s = pipe.stats();
    spdlog::error("{} ({} connect attempts, {} connections; {} of {} sent "
                  "bytes acknowledged, {} received)",
                  st.message, s.attempts, s.generation,
                  show_bytes(s.acknowledged), show_bytes(s.written),
                  show_bytes(s.received));
    return st.code == exit_ok ? exit_gave_up : st.code;
  }
  if (opts.progress) {
    auto s = pipe.stats();
    spdlog::info("done: {} out, {} in, {} connection(s)", show_bytes(s.written),
                 show_bytes(s.received), s.generation);
  }
  return exit_ok;
}

} // namespace aspipe
