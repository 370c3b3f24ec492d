#include "asyncstream/source_reader_actor.hpp"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <caf/actor_system.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/file_store.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/error.hpp"

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
    return {0, false, make_error(errc::io_error, std::string{"read: "}
                                                   + std::strerror(errno))};
  }
}

void source_reader(caf::blocking_actor* self, source src,
                   transfer_actor transfer, stream_options opts,
                   std::shared_ptr<detail::source_control> ctl,
                   std::shared_ptr<file_store> file) {
  pthread_setname_np(pthread_self(), "as.source");
  auto pool = opts.pool ? opts.pool : chunk_pool::shared(opts.chunk_size);
  auto block = opts.block_size == 0 ? std::size_t{64 * 1024} : opts.block_size;
  int fd = -1;
  bool owned = false;
  const read_function* fn = nullptr;
  if (auto* x = std::get_if<source::fd_source>(&src.get())) {
    fd = x->fd;
    owned = x->owned;
  } else {
    fn = std::get_if<read_function>(&src.get());
  }
  mutable_chunk_ptr current;
  std::size_t filled = 0;
  std::uint64_t total = 0;
  for (;;) {
    // A tethered window or a read-ahead limit holds the source back.
    auto room = ctl->wait_for_room(total);
    if (room == 0)
      break;
    if (!current || filled == current->capacity()) {
      current = pool->acquire();
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
        self->send(transfer,
                   source_end{make_error(errc::io_error,
                                         "writing the stream file: "
                                           + ec.message())});
        break;
      }
    }
    if (res.size > 0) {
      self->send(transfer, next_slice{slice{current, filled, res.size}});
      filled += res.size;
      total += res.size;
    }
    if (res.error || res.eof) {
      self->send(transfer, source_end{std::move(res.error)});
      break;
    }
  }
  if (owned)
    ::close(fd);
}

} // namespace

caf::actor
spawn_source_reader(caf::actor_system& sys, source src, transfer_actor transfer,
                    const stream_options& opts,
                    std::shared_ptr<detail::source_control> control,
                    std::shared_ptr<file_store> file) {
  return sys.spawn(source_reader, std::move(src), std::move(transfer), opts,
                   std::move(control), std::move(file));
}

} // namespace asyncstream
