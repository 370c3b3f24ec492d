#include "download_actor.hpp"

#include <algorithm>
#include <cstdint>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/error.hpp"

namespace streamerd {

namespace {

using pull_atom = caf::atom_constant<caf::atom("sd_pull")>;
using stop_atom = caf::atom_constant<caf::atom("sd_stop")>;

using asyncstream::async_reader;
using asyncstream::stream_status;

struct download_state {
  async_reader reader;
  static inline const char* name = "streamerd.download";
};

using download_ptr = caf::stateful_actor<download_state>*;

void report_ready(const std::shared_ptr<download_sink>& sink,
                  caf::error err, stream_status st, std::uint64_t offset) {
  sink->on_ready(std::move(err), std::move(st), offset);
}

/// Asks for the status, then reports the reader ready at `offset`.
void finish_open(download_ptr self, download_actor_request req,
                 std::shared_ptr<download_sink> sink, std::uint64_t offset) {
  self->request(req.stream.transfer(), caf::infinite,
                asyncstream::status_atom::value)
    .then(
      [sink, offset](stream_status& st) {
        report_ready(sink, caf::error{}, std::move(st), offset);
      },
      [sink](caf::error& err) {
        report_ready(sink, std::move(err), {}, 0);
      });
}

void close_and_quit(download_ptr self) {
  self->state.reader.close();
  self->quit();
}

caf::behavior download_fun(download_ptr self, download_actor_request req,
                           std::shared_ptr<download_sink> sink) {
  auto on_open = [self, req, sink](caf::expected<async_reader> r) {
    auto& st = self->state;
    if (!r) {
      report_ready(sink, std::move(r.error()), {}, 0);
      self->quit();
      return;
    }
    st.reader = std::move(*r);
    auto positioned = [self, req, sink](caf::expected<std::uint64_t> pos) {
      if (!pos) {
        report_ready(sink, std::move(pos.error()), {}, 0);
        return;
      }
      finish_open(self, req, sink, *pos);
    };
    if (req.suffix) {
      // The last K bytes: wait for the end, then step back from it.
      auto k = *req.suffix;
      st.reader.seek(0, asyncstream::whence::end,
                     [self, k, positioned](caf::expected<std::uint64_t> end) {
                       if (!end) {
                         positioned(std::move(end));
                         return;
                       }
                       auto start = *end > k ? *end - k : 0;
                       self->state.reader.seek(
                         static_cast<std::int64_t>(start),
                         asyncstream::whence::start, positioned);
                     });
    } else if (req.wait_first) {
      // The status line of a range waits for the range's first byte.
      auto at = static_cast<std::int64_t>(
        std::min<std::uint64_t>(req.offset, INT64_MAX));
      st.reader.wait_for(at, [self, req, sink,
                              positioned](caf::expected<bool> there) {
        if (!there) {
          report_ready(sink, std::move(there.error()), {}, 0);
          return;
        }
        self->state.reader.seek(static_cast<std::int64_t>(std::min<std::uint64_t>(
                                  req.offset, INT64_MAX)),
                                asyncstream::whence::start, positioned);
      });
    } else {
      st.reader.seek(static_cast<std::int64_t>(
                       std::min<std::uint64_t>(req.offset, INT64_MAX)),
                     asyncstream::whence::start, positioned);
    }
  };
  async_reader::open(self, req.stream, req.queue_timeout, std::move(on_open));
  return {
    [self, sink](pull_atom, std::uint64_t max) {
      auto& st = self->state;
      if (!st.reader.valid())
        return;
      st.reader.read_slices(
        static_cast<std::size_t>(max),
        [sink](caf::expected<std::vector<asyncstream::slice>> xs) {
          if (xs)
            sink->on_data(std::move(*xs), caf::error{});
          else
            sink->on_data({}, std::move(xs.error()));
        });
    },
    [self](stop_atom) {
      // The reader belongs to this actor: quitting closes it, and an open
      // still queued for a slot is withdrawn from the readers monitor.
      close_and_quit(self);
    },
  };
}

} // namespace

download_handle download_handle::start(caf::actor_system& sys,
                                       download_actor_request req,
                                       std::shared_ptr<download_sink> sink) {
  download_handle h;
  h.actor_ = sys.spawn(download_fun, std::move(req), std::move(sink));
  return h;
}

void download_handle::pull(std::size_t max) const {
  if (actor_)
    caf::anon_send(actor_, pull_atom::value, std::uint64_t{max});
}

void download_handle::stop() {
  if (actor_) {
    caf::anon_send(actor_, stop_atom::value);
    actor_ = nullptr;
  }
}

void on_stream_final(caf::actor_system& sys, const asyncstream::stream& s,
                     std::function<void(stream_status)> f) {
  sys.spawn([t = s.transfer(), f = std::move(f)](caf::event_based_actor* self) {
    self->request(t, caf::infinite, asyncstream::wait_atom::value)
      .then([f](stream_status& st) { f(std::move(st)); },
            [f](caf::error& err) {
              stream_status st;
              st.final = true;
              st.error = std::move(err);
              f(std::move(st));
            });
  });
}

} // namespace streamerd
