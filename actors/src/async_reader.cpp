#include "asyncstream/async_reader.hpp"

#include <cstring>
#include <deque>
#include <optional>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/read_cursor.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream {

struct async_reader::state : std::enable_shared_from_this<state> {
  caf::event_based_actor* self = nullptr;
  std::shared_ptr<detail::stream_core> core;
  std::uint64_t id = 0;
  reader_options opts;
  detail::read_cursor cursor;
  bool closed = false;
  /// An operation returns true when it completed, false when it started a
  /// request and must run again once the answer arrived.
  std::deque<std::function<bool()>> ops;
  bool running = false;
  bool waiting = false;
  std::optional<caf::error> failure;
  std::optional<std::uint64_t> final_size;
  /// Answer of the last `wait_for`: whether the byte exists.
  bool byte_exists = false;

  /// The timeout of one wait for bytes.
  caf::duration wait_limit() const {
    return opts.timeout ? caf::duration{*opts.timeout} : caf::infinite;
  }

  /// Maps CAF's request timeout to ours and drops the parked request.
  caf::error on_request_error(caf::error err) {
    if (err == caf::sec::request_timeout) {
      caf::anon_send(core->transfer, withdraw_atom::value, id);
      return make_error(errc::timeout);
    }
    return err;
  }

  caf::error gate() const {
    if (closed)
      return make_error(errc::closed, "reader closed");
    if (core->aborted.load(std::memory_order_relaxed))
      return make_error(errc::canceled);
    return {};
  }

  /// Returns and clears the error of the last request, if any.
  caf::error take_failure() {
    if (!failure)
      return {};
    auto err = std::move(*failure);
    failure.reset();
    return err;
  }

  void push(std::function<bool()> op) {
    ops.push_back(std::move(op));
    pump();
  }

  void pump() {
    if (running || waiting)
      return;
    // A handler may drop the last handle of this reader while we run it.
    auto keep = shared_from_this();
    running = true;
    while (!ops.empty() && !waiting) {
      if (ops.front()())
        ops.pop_front();
    }
    running = false;
  }

  void resume() {
    waiting = false;
    pump();
  }

  /// Asks for bytes at the position.
  void fetch() {
    waiting = true;
    auto st = shared_from_this();
    auto pos = cursor.position();
    self
      ->request(core->transfer, wait_limit(),
                slice_request{id, pos, opts.prefetch})
      .then(
        [st, pos](slice_result& res) {
          if (st->cursor.position() == pos) {
            st->cursor.absorb(res);
            if (res.size == 0 && res.error)
              st->failure = std::move(res.error);
          }
          st->resume();
        },
        [st](caf::error& err) {
          st->failure = st->on_request_error(std::move(err));
          st->resume();
        });
  }

  /// Asks for the final length.
  void fetch_final() {
    waiting = true;
    auto st = shared_from_this();
    self->request(core->transfer, wait_limit(), wait_atom::value)
      .then(
        [st](stream_status& status) {
          if (status.error)
            st->failure = std::move(status.error);
          else
            st->final_size = status.size;
          st->resume();
        },
        [st](caf::error& err) {
          st->failure = st->on_request_error(std::move(err));
          st->resume();
        });
  }
};

void async_reader::open(caf::event_based_actor* self, const stream& s,
                        open_handler f, reader_options opts) {
  open_impl(self, s, caf::infinite, std::move(f), opts);
}

void async_reader::open(caf::event_based_actor* self, const stream& s,
                        caf::timespan timeout, open_handler f,
                        reader_options opts) {
  open_impl(self, s, caf::duration{timeout}, std::move(f), opts);
}

void async_reader::open_impl(caf::event_based_actor* self, const stream& s,
                             caf::duration timeout, open_handler f,
                             reader_options opts) {
  if (!s.valid()) {
    f(make_error(errc::invalid_argument, "invalid stream handle"));
    return;
  }
  auto st = std::make_shared<state>();
  st->self = self;
  st->core = s.core();
  st->id = detail::stream_core::next_reader_id();
  st->opts = opts;
  if (st->opts.prefetch == 0)
    st->opts.prefetch = 1;
  self->request(st->core->monitor, timeout, open_atom::value, st->id)
    .then([st, f](std::uint64_t) { f(async_reader{st}); },
          [st, f](caf::error& err) {
            // Withdraw a waiting open so it cannot take a later slot.
            caf::anon_send(st->core->monitor, close_atom::value, st->id);
            st->closed = true;
            if (err == caf::sec::request_timeout)
              f(make_error(errc::timeout, "no reader slot free in time"));
            else
              f(std::move(err));
          });
}

void async_reader::read(void* buf, std::size_t n, size_handler f) {
  auto* st = state_.get();
  auto* out = static_cast<std::byte*>(buf);
  st->push([st, out, n, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
    } else if (auto err = st->take_failure()) {
      f(std::move(err));
    } else if (n == 0) {
      f(std::size_t{0});
    } else if (st->cursor.held() > 0) {
      f(st->cursor.copy_to(out, n));
    } else if (st->cursor.at_end()) {
      f(std::size_t{0});
    } else {
      st->fetch();
      return false;
    }
    return true;
  });
}

void async_reader::read_exact(void* buf, std::size_t n, size_handler f) {
  auto* st = state_.get();
  auto* out = static_cast<std::byte*>(buf);
  st->push([st, out, n, done = std::size_t{0}, f = std::move(f)]() mutable {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      // Bytes before an error come first; the error shows at the next read.
      if (done > 0)
        f(done);
      else
        f(std::move(err));
      return true;
    }
    done += st->cursor.copy_to(out + done, n - done);
    if (done == n || st->cursor.at_end()) {
      f(done);
      return true;
    }
    st->fetch();
    return false;
  });
}

void async_reader::read_slices(std::size_t max, slices_handler f) {
  auto* st = state_.get();
  st->push([st, max, f = std::move(f)]() -> bool {
    std::vector<slice> out;
    if (auto err = st->gate()) {
      f(std::move(err));
    } else if (auto err = st->take_failure()) {
      f(std::move(err));
    } else if (max == 0 || st->cursor.at_end()) {
      f(std::move(out));
    } else if (st->cursor.held() > 0) {
      st->cursor.take(max, out);
      f(std::move(out));
    } else {
      st->fetch();
      return false;
    }
    return true;
  });
}

void async_reader::seek(std::int64_t offset, whence from, offset_handler f) {
  auto* st = state_.get();
  st->push([st, offset, from, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      f(std::move(err));
      return true;
    }
    std::int64_t base = 0;
    switch (from) {
      case whence::start:
        break;
      case whence::current:
        base = static_cast<std::int64_t>(st->cursor.position());
        break;
      case whence::end:
        if (st->core->options.declared_length) {
          base = static_cast<std::int64_t>(*st->core->options.declared_length);
        } else if (auto known = st->cursor.end_offset()) {
          base = static_cast<std::int64_t>(*known);
        } else if (st->final_size) {
          base = static_cast<std::int64_t>(*st->final_size);
        } else {
          st->fetch_final();
          return false;
        }
        break;
      default:
        f(make_error(errc::invalid_argument, "invalid whence"));
        return true;
    }
    auto target = base + offset;
    if (target < 0) {
      f(make_error(errc::invalid_argument, "negative position"));
      return true;
    }
    st->cursor.seek(static_cast<std::uint64_t>(target));
    f(st->cursor.position());
    return true;
  });
}

void async_reader::wait_for(std::int64_t offset, wait_handler f) {
  auto* st = state_.get();
  if (offset < 0) {
    st->push([f = std::move(f)] {
      f(make_error(errc::invalid_argument, "negative offset"));
      return true;
    });
    return;
  }
  auto pos = static_cast<std::uint64_t>(offset);
  st->push([st, pos, asked = false, f = std::move(f)]() mutable -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (asked) {
      // The answer of our request arrived; it set `failure` or the result.
      if (auto err = st->take_failure())
        f(std::move(err));
      else
        f(st->byte_exists);
      return true;
    }
    asked = true;
    st->waiting = true;
    auto sp = st->shared_from_this();
    st->self
      ->request(st->core->transfer, st->wait_limit(),
                slice_request{st->id, pos, 1})
      .then(
        [sp](slice_result& res) {
          if (res.size == 0 && res.error)
            sp->failure = std::move(res.error);
          sp->byte_exists = res.size > 0; // else: ended before the byte
          sp->resume();
        },
        [sp](caf::error& err) {
          sp->failure = sp->on_request_error(std::move(err));
          sp->resume();
        });
    return false;
  });
}

std::uint64_t async_reader::position() const noexcept {
  return state_ ? state_->cursor.position() : 0;
}

void async_reader::close() {
  if (!state_ || state_->closed)
    return;
  state_->closed = true;
  caf::anon_send(state_->core->transfer, cancel_atom::value, state_->id);
  caf::anon_send(state_->core->monitor, close_atom::value, state_->id);
}

} // namespace asyncstream
