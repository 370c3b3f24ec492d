#include "asyncstream/async.hpp"

#include <memory>
#include <mutex>
#include <string>

#include <caf/make_message.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/actor_request.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"

namespace asyncstream::async {

namespace {

caf::error invalid_stream() {
  return make_error(errc::invalid_argument, "invalid stream handle");
}

/// Returns the result of a close that finished already, if any. Never
/// waits: a blocking close holds the mutex while it waits for readers.
std::optional<caf::error> known_close_result(detail::stream_core& core) {
  std::unique_lock<std::mutex> guard{core.close_mtx, std::try_to_lock};
  if (guard.owns_lock() && core.close_result)
    return *core.close_result;
  return std::nullopt;
}

/// Records `result` as the close result unless one was recorded first;
/// returns the one that counts.
caf::error record_close_result(detail::stream_core& core, caf::error result) {
  std::unique_lock<std::mutex> guard{core.close_mtx, std::try_to_lock};
  if (!guard.owns_lock())
    return result; // a blocking close is finishing; it records its own
  if (core.close_result)
    return *core.close_result;
  core.close_result = result;
  return result;
}

/// Deletes the stream file of `core`, if it has a named one.
caf::error remove_file(detail::stream_core& core) {
  if (!core.file)
    return {};
  if (auto ec = core.file->remove())
    return make_error(errc::io_error, "cannot delete the stream file "
                                        + core.file->path() + ": "
                                        + ec.message());
  return {};
}

void shutdown_impl(caf::scheduled_actor* self,
                   std::shared_ptr<detail::stream_core> core, caf::error err,
                   bool remove, error_handler f) {
  auto finish = [core, remove, f](caf::error result) {
    if (!remove) {
      f(std::move(result));
      return;
    }
    // remove() reports only what deleting the file did.
    f(remove_file(*core));
  };
  if (auto known = known_close_result(*core)) {
    finish(std::move(*known));
    return;
  }
  if (core->aborted.load()) {
    finish(record_close_result(*core, make_error(errc::canceled)));
    return;
  }
  caf::anon_send(core->monitor, refuse_atom::value, std::move(err));
  detail::actor_request(
    self, core->monitor, caf::infinite,
    caf::make_message(wait_zero_atom::value),
    [self, core, finish](std::uint64_t) {
      if (core->aborted.load()) {
        finish(record_close_result(*core, make_error(errc::canceled)));
        return;
      }
      // Stop the source first, then ask, as the blocking close does: the
      // result is what `status()` says from now on (`closed` for a stream
      // stopped before its end). Both messages come from this thread, so
      // the transfer actor handles the close before the question.
      caf::anon_send(core->transfer, close_atom::value);
      detail::actor_request(
        self, core->transfer, caf::infinite,
        caf::make_message(status_atom::value),
        [core, finish](stream_status& st) {
          finish(record_close_result(*core, std::move(st.error)));
        },
        [finish](caf::error& e) { finish(std::move(e)); });
      core->control->stop();
    },
    [finish](caf::error& e) { finish(std::move(e)); });
}

/// The state of one `copy_to`.
struct copier : std::enable_shared_from_this<copier> {
  caf::scheduled_actor* self = nullptr;
  async_reader reader;
  caf::strong_actor_ptr dest;
  copy_options opts;
  error_handler done;
  std::size_t in_flight = 0;
  bool reading = false;
  /// The last message was sent (end or error), or a request to `dest`
  /// failed.
  bool source_done = false;
  bool finished = false;
  caf::error result;

  void pump() {
    if (reading || source_done || in_flight >= opts.credit)
      return;
    reading = true;
    auto pos = reader.position();
    auto c = shared_from_this();
    reader.read_slices(opts.batch,
                       [c, pos](caf::expected<std::vector<slice>> xs) {
                         c->reading = false;
                         if (c->source_done) {
                           // The receiver failed meanwhile: drop the bytes.
                           c->check_done();
                           return;
                         }
                         if (!xs) {
                           c->send_last(pos, std::move(xs.error()));
                           return;
                         }
                         if (xs->empty()) {
                           c->send_last(pos, caf::error{});
                           return;
                         }
                         stream_data d;
                         d.offset = pos;
                         for (auto& x : *xs)
                           d.size += x.size();
                         d.slices = std::move(*xs);
                         c->send(std::move(d));
                         c->pump();
                       });
  }

  void send_last(std::uint64_t pos, caf::error err) {
    if (source_done)
      return;
    source_done = true;
    result = err;
    stream_data d;
    d.offset = pos;
    d.end = !err;
    d.error = std::move(err);
    send(std::move(d));
  }

  void send(stream_data d) {
    ++in_flight;
    auto c = shared_from_this();
    detail::actor_request(
      self, dest, caf::infinite, caf::make_message(std::move(d)),
      [c](std::uint64_t) {
        --c->in_flight;
        c->pump();
        c->check_done();
      },
      [c](caf::error& err) {
        --c->in_flight;
        if (!c->source_done || !c->result) {
          // The receiver failed: stop reading, report its error.
          c->source_done = true;
          c->result = std::move(err);
        }
        c->check_done();
      });
  }

  void check_done() {
    // A read still waiting after the receiver failed is abandoned: its
    // answer finds `source_done` set and drops its bytes.
    if (finished || !source_done || in_flight > 0)
      return;
    finished = true;
    auto f = std::move(done);
    auto r = std::move(result);
    reader = async_reader{}; // release our handle before the callback
    f(std::move(r));
  }
};

void copy_impl(caf::scheduled_actor* self, async_reader reader,
               caf::strong_actor_ptr dest, copy_options opts,
               error_handler done) {
  if (!reader.valid()) {
    done(make_error(errc::invalid_argument, "invalid async_reader"));
    return;
  }
  if (!dest) {
    done(make_error(errc::invalid_argument, "copy_to: invalid destination"));
    return;
  }
  if (opts.batch == 0)
    opts.batch = 1;
  if (opts.credit == 0)
    opts.credit = 1;
  auto c = std::make_shared<copier>();
  c->self = self;
  c->reader = std::move(reader);
  c->dest = std::move(dest);
  c->opts = opts;
  c->done = std::move(done);
  c->pump();
}

} // namespace

void status(caf::scheduled_actor* self, const stream& s, status_handler f) {
  if (!s.valid()) {
    f(invalid_stream());
    return;
  }
  detail::actor_request(
    self, s.transfer(), caf::infinite, caf::make_message(status_atom::value),
    [f](stream_status& st) { f(std::move(st)); },
    [f](caf::error& err) { f(std::move(err)); });
}

void wait(caf::scheduled_actor* self, const stream& s, length_handler f) {
  if (!s.valid()) {
    f(invalid_stream());
    return;
  }
  detail::actor_request(
    self, s.transfer(), caf::infinite, caf::make_message(wait_atom::value),
    [f](stream_status& st) {
      if (st.error)
        f(std::move(st.error));
      else
        f(st.size);
    },
    [f](caf::error& err) { f(std::move(err)); });
}

void close(caf::scheduled_actor* self, const stream& s, error_handler f) {
  shutdown(self, s, make_error(errc::closing, "stream closed"), std::move(f));
}

void shutdown(caf::scheduled_actor* self, const stream& s, caf::error err,
              error_handler f) {
  if (!s.valid()) {
    f(invalid_stream());
    return;
  }
  if (!err) {
    f(make_error(errc::invalid_argument, "shutdown: no error"));
    return;
  }
  shutdown_impl(self, s.core(), std::move(err), false, std::move(f));
}

void remove(caf::scheduled_actor* self, const stream& s, error_handler f) {
  if (!s.valid()) {
    f(invalid_stream());
    return;
  }
  shutdown_impl(self, s.core(), make_error(errc::removing), true, std::move(f));
}

caf::expected<stream_writer> open_writer(const stream& s) {
  return s.writer();
}

void copy_to(caf::scheduled_actor* self, async_reader reader,
             const caf::actor& dest, copy_options opts, error_handler done) {
  copy_impl(self, std::move(reader),
            caf::actor_cast<caf::strong_actor_ptr>(dest), opts,
            std::move(done));
}

void copy_to(caf::scheduled_actor* self, async_reader reader,
             const stream_sink_actor& dest, copy_options opts,
             error_handler done) {
  copy_impl(self, std::move(reader),
            caf::actor_cast<caf::strong_actor_ptr>(dest), opts,
            std::move(done));
}

} // namespace asyncstream::async
