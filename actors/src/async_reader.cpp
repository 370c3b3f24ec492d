#include "asyncstream/async_reader.hpp"

#include <cstring>
#include <deque>
#include <optional>

#include <caf/attachable.hpp>
#include <caf/make_message.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/wake_trace.hpp"
#include "asyncstream/detail/actor_request.hpp"
#include "asyncstream/detail/read_cursor.hpp"
#include "asyncstream/detail/reader_peek.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"

namespace asyncstream {

namespace {

caf::error invalid_reader() {
  return make_error(errc::invalid_argument,
                    "invalid async_reader (default-constructed or moved-from)");
}

caf::error seek_error(detail::seek_check check) {
  if (check == detail::seek_check::negative)
    return make_error(errc::invalid_argument, "negative position");
  return make_error(errc::invalid_argument,
                    "position past 2^63-1 (the largest offset)");
}

/// Identifies the attachable of one reader (`caf::attachable::token`).
constexpr std::size_t owner_watch_token = 0x61737264; // "asrd"

} // namespace

struct async_reader::state : std::enable_shared_from_this<state> {
  /// The owner; null once it terminated.
  caf::scheduled_actor* self = nullptr;
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
  /// Number of the request in flight; answers to older ones are dropped.
  std::uint64_t seq = 0;
  /// The transient error of the last request (a timeout, a dead actor);
  /// taken by the operation that waited for it.
  std::optional<caf::error> failure;
  std::optional<std::uint64_t> final_size;

  /// Watches the owner: closes the reader when the owner terminates.
  struct owner_watch final : caf::attachable {
    static constexpr std::size_t token_type = owner_watch_token;

    explicit owner_watch(std::weak_ptr<state> st) : st_(std::move(st)) {
      // nop
    }

    void actor_exited(const caf::error&, caf::execution_unit*) override {
      if (auto st = st_.lock())
        st->owner_exited();
    }

    /// Matches a token made from this very attachable (its address).
    bool matches(const token& what) override {
      return what.subtype == token_type && what.ptr == this;
    }

    std::weak_ptr<state> st_;
  };

  /// The attachable registered with the owner (owned by the owner), until
  /// it is detached or has run.
  owner_watch* watch = nullptr;

  ~state() {
    // Handles close the reader before the state goes; this is the fallback
    // for a state that never got a handle.
    if (!closed && core) {
      caf::anon_send(core->transfer, cancel_atom::value, id);
      caf::anon_send(core->monitor, close_atom::value, id);
    }
  }

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
    if (self == nullptr) {
      // The owner is gone (the reader is closed): the operation completes
      // at once with `closed`; it cannot start a request.
      op();
      return;
    }
    ops.push_back(std::move(op));
    pump();
  }

  void pump() {
    if (running || waiting || self == nullptr)
      return;
    // A handler may drop the last handle of this reader while we run it.
    auto keep = shared_from_this();
    running = true;
    while (!ops.empty() && !waiting && self != nullptr) {
      // Taken out first: the operation may close the reader (which runs the
      // queue) or push new operations.
      auto op = std::move(ops.front());
      ops.pop_front();
      if (!op())
        ops.push_front(std::move(op));
    }
    running = false;
  }

  void resume() {
    waiting = false;
    pump();
  }

  /// Sends a request to the transfer actor; `on_answer` runs with the
  /// answer, then the waiting operation runs again.
  template <class T, class F>
  void ask(caf::message msg, F on_answer) {
    waiting = true;
    failure.reset();
    auto my = ++seq;
    auto st = shared_from_this();
    detail::actor_request(
      self, core->transfer, wait_limit(), std::move(msg),
      [st, my, on_answer](T& x) mutable {
        ASYNCSTREAM_WAKE_MARK(reader_woke);
        if (st->seq != my)
          return; // closed meanwhile
        on_answer(x);
        st->resume();
      },
      [st, my](caf::error& err) {
        if (st->seq != my)
          return;
        st->failure = st->on_request_error(std::move(err));
        st->resume();
      });
  }

  /// Asks for `max` bytes at `offset`; `positional` requests never move the
  /// tether.
  template <class F>
  void ask_slices(std::uint64_t offset, std::uint64_t max, bool positional,
                  F on_answer) {
    slice_request req;
    req.reader = id;
    req.offset = offset;
    req.max_size = max;
    req.positional = positional;
    ask<slice_result>(caf::make_message(std::move(req)), std::move(on_answer));
  }

  /// Asks for bytes at the position (this moves the tether).
  void fetch() {
    auto pos = cursor.position();
    ask_slices(pos, opts.prefetch, false, [this, pos](slice_result& res) {
      if (cursor.position() == pos)
        cursor.absorb(res);
      else if (res.error)
        cursor.set_error_at(res.offset + res.size, res.error);
    });
  }

  /// Asks for the final length.
  void fetch_final() {
    ask<stream_status>(caf::make_message(wait_atom::value),
                       [this](stream_status& status) {
                         if (status.error)
                           failure = std::move(status.error);
                         else
                           final_size = status.size;
                       });
  }

  /// What a zero-length read at the position returns: 0, or the error
  /// pending there, from what is known without a message.
  caf::expected<std::size_t> zero_read() const {
    auto peek = detail::peek_position(*core, cursor, closed);
    if (peek.error)
      return std::move(peek.error);
    if (peek.lost)
      return detail::lost_error(cursor.position(), peek.oldest);
    return std::size_t{0};
  }

  void attach_watch() {
    auto ptr = std::make_unique<owner_watch>(weak_from_this());
    watch = ptr.get();
    // Runs `actor_exited` at once if `self` has terminated already.
    self->attach(std::move(ptr));
  }

  /// The owner terminated: close, and drop what can no longer run.
  void owner_exited() {
    self = nullptr;
    watch = nullptr; // CAF destroys the attachable
    auto dropped = std::move(ops);
    ops.clear();
    close_reader();
    // `dropped` goes here: it may hold the last handles of this reader.
  }

  void close_reader() {
    if (closed)
      return;
    closed = true;
    ++seq; // the answer in flight, if any, is stale now
    waiting = false;
    if (self != nullptr && watch != nullptr) {
      auto* ptr = watch;
      watch = nullptr;
      self->detach(caf::attachable::token{*ptr}); // destroys it
    }
    if (core) {
      caf::anon_send(core->transfer, cancel_atom::value, id);
      caf::anon_send(core->monitor, close_atom::value, id);
    }
    pump(); // everything queued completes with `closed`
  }
};

/// The users' share of a reader: the last one closes it.
struct async_reader::handle {
  std::shared_ptr<state> st;

  ~handle() {
    if (st)
      st->close_reader();
  }
};

async_reader::state* async_reader::get() const noexcept {
  return handle_ ? handle_->st.get() : nullptr;
}

void async_reader::open(caf::scheduled_actor* self, const stream& s,
                        open_handler f, reader_options opts) {
  open_impl(self, s, caf::infinite, std::move(f), opts);
}

void async_reader::open(caf::scheduled_actor* self, const stream& s,
                        caf::timespan timeout, open_handler f,
                        reader_options opts) {
  open_impl(self, s, caf::duration{timeout}, std::move(f), opts);
}

void async_reader::open_impl(caf::scheduled_actor* self, const stream& s,
                             caf::duration timeout, open_handler f,
                             reader_options opts) {
  if (self == nullptr) {
    f(make_error(errc::invalid_argument, "no actor"));
    return;
  }
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
  // Watch the owner from the start: a waiting open is withdrawn when the
  // owner goes (the monitor also watches the owner's address).
  st->attach_watch();
  if (st->closed) { // `self` had terminated already
    f(make_error(errc::closed, "the reader's actor has terminated"));
    return;
  }
  auto h = std::make_shared<handle>();
  h->st = st;
  auto tethered = st->core->options.retention
                  && st->core->options.policy == retention_policy::tethered;
  detail::actor_request(
    self, st->core->monitor, timeout,
    caf::make_message(open_atom::value, st->id, self->address()),
    [h, f, tethered](std::uint64_t) mutable {
      auto& st = *h->st;
      if (st.closed) {
        f(make_error(errc::closed, "reader closed"));
        return;
      }
      // Tethered from the moment it opens, at its position (0): sent before
      // any read of this actor, so the transfer actor sees it first.
      if (tethered)
        caf::anon_send(st.core->transfer, tether_atom::value, st.id,
                       st.cursor.position());
      f(async_reader{std::move(h)});
    },
    [h, f](caf::error& err) mutable {
      auto st = h->st;
      // Withdraw a waiting open so it cannot take a later slot.
      h.reset(); // closes: cancel at the transfer actor, close at the monitor
      st->close_reader();
      if (err == caf::sec::request_timeout)
        f(make_error(errc::timeout, "no reader slot free in time"));
      else
        f(std::move(err));
    });
}

void async_reader::read(void* buf, std::size_t n, size_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  auto* out = static_cast<std::byte*>(buf);
  st->push([st, out, n, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
    } else if (auto err = st->take_failure()) {
      f(std::move(err));
    } else if (n == 0) {
      f(st->zero_read());
    } else if (st->cursor.held() > 0) {
      f(st->cursor.copy_to(out, n));
    } else if (auto* err = st->cursor.error_here()) {
      f(*err);
    } else if (st->cursor.at_end()) {
      f(std::size_t{0});
    } else {
      st->fetch();
      return false;
    }
    return true;
  });
}

void async_reader::read(caf::span<std::byte> buf, size_handler f) {
  read(buf.data(), buf.size(), std::move(f));
}

void async_reader::read_exact(void* buf, std::size_t n, size_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  if (n == 0) {
    read(buf, 0, std::move(f));
    return;
  }
  auto* out = static_cast<std::byte*>(buf);
  auto done = std::make_shared<std::size_t>(0);
  st->push([st, out, n, done, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      // Bytes before an error come first; the error shows at the next read.
      if (*done > 0)
        f(*done);
      else
        f(std::move(err));
      return true;
    }
    *done += st->cursor.copy_to(out + *done, n - *done);
    if (*done == n) {
      f(*done);
      return true;
    }
    if (auto* err = st->cursor.error_here()) {
      if (*done > 0)
        f(*done);
      else
        f(*err);
      return true;
    }
    if (st->cursor.at_end()) {
      f(*done);
      return true;
    }
    st->fetch();
    return false;
  });
}

void async_reader::read_exact(caf::span<std::byte> buf, size_handler f) {
  read_exact(buf.data(), buf.size(), std::move(f));
}

void async_reader::read_at(void* buf, std::size_t n, std::int64_t offset,
                           size_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  if (offset < 0) {
    st->push([f = std::move(f)] {
      f(make_error(errc::invalid_argument, "negative offset"));
      return true;
    });
    return;
  }
  struct context {
    std::byte* out = nullptr;
    std::size_t n = 0;
    std::uint64_t pos = 0;
    std::size_t done = 0;
    std::optional<slice_result> answer;
  };
  auto ctx = std::make_shared<context>();
  ctx->out = static_cast<std::byte*>(buf);
  ctx->n = n;
  ctx->pos = static_cast<std::uint64_t>(offset);
  st->push([st, ctx, f = std::move(f)]() -> bool {
    auto& c = *ctx;
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      if (c.done > 0)
        f(c.done);
      else
        f(std::move(err));
      return true;
    }
    if (c.n == 0) {
      // What a read there would get, known without a message.
      auto peek = detail::peek_offset(*st->core, c.pos);
      if (peek.error)
        f(std::move(peek.error));
      else if (peek.lost)
        f(detail::lost_error(c.pos, peek.oldest));
      else
        f(std::size_t{0});
      return true;
    }
    if (c.answer) {
      auto res = std::move(*c.answer);
      c.answer.reset();
      for (auto& s : res.slices) {
        std::memcpy(c.out + c.done, s.data(), s.size());
        c.done += s.size();
      }
      c.pos += res.size;
      if (res.error) {
        if (c.done > 0)
          f(c.done); // the error shows at the next read at its byte
        else
          f(std::move(res.error));
        return true;
      }
      if (res.end || c.done == c.n) {
        f(c.done);
        return true;
      }
    }
    st->ask_slices(c.pos, c.n - c.done, true,
                   [ctx](slice_result& res) { ctx->answer = std::move(res); });
    return false;
  });
}

void async_reader::read_at(caf::span<std::byte> buf, std::int64_t offset,
                           size_handler f) {
  read_at(buf.data(), buf.size(), offset, std::move(f));
}

void async_reader::read_slices(std::size_t max, slices_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  st->push([st, max, f = std::move(f)]() -> bool {
    std::vector<slice> out;
    if (auto err = st->gate()) {
      f(std::move(err));
    } else if (auto err = st->take_failure()) {
      f(std::move(err));
    } else if (max == 0) {
      auto res = st->zero_read();
      if (res)
        f(std::move(out));
      else
        f(std::move(res.error()));
    } else if (st->cursor.held() > 0) {
      st->cursor.take(max, out);
      f(std::move(out));
    } else if (auto* err = st->cursor.error_here()) {
      f(*err);
    } else if (st->cursor.at_end()) {
      f(std::move(out));
    } else {
      st->fetch();
      return false;
    }
    return true;
  });
}

void async_reader::read_to_end(std::size_t max, data_callback on_data,
                               done_handler on_done) {
  auto* st = get();
  if (st == nullptr) {
    on_done(invalid_reader());
    return;
  }
  if (max == 0)
    max = st->opts.prefetch;
  // One operation for the whole loop: later operations wait behind it, and
  // each batch costs no allocation of a new operation.
  // The loop holds a handle until it is done: the reader reads on to the
  // end even if the caller keeps none.
  st->push([st, max, keep = *this, on_data = std::move(on_data),
            on_done = std::move(on_done)]() -> bool {
    for (;;) {
      if (auto err = st->gate()) {
        on_done(std::move(err));
        return true;
      }
      if (auto err = st->take_failure()) {
        on_done(std::move(err));
        return true;
      }
      if (st->cursor.held() > 0) {
        std::vector<slice> batch;
        st->cursor.take(max, batch);
        on_data(batch);
        if (st->self == nullptr)
          return true; // the owner went inside the callback
        continue;
      }
      if (auto* err = st->cursor.error_here()) {
        on_done(*err);
        return true;
      }
      if (st->cursor.at_end()) {
        on_done(caf::error{});
        return true;
      }
      st->fetch();
      return false;
    }
  });
}

void async_reader::seek(std::int64_t offset, whence from, offset_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  st->push([st, offset, from, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      f(std::move(err));
      return true;
    }
    std::uint64_t base = 0;
    switch (from) {
      case whence::start:
        break;
      case whence::current:
        base = st->cursor.position();
        break;
      case whence::end:
        if (st->core->options.declared_length) {
          base = *st->core->options.declared_length;
        } else if (auto known = st->cursor.end_offset()) {
          base = *known;
        } else if (st->final_size) {
          base = *st->final_size;
        } else {
          st->fetch_final();
          return false;
        }
        break;
      default:
        f(make_error(errc::invalid_argument, "invalid whence"));
        return true;
    }
    std::uint64_t target = 0;
    auto check = detail::seek_target(base, offset, target);
    if (check != detail::seek_check::ok) {
      f(seek_error(check));
      return true;
    }
    st->cursor.seek(target);
    f(st->cursor.position());
    return true;
  });
}

void async_reader::skip_to_oldest(offset_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  auto known = std::make_shared<std::optional<std::uint64_t>>();
  st->push([st, known, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      f(std::move(err));
      return true;
    }
    if (!*known) {
      if (auto* c = st->core->counters.get()) {
        *known = c->oldest.load(std::memory_order_relaxed);
      } else {
        st->ask<stream_status>(caf::make_message(status_atom::value),
                               [known](stream_status& status) {
                                 *known = status.oldest;
                               });
        return false;
      }
    }
    if (st->cursor.position() < **known)
      st->cursor.seek(**known);
    f(st->cursor.position());
    return true;
  });
}

void async_reader::wait_for(std::int64_t offset, wait_handler f) {
  auto* st = get();
  if (st == nullptr) {
    f(invalid_reader());
    return;
  }
  if (offset < 0) {
    st->push([f = std::move(f)] {
      f(make_error(errc::invalid_argument, "negative offset"));
      return true;
    });
    return;
  }
  auto pos = static_cast<std::uint64_t>(offset);
  auto answer = std::make_shared<std::optional<slice_result>>();
  st->push([st, pos, answer, f = std::move(f)]() -> bool {
    if (auto err = st->gate()) {
      f(std::move(err));
      return true;
    }
    if (auto err = st->take_failure()) {
      f(std::move(err));
      return true;
    }
    if (*answer) {
      auto& res = **answer;
      if (res.size > 0)
        f(true);
      else if (res.error)
        f(std::move(res.error));
      else
        f(false); // ended before the byte
      return true;
    }
    auto here = st->cursor.position();
    if (pos >= here && pos - here < st->cursor.held()) {
      f(true); // held already
      return true;
    }
    st->ask_slices(pos, 1, true,
                   [answer](slice_result& res) { *answer = std::move(res); });
    return false;
  });
}

std::uint64_t async_reader::position() const noexcept {
  auto* st = get();
  return st ? st->cursor.position() : 0;
}

bool async_reader::at_end() const {
  auto* st = get();
  if (st == nullptr)
    return false;
  return detail::peek_position(*st->core, st->cursor, st->closed).at_end;
}

caf::error async_reader::pending_error() const {
  auto* st = get();
  if (st == nullptr)
    return invalid_reader();
  auto peek = detail::peek_position(*st->core, st->cursor, st->closed);
  if (peek.lost)
    return detail::lost_error(st->cursor.position(), peek.oldest);
  return std::move(peek.error);
}

void async_reader::close() {
  if (auto* st = get())
    st->close_reader();
}

bool async_reader::is_open() const noexcept {
  auto* st = get();
  return st != nullptr && !st->closed;
}

std::uint64_t async_reader::id() const noexcept {
  auto* st = get();
  return st ? st->id : 0;
}

} // namespace asyncstream
