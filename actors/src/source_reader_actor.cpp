#include "asyncstream/source_reader_actor.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/chunk_sizer.hpp"
#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/transfer_send.hpp"
#include "asyncstream/detail/wake_trace.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"

namespace asyncstream {

namespace {

/// Waits until `fd` is readable or the stream is stopped. Returns false on
/// stop.
bool wait_readable(int fd, const detail::source_control& ctl) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {ctl.fd(), POLLIN, 0}};
  for (;;) {
    if (ctl.stopped())
      return false;
    auto res = ::poll(fds, 2, -1);
    if (res < 0 && errno == EINTR)
      continue;
    if (ctl.stopped())
      return false;
    // Readable, hung up or in error: read(2) tells which.
    return true;
  }
}

read_outcome read_fd(int fd, std::byte* buf, std::size_t max,
                     const detail::source_control& ctl, bool& stopped) {
  for (;;) {
    if (!wait_readable(fd, ctl)) {
      stopped = true;
      return {};
    }
    auto res = ::read(fd, buf, max);
    if (res > 0)
      return {static_cast<std::size_t>(res), false, {}};
    if (res == 0)
      return {0, true, {}};
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
      continue;
    return {0, false,
            make_error(errc::io_error, std::string{"reading the source: read: "}
                                         + std::strerror(errno))};
  }
}

/// Everything the reader needs, handed over by `run`.
struct work {
  source src;
  transfer_actor transfer;
  std::shared_ptr<detail::own_thread_inbox> inbox;
  std::shared_ptr<detail::stream_counters> counters;
  stream_options opts;
  std::shared_ptr<detail::source_control> ctl;
  std::shared_ptr<file_store> file;
};

void read_source(work& w) {
  auto send = [&w](auto&& msg) {
    detail::send_to_transfer(w.transfer, w.inbox.get(), w.counters.get(),
                             std::forward<decltype(msg)>(msg));
  };
  auto& ctl = w.ctl;
  auto& file = w.file;
  detail::chunk_sizer sizer{w.opts};
  auto block = w.opts.block_size == 0 ? std::size_t{64 * 1024}
                                      : w.opts.block_size;
  int fd = -1;
  const read_function* fn = nullptr;
  if (auto* x = std::get_if<source::fd_source>(&w.src.get()))
    fd = x->fd;
  else
    fn = std::get_if<read_function>(&w.src.get());
  // Limits are exact: the source is never asked for a byte past the
  // capacity or the declared length (a pipe keeps what belongs to its next
  // reader).
  auto limit = std::numeric_limits<std::uint64_t>::max();
  if (w.opts.capacity)
    limit = *w.opts.capacity;
  bool declared_limit = false;
  if (w.opts.declared_length && *w.opts.declared_length <= limit) {
    limit = *w.opts.declared_length;
    declared_limit = true;
  }
  mutable_chunk_ptr current;
  std::size_t filled = 0;
  std::uint64_t total = 0;
  for (;;) {
    if (total >= limit) {
      // At a declared length the transfer actor ends the stream itself. At
      // a capacity the stream is full: learning whether the source had
      // more would take a read past it.
      if (!declared_limit)
        send(source_end{make_error(
          errc::buffer_full, "capacity " + std::to_string(limit) + " bytes")});
      break;
    }
    // A tethered window or a read-ahead limit holds the source back.
    auto room = ctl->wait_for_room(total);
    if (room == 0)
      break;
    room = std::min(room, limit - total);
    if (!current || filled == current->capacity()) {
      current.reset();
      try {
        current = sizer.next(total);
      } catch (const std::bad_alloc&) {
        send(source_end{make_error(errc::resource_exhausted,
                                   "no memory for a chunk at offset "
                                     + std::to_string(total))});
        break;
      }
      filled = 0;
    }
    auto max = static_cast<std::size_t>(
      std::min<std::uint64_t>({block, current->capacity() - filled, room}));
    auto* buf = current->mutable_data() + filled;
    read_outcome res;
    bool stopped = false;
    if (fn != nullptr)
      res = (*fn)(buf, max);
    else
      res = read_fd(fd, buf, max, *ctl, stopped);
    if (stopped)
      break;
    if (res.size > max)
      res.size = max; // a misbehaving read function must not overrun
    if (res.size > 0 && file) {
      // Bytes that did not reach the stream file are never published.
      if (auto ec = file->append(buf, res.size)) {
        send(source_end{make_error(errc::io_error, "writing the stream file at "
                                                   "offset "
                                                     + std::to_string(total)
                                                     + ": " + ec.message())});
        break;
      }
    }
    if (res.size > 0) {
      ASYNCSTREAM_WAKE_MARK(produced);
      send(next_slice{slice{current, filled, res.size}});
      filled += res.size;
      total += res.size;
    }
    if (res.error || res.eof) {
      send(source_end{std::move(res.error)});
      break;
    }
  }
}

} // namespace

/// The hand-over between `run` and the waiting thread.
struct source_reader_launcher::slot {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<work> job;
  bool abandoned = false;

  /// The thread's body: wait for work (or the end), then read.
  void operator()() {
    std::optional<work> w;
    {
      std::unique_lock<std::mutex> guard{mtx};
      cv.wait(guard, [this] { return job.has_value() || abandoned; });
      if (!job)
        return;
      w = std::move(job);
      job.reset();
    }
    read_source(*w);
    // Close an owned descriptor now, not when the last copy of the source
    // goes (the caller may hold one).
    if (auto* x = std::get_if<source::fd_source>(&w->src.get()))
      if (x->owner)
        x->owner->close();
  }
};

source_reader_launcher::~source_reader_launcher() {
  if (!slot_)
    return;
  {
    std::lock_guard<std::mutex> guard{slot_->mtx};
    if (slot_->job)
      return; // running
    slot_->abandoned = true;
  }
  slot_->cv.notify_one();
}

caf::error source_reader_launcher::start(caf::actor_system& sys) {
  auto ptr = std::make_shared<slot>();
  if (auto err = detail::start_thread(sys, "as.source", [ptr] { (*ptr)(); }))
    return err;
  slot_ = std::move(ptr);
  return {};
}

void source_reader_launcher::run(
  source src, transfer_actor transfer,
  std::shared_ptr<detail::own_thread_inbox> inbox,
  std::shared_ptr<detail::stream_counters> counters, const stream_options& opts,
  std::shared_ptr<detail::source_control> control,
  std::shared_ptr<file_store> file) {
  {
    std::lock_guard<std::mutex> guard{slot_->mtx};
    slot_->job.emplace(work{std::move(src), std::move(transfer),
                            std::move(inbox), std::move(counters), opts,
                            std::move(control), std::move(file)});
  }
  slot_->cv.notify_one();
}

} // namespace asyncstream
