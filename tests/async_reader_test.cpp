// async_reader on a real scheduler: actors reading streams without blocking.
#include <doctest/doctest.h>

#include <future>

#include <caf/event_based_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/error.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

/// Spawns an actor that reads `s` to its end with reads of `step` bytes and
/// fulfils the promise with the bytes or the error text.
std::future<std::string> read_in_actor(caf::actor_system& sys, stream s,
                                       std::size_t step) {
  auto done = std::make_shared<std::promise<std::string>>();
  auto fut = done->get_future();
  sys.spawn([s, step, done](caf::event_based_actor* self) {
    async_reader::open(self, s, [self, step, done](auto r) {
      if (!r) {
        done->set_value("error: " + render(r.error()));
        return;
      }
      auto reader = *r;
      auto buf = std::make_shared<std::string>(step, '\0');
      auto got = std::make_shared<std::string>();
      auto loop = std::make_shared<std::function<void()>>();
      *loop = [self, reader, buf, got, loop, done]() mutable {
        reader.read(buf->data(), buf->size(),
                    [self, reader, buf, got, loop, done](auto n) mutable {
                      if (!n) {
                        done->set_value(*got + "error: " + render(n.error()));
                        *loop = nullptr;
                        self->quit();
                        return;
                      }
                      if (*n == 0) {
                        reader.close();
                        done->set_value(*got);
                        *loop = nullptr; // break the cycle
                        self->quit();
                        return;
                      }
                      got->append(buf->data(), *n);
                      (*loop)();
                    });
      };
      (*loop)();
    });
  });
  return fut;
}

} // namespace

TEST_SUITE("async_reader") {

TEST_CASE_FIXTURE(system_fixture, "actors read a live stream to its end") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto data = pattern(500000, 9);
  std::vector<std::future<std::string>> results;
  for (std::size_t step : {1u, 100u, 4096u, 65536u, 1000000u})
    results.push_back(read_in_actor(sys, *s, step));
  for (std::size_t i = 0; i < data.size(); i += 10000)
    p.write(std::string_view{data}.substr(i, 10000));
  p.close_writer();
  for (auto& f : results)
    CHECK(f.get() == data);
}

TEST_CASE_FIXTURE(system_fixture, "actors see errors at their byte") {
  auto data = pattern(7777, 2);
  auto s = stream::make(sys, scripted(data, 65536,
                                      make_error(errc::io_error,
                                                 "late failure")));
  REQUIRE(s);
  for (std::size_t step : {1000u, 7777u, 100000u}) {
    auto got = read_in_actor(sys, *s, step).get();
    REQUIRE(got.size() > data.size());
    CHECK(got.substr(0, data.size()) == data); // every byte, then the error
    CHECK(got.find("late failure", data.size()) != std::string::npos);
  }
}

TEST_CASE_FIXTURE(system_fixture, "actors: seek, slices, wait_for, close") {
  auto s = stream::make(sys, source::from_bytes(std::string("0123456789")));
  REQUIRE(s);
  std::promise<std::vector<std::string>> done;
  auto fut = done.get_future();
  sys.spawn([&, s = *s](caf::event_based_actor* self) {
    async_reader::open(self, s, [&](auto r) {
      REQUIRE(r);
      auto reader = *r;
      auto log = std::make_shared<std::vector<std::string>>();
      reader.seek(-4, whence::end, [log](auto pos) {
        log->push_back(pos ? "seek " + std::to_string(*pos) : "seek error");
      });
      reader.read_slices(2, [log](auto xs) {
        std::string text = xs ? "" : "error";
        for (auto& x : xs ? *xs : std::vector<slice>{})
          text += x.as_string_view();
        log->push_back("slices " + text);
      });
      reader.seek(-100, whence::current, [log](auto pos) {
        log->push_back(pos ? "bad seek accepted"
                           : is(pos.error(), errc::invalid_argument)
                               ? "bad seek refused"
                               : "bad seek: wrong error");
      });
      reader.wait_for(9, [log](auto ok) {
        log->push_back(ok && *ok ? "byte 9 exists" : "byte 9 missing");
      });
      reader.wait_for(10, [log](auto ok) {
        log->push_back(ok && !*ok ? "ended before 10" : "10 wrong");
      });
      reader.seek(0, static_cast<whence>(9), [log](auto pos) {
        log->push_back(!pos && is(pos.error(), errc::invalid_argument)
                         ? "bad whence refused"
                         : "bad whence accepted");
      });
      reader.read(nullptr, 0, [log, reader](auto n) mutable {
        log->push_back("zero read " + std::to_string(*n));
        reader.close();
      });
      reader.read(nullptr, 1, [&, log](auto n) {
        log->push_back(!n && is(n.error(), errc::closed) ? "closed"
                                                         : "still open");
        done.set_value(*log);
      });
    });
  });
  auto log = fut.get();
  CHECK(log == std::vector<std::string>{
          "seek 6", "slices 67", "bad seek refused", "byte 9 exists",
          "ended before 10", "bad whence refused", "zero read 0", "closed"});
}

TEST_CASE_FIXTURE(system_fixture, "actors: abort cancels a parked read") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  std::promise<caf::error> parked;
  std::promise<void> opened;
  sys.spawn([&, s = *s](caf::event_based_actor* self) {
    async_reader::open(self, s, [&](auto r) {
      REQUIRE(r);
      auto reader = *r;
      auto buf = std::make_shared<char>();
      // The handler keeps the reader: dropping its last handle closes it.
      reader.read(buf.get(), 1, [&, buf, reader](auto n) {
        parked.set_value(n ? caf::error{} : n.error());
      });
      opened.set_value();
    });
  });
  opened.get_future().wait();
  s->abort();
  auto err = parked.get_future().get();
  CHECK(is(err, errc::canceled));
}

TEST_CASE_FIXTURE(system_fixture, "actors: a read with a timeout gives up") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  std::promise<std::vector<std::string>> done;
  reader_options opts;
  opts.timeout = caf::timespan{std::chrono::milliseconds{10}};
  struct state {
    async_reader reader;
    char byte = 0;
    std::vector<std::string> log;
  };
  auto st = std::make_shared<state>();
  // Reads one byte, retrying while the read times out (a loaded machine may
  // take longer than 10 ms to deliver it).
  auto retry = std::make_shared<std::function<void()>>();
  *retry = [&, st, retry] {
    st->reader.read(&st->byte, 1, [&, st, retry](auto n) {
      if (!n && is(n.error(), errc::timeout)) {
        (*retry)();
        return;
      }
      st->log.push_back(n && *n == 1 ? std::string(1, st->byte) : "nothing");
      st->reader.close();
      *retry = nullptr;
      done.set_value(st->log);
    });
  };
  sys.spawn([&, st, retry, s = *s](caf::event_based_actor* self) {
    async_reader::open(
      self, s,
      [&, st, retry](auto r) {
        REQUIRE(r);
        st->reader = *r;
        st->reader.read(&st->byte, 1, [&, st, retry](auto n) {
          // Nothing was written: the first wait must give up.
          st->log.push_back(!n && is(n.error(), errc::timeout) ? "timeout"
                                                               : "no timeout");
          p.write("k");
          (*retry)();
        });
      },
      opts);
  });
  auto log = done.get_future().get();
  CHECK(log == std::vector<std::string>{"timeout", "k"});
}

} // TEST_SUITE
