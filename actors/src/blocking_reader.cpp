#include "asyncstream/blocking_reader.hpp"

#include <atomic>
#include <cstring>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/blocking_client.hpp"
#include "asyncstream/detail/read_cursor.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream {

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
  /// final.
  caf::expected<slice_result> request(std::uint64_t offset,
                                      std::uint64_t max_size) {
    auto res = client.call<slice_result>(core->transfer, deadline(),
                                         slice_request{id, offset, max_size});
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
      if (cursor.at_end())
        return false;
      auto res = request(cursor.position(), opts.prefetch);
      if (!res)
        return std::move(res.error());
      if (res->size == 0 && res->error) {
        // Closed while waiting: report the reader's own state.
        if (auto err = gate())
          return err;
        return std::move(res->error);
      }
      cursor.absorb(*res);
      if (res->size == 0 && res->end)
        return false;
    }
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
  auto granted = ptr->client.call<std::uint64_t>(core->monitor, deadline,
                                                 open_atom::value, id);
  if (!granted) {
    // Withdraw the open: a waiting open would otherwise take the next slot.
    caf::anon_send(core->monitor, close_atom::value, id);
    ptr->closed = true;
    if (is(granted.error(), errc::timeout))
      return make_error(errc::timeout, "no reader slot free in time");
    return std::move(granted.error());
  }
  return blocking_reader{std::move(ptr)};
}

} // namespace detail

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
  if (auto err = impl_->gate())
    return err;
  if (n == 0)
    return std::size_t{0};
  auto ok = impl_->fill();
  if (!ok)
    return std::move(ok.error());
  if (!*ok)
    return std::size_t{0};
  return impl_->cursor.copy_to(static_cast<std::byte*>(buf), n);
}

caf::expected<std::size_t> blocking_reader::read_exact(void* buf,
                                                       std::size_t n) {
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
blocking_reader::read_at(void* buf, std::size_t n, std::int64_t offset) {
  if (auto err = impl_->gate())
    return err;
  if (offset < 0)
    return make_error(errc::invalid_argument, "negative offset");
  auto* out = static_cast<std::byte*>(buf);
  auto pos = static_cast<std::uint64_t>(offset);
  std::size_t done = 0;
  while (done < n) {
    auto res = impl_->request(pos, n - done);
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
      if (res->size > 0)
        return done; // the error shows at the next read at its byte
      return std::move(res->error);
    }
    if (res->end)
      break;
  }
  return done;
}

caf::expected<std::vector<slice>>
blocking_reader::read_slices(std::size_t max) {
  if (auto err = impl_->gate())
    return err;
  std::vector<slice> out;
  if (max == 0)
    return out;
  auto ok = impl_->fill();
  if (!ok)
    return std::move(ok.error());
  if (*ok)
    impl_->cursor.take(max, out);
  return out;
}

caf::expected<std::uint64_t> blocking_reader::seek(std::int64_t offset,
                                                   whence from) {
  if (auto err = impl_->gate())
    return err;
  std::int64_t base = 0;
  switch (from) {
    case whence::start:
      break;
    case whence::current:
      base = static_cast<std::int64_t>(impl_->cursor.position());
      break;
    case whence::end: {
      auto& core = *impl_->core;
      if (core.options.declared_length) {
        base = static_cast<std::int64_t>(*core.options.declared_length);
      } else if (auto known = impl_->cursor.end_offset()) {
        base = static_cast<std::int64_t>(*known);
      } else {
        auto st = impl_->client.call<stream_status>(
          core.transfer, impl_->deadline(), wait_atom::value);
        if (!st)
          return std::move(st.error());
        if (st->error)
          return std::move(st->error);
        base = static_cast<std::int64_t>(st->size);
      }
      break;
    }
    default:
      return make_error(errc::invalid_argument, "invalid whence");
  }
  auto target = base + offset;
  if (target < 0)
    return make_error(errc::invalid_argument, "negative position");
  impl_->cursor.seek(static_cast<std::uint64_t>(target));
  return impl_->cursor.position();
}

std::uint64_t blocking_reader::position() const noexcept {
  return impl_->cursor.position();
}

caf::expected<bool> blocking_reader::wait_for(std::int64_t offset) {
  if (auto err = impl_->gate())
    return err;
  if (offset < 0)
    return make_error(errc::invalid_argument, "negative offset");
  auto res = impl_->request(static_cast<std::uint64_t>(offset), 1);
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

void blocking_reader::close() noexcept {
  if (impl_)
    impl_->close();
}

std::uint64_t blocking_reader::id() const noexcept {
  return impl_->id;
}

} // namespace asyncstream
