// An event-based CAF service that embeds asyncstream: a producer pushes
// lines into a stream while two actors read it without blocking. The
// `line_counter` answers `count_atom` with the number of lines once the
// stream ended (an async_reader, read_to_end); a copier hands the stream to
// a `checker` actor's mailbox with bounded credit (async::copy_to), and the
// checker compares every byte. Prints OK and exits 0 on success.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <asyncstream/async.hpp>
#include <asyncstream/async_reader.hpp>
#include <asyncstream/error.hpp>
#include <asyncstream/source.hpp>
#include <asyncstream/stream.hpp>
#include <asyncstream/stream_writer.hpp>

using count_atom = caf::atom_constant<caf::atom("count")>;
using check_atom = caf::atom_constant<caf::atom("check")>;

namespace {

std::string line(int i) {
  return "line " + std::to_string(i) + '\n';
}

/// Answers `count_atom` with the number of lines of `s`, once it ended.
caf::behavior line_counter(caf::event_based_actor* self,
                           asyncstream::stream s) {
  return {
    [self, s](count_atom) {
      auto rp = self->make_response_promise();
      asyncstream::async_reader::open(self, s, [rp](auto r) mutable {
        if (!r) {
          rp.deliver(std::move(r.error()));
          return;
        }
        auto lines = std::make_shared<std::uint64_t>(0);
        // The loop keeps the reader until it is done; the reader closes
        // with it, or with this actor, whatever happens first.
        r->read_to_end(
          0,
          [lines](std::vector<asyncstream::slice>& xs) {
            for (auto& x : xs)
              for (char c : x.as_string_view())
                *lines += c == '\n';
          },
          [rp, lines](caf::error err) mutable {
            if (err)
              rp.deliver(std::move(err));
            else
              rp.deliver(*lines);
          });
      });
      return rp;
    },
  };
}

/// Takes the batches of `async::copy_to`; answers `check_atom` with
/// whether the bytes were `expected`, once the copy ended.
caf::behavior checker(caf::event_based_actor* self, std::string expected) {
  auto got = std::make_shared<std::string>();
  auto done = std::make_shared<bool>(false);
  auto waiting = std::make_shared<std::vector<caf::response_promise>>();
  return {
    [=](asyncstream::stream_data& d) -> std::uint64_t {
      for (auto& x : d.slices)
        got->append(x.as_string_view());
      if (d.end || d.error) {
        *done = true;
        for (auto& rp : *waiting)
          rp.deliver(!d.error && *got == expected);
        waiting->clear();
      }
      return d.size; // the answer gives the copier its credit back
    },
    [=](check_atom) {
      auto rp = self->make_response_promise();
      if (*done)
        rp.deliver(*got == expected);
      else
        waiting->push_back(rp);
      return rp;
    },
  };
}

/// Copies `s` into `dest` with at most 4 batches of 16 KiB unanswered.
void copier(caf::event_based_actor* self, asyncstream::stream s,
            caf::actor dest) {
  asyncstream::async_reader::open(self, s, [self, dest](auto r) {
    if (!r) {
      self->quit(std::move(r.error()));
      return;
    }
    asyncstream::async::copy_options opts;
    opts.batch = 16 * 1024;
    opts.credit = 4;
    asyncstream::async::copy_to(self, *r, dest, opts,
                                [self](caf::error err) { self->quit(err); });
  });
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  asyncstream::configure(cfg);
  caf::actor_system sys{cfg};
  std::string expected;
  for (int i = 0; i < 10000; ++i)
    expected += line(i);
  auto str = asyncstream::stream::make(sys, asyncstream::source::push());
  if (!str) {
    std::fprintf(stderr, "stream::make: %s\n",
                 asyncstream::render(str.error()).c_str());
    return 1;
  }
  auto counter = sys.spawn(line_counter, *str);
  auto check = sys.spawn(checker, expected);
  sys.spawn(copier, *str, check);
  // The producer: a plain thread, writing while the actors read.
  std::thread producer{[w = str->writer()]() mutable {
    if (!w)
      return;
    for (int i = 0; i < 10000; ++i) {
      auto text = line(i);
      if (auto err = w->write(text.data(), text.size()))
        return; // the stream failed or was aborted
    }
    w->close();
  }};
  int rc = 0;
  {
    caf::scoped_actor self{sys};
    self->request(counter, caf::infinite, count_atom::value)
      .receive(
        [&](std::uint64_t n) {
          if (n != 10000) {
            std::fprintf(stderr, "counted %llu lines\n",
                         static_cast<unsigned long long>(n));
            rc = 1;
          }
        },
        [&](caf::error& err) {
          std::fprintf(stderr, "count: %s\n", asyncstream::render(err).c_str());
          rc = 1;
        });
    self->request(check, caf::infinite, check_atom::value)
      .receive([&](bool same) { rc = same ? rc : 1; },
               [&](caf::error&) { rc = 1; });
    self->send_exit(counter, caf::exit_reason::user_shutdown);
    self->send_exit(check, caf::exit_reason::user_shutdown);
  }
  producer.join();
  if (rc == 0)
    std::puts("OK");
  return rc;
}
