#include "asyncstream/blocking_reader.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/blocking_client.hpp"
#include "asyncstream/detail/read_cursor.hpp"
#include "asyncstream/detail/reader_peek.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/detail/transfer_send.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream {

namespace {

caf::error invalid_reader() {
  return make_error(errc::invalid_argument,
                    "invalid blocking_reader (default-constructed or "
                    "moved-from)");
}

caf::error seek_error(detail::seek_check check) {
  if (check == detail::seek_check::negative)
    return make_error(errc::invalid_argument, "negative position");
  return make_error(errc::invalid_argument,
                    "position past 2^63-1 (the largest offset)");
}

} // namespace

struct blocking_reader::impl {
  std::shared_ptr<detail::stream_core> core;
  std::uint64_t id;
  reader_options opts;
  detail::blocking_client client;
  detail::read_cursor cursor;
  std::atomic<bool> closed{false};

  impl(std::shared_ptr<detail::stream_core> c, std::uint64_t i,
       reader_options o)
    : core(std::move(c)), id(i), opts(o), client(*core->sys) {
    if (opts.prefetch == 0)
      opts.prefetch = 1;
  }

  /// Returns the error that fails every read right now, if any.
  caf::error gate() const {
    if (closed.load(std::memory_order_relaxed))
      return make_error(errc::closed, "reader closed");
    if (core->aborted.load(std::memory_order_relaxed))
      return make_error(errc::canceled);
    return {};
  }

  /// Asks for bytes at `offset`, waiting until some exist or the stream is
  /// final. A `positional` request never moves the tether.
  caf::expected<slice_result> request(std::uint64_t offset,
                                      std::uint64_t max_size,
                                      bool positional = false) {
    slice_request req;
    req.reader = id;
    req.offset = offset;
    req.max_size = max_size;
    req.positional = positional;
    // Through the transfer actor's inbox (run here when it is idle) on a
    // lightly used stream (detail/transfer_send.hpp).
    auto* via = detail::run_inline_here(core->counters.get())
                  ? core->transfer_inbox.get()
                  : nullptr;
    auto res = client.call_via<slice_result>(core->transfer, via, deadline(),
                                             std::move(req));
    if (!res && is(res.error(), errc::timeout))
      drop_parked();
    return res;
  }

  /// Returns when a wait started now must give up.
  std::optional<detail::blocking_client::clock::time_point> deadline() const {
    if (!opts.timeout)
      return std::nullopt;
    return detail::blocking_client::clock::now() + *opts.timeout;
  }

  /// Answers our abandoned request at the transfer actor (the answer is
  /// dropped by its request id), so it does not stay parked.
  void drop_parked() {
    caf::anon_send(core->transfer, withdraw_atom::value, id);
  }

  /// Makes sure bytes are held at the position. Returns false at the end.
  caf::expected<bool> fill() {
    for (;;) {
      if (auto err = gate())
        return err;
      if (cursor.held() > 0)
        return true;
      if (auto* err = cursor.error_here())
        return *err; // an answer said so already: no need to ask again
      if (cursor.at_end())
        return false;
      auto res = request(cursor.position(), opts.prefetch);
      if (!res)
        return std::move(res.error());
      if (res->size == 0 && res->error) {
        // Closed while waiting: report the reader's own state.
        if (auto err = gate())
          return err;
        cursor.set_error_at(res->offset, res->error);
        return std::move(res->error);
      }
      cursor.absorb(*res);
      if (res->size == 0 && res->end)
        return false;
    }
  }

  /// A zero-length read at the position: 0, or the error pending there,
  /// from what is known without a message.
  caf::expected<std::size_t> zero_read() {
    auto peek = detail::peek_position(*core, cursor, closed.load());
    if (peek.error)
      return std::move(peek.error);
    if (peek.lost)
      return detail::lost_error(cursor.position(), peek.oldest);
    return std::size_t{0};
  }

  void close() noexcept {
    if (closed.exchange(true))
      return;
    // Wake our own wait first: a request racing with this close may reach
    // the transfer actor after the cancel and would never be answered.
    client.interrupt(make_error(errc::closed, "reader closed"));
    caf::anon_send(core->transfer, cancel_atom::value, id);
    caf::anon_send(core->monitor, close_atom::value, id);
  }
};

namespace detail {

caf::expected<blocking_reader>
open_blocking_reader(std::shared_ptr<stream_core> core,
                     std::optional<caf::timespan> timeout,
                     reader_options opts) {
  auto id = stream_core::next_reader_id();
  std::optional<blocking_client::clock::time_point> deadline;
  if (timeout)
    deadline = blocking_client::clock::now() + *timeout;
  auto ptr = std::make_unique<blocking_reader::impl>(core, id, opts);
  // No owner actor: the handle owns the reader.
  auto granted = ptr->client.call<std::uint64_t>(
    core->monitor, deadline, open_atom::value, id, caf::actor_addr{});
  if (!granted) {
    // Withdraw the open: a waiting open would otherwise take the next slot.
    caf::anon_send(core->monitor, close_atom::value, id);
    ptr->closed = true;
    if (is(granted.error(), errc::timeout))
      return make_error(errc::timeout, "no reader slot free in time");
    return std::move(granted.error());
  }
  // Tethered from the moment it opens, at its position (0): sent from this
  // thread before any of its reads, so the transfer actor sees it first.
  if (core->options.retention
      && core->options.policy == retention_policy::tethered)
    caf::anon_send(core->transfer, tether_atom::value, id,
                   ptr->cursor.position());
  return blocking_reader{std::move(ptr)};
}

} // namespace detail

blocking_reader::blocking_reader() noexcept = default;

blocking_reader::blocking_reader(std::unique_ptr<impl> ptr) noexcept
  : impl_(std::move(ptr)) {
  // nop
}

blocking_reader::blocking_reader(blocking_reader&&) noexcept = default;

blocking_reader& blocking_reader::operator=(blocking_reader&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

blocking_reader::~blocking_reader() {
  close();
}

caf::expected<std::size_t> blocking_reader::read(void* buf, std::size_t n) {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  if (n == 0)
    return impl_->zero_read();
  auto ok = impl_->fill();
  if (!ok)
    return std::move(ok.error());
  if (!*ok)
    return std::size_t{0};
  return impl_->cursor.copy_to(static_cast<std::byte*>(buf), n);
}

caf::expected<std::size_t> blocking_reader::read(caf::span<std::byte> buf) {
  return read(buf.data(), buf.size());
}

caf::expected<std::size_t> blocking_reader::read_exact(void* buf,
                                                       std::size_t n) {
  if (!impl_)
    return invalid_reader();
  if (n == 0)
    return read(buf, 0);
  auto* out = static_cast<std::byte*>(buf);
  std::size_t done = 0;
  while (done < n) {
    auto k = read(out + done, n - done);
    if (!k) {
      // The bytes before an error come first; the error shows at the next
      // read, at its byte.
      if (done > 0 && !impl_->gate())
        return done;
      return k;
    }
    if (*k == 0)
      break;
    done += *k;
  }
  return done;
}

caf::expected<std::size_t>
blocking_reader::read_exact(caf::span<std::byte> buf) {
  return read_exact(buf.data(), buf.size());
}

caf::expected<std::size_t> blocking_reader::read_at(void* buf, std::size_t n,
                                                    std::int64_t offset) {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  if (offset < 0)
    return make_error(errc::invalid_argument, "negative offset");
  auto* out = static_cast<std::byte*>(buf);
  auto pos = static_cast<std::uint64_t>(offset);
  if (n == 0) {
    // What a read there would get, from what is known without a message.
    auto peek = detail::peek_offset(*impl_->core, pos);
    if (peek.error)
      return std::move(peek.error);
    if (peek.lost)
      return detail::lost_error(pos, peek.oldest);
    return std::size_t{0};
  }
  std::size_t done = 0;
  while (done < n) {
    auto res = impl_->request(pos, n - done, true);
    if (!res)
      return std::move(res.error());
    if (auto err = impl_->gate())
      return err;
    for (auto& s : res->slices) {
      std::memcpy(out + done, s.data(), s.size());
      done += s.size();
    }
    pos += res->size;
    if (res->error) {
      if (done > 0)
        return done; // the error shows at the next read at its byte
      return std::move(res->error);
    }
    if (res->end)
      break;
  }
  return done;
}

caf::expected<std::size_t> blocking_reader::read_at(caf::span<std::byte> buf,
                                                    std::int64_t offset) {
  return read_at(buf.data(), buf.size(), offset);
}

caf::expected<std::vector<slice>>
blocking_reader::read_slices(std::size_t max) {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  std::vector<slice> out;
  if (max == 0) {
    auto zero = impl_->zero_read();
    if (!zero)
      return std::move(zero.error());
    return out;
  }
  auto ok = impl_->fill();
  if (!ok)
    return std::move(ok.error());
  if (*ok)
    impl_->cursor.take(max, out);
  return out;
}

caf::expected<std::vector<slice>>
blocking_reader::read_slices_at(std::uint64_t offset, std::size_t max) {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  if (offset > static_cast<std::uint64_t>(INT64_MAX))
    return make_error(errc::invalid_argument,
                      "offset " + std::to_string(offset) + " beyond 2^63 - 1");
  if (max == 0)
    return std::vector<slice>{};
  auto res = impl_->request(offset, max, true);
  if (!res)
    return std::move(res.error());
  if (auto err = impl_->gate())
    return err;
  if (res->size == 0 && res->error)
    return std::move(res->error);
  return std::move(res->slices);
}

caf::expected<std::uint64_t> blocking_reader::seek(std::int64_t offset,
                                                   whence from) {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  std::uint64_t base = 0;
  switch (from) {
    case whence::start:
      break;
    case whence::current:
      base = impl_->cursor.position();
      break;
    case whence::end: {
      auto& core = *impl_->core;
      if (core.options.declared_length) {
        base = *core.options.declared_length;
      } else if (auto known = impl_->cursor.end_offset()) {
        base = *known;
      } else {
        auto st = impl_->client.call<stream_status>(
          core.transfer, impl_->deadline(), wait_atom::value);
        if (!st)
          return std::move(st.error());
        if (st->error)
          return std::move(st->error);
        base = st->size;
      }
      break;
    }
    default:
      return make_error(errc::invalid_argument, "invalid whence");
  }
  std::uint64_t target = 0;
  auto check = detail::seek_target(base, offset, target);
  if (check != detail::seek_check::ok)
    return seek_error(check);
  impl_->cursor.seek(target);
  return impl_->cursor.position();
}

caf::expected<std::uint64_t> blocking_reader::skip_to_oldest() {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  std::uint64_t oldest = 0;
  if (auto* c = impl_->core->counters.get()) {
    oldest = c->oldest.load(std::memory_order_relaxed);
  } else {
    auto st = impl_->client.call<stream_status>(
      impl_->core->transfer, impl_->deadline(), status_atom::value);
    if (!st)
      return std::move(st.error());
    oldest = st->oldest;
  }
  if (impl_->cursor.position() < oldest)
    impl_->cursor.seek(oldest);
  return impl_->cursor.position();
}

std::uint64_t blocking_reader::position() const noexcept {
  return impl_ ? impl_->cursor.position() : 0;
}

caf::expected<bool> blocking_reader::wait_for(std::int64_t offset) {
  if (!impl_)
    return invalid_reader();
  if (auto err = impl_->gate())
    return err;
  if (offset < 0)
    return make_error(errc::invalid_argument, "negative offset");
  auto pos = static_cast<std::uint64_t>(offset);
  auto here = impl_->cursor.position();
  if (pos >= here && pos - here < impl_->cursor.held())
    return true; // held already
  auto res = impl_->request(pos, 1, true);
  if (!res)
    return std::move(res.error());
  if (auto err = impl_->gate())
    return err;
  if (res->size > 0)
    return true;
  if (res->error)
    return std::move(res->error);
  return false;
}

bool blocking_reader::at_end() const {
  if (!impl_)
    return false;
  return detail::peek_position(*impl_->core, impl_->cursor,
                               impl_->closed.load())
    .at_end;
}

caf::error blocking_reader::pending_error() const {
  if (!impl_)
    return invalid_reader();
  auto peek = detail::peek_position(*impl_->core, impl_->cursor,
                                    impl_->closed.load());
  if (peek.lost)
    return detail::lost_error(impl_->cursor.position(), peek.oldest);
  return std::move(peek.error);
}

void blocking_reader::close() noexcept {
  if (impl_)
    impl_->close();
}

std::uint64_t blocking_reader::id() const noexcept {
  return impl_ ? impl_->id : 0;
}

} // namespace asyncstream
