// Deterministic tests of the actors' message ordering, on CAF's test
// coordinator through the public harness (asyncstream/testing/fixture.hpp).
#include <doctest/doctest.h>

#include <array>
#include <limits>
#include <optional>
#include <string>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/testing/fixture.hpp"

using namespace asyncstream;
using asyncstream::testing::fixture;

namespace {

stream_options small_chunks() {
  stream_options opts;
  opts.chunk_size = 4096;
  return opts;
}

std::string pattern(std::size_t n, int seed = 0) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return out;
}

} // namespace

TEST_SUITE("deterministic") {

TEST_CASE("rule 2: a parked read returns the first bytes that arrive") {
  fixture f;
  auto& p = f.add_probe();
  p.request(0, 1000);
  f.run();
  CHECK(p.outstanding() == 1); // nothing there yet: parked
  CHECK(f.status().parked == 1);
  f.emit("abc");
  f.run();
  CHECK(f.status().parked == 0);
  REQUIRE(p.answers().size() == 1);
  CHECK(p.received() == "abc"); // a short read, not a wait for 1000
  CHECK_FALSE(p.ended());
}

TEST_CASE("rule 3: a zero-length request is answered at once") {
  fixture f;
  auto& p = f.add_probe();
  p.request(0, 0);
  f.run();
  REQUIRE(p.answers().size() == 1);
  CHECK(p.answers()[0].size == 0);
  CHECK_FALSE(p.answers()[0].end);
  CHECK_FALSE(p.answers()[0].error);
}

TEST_CASE("rule 1: parked requests are served lowest offset first") {
  fixture f;
  auto& far = f.add_probe();
  auto& near = f.add_probe();
  auto& mid = f.add_probe();
  far.request(8, 4);
  near.request(0, 4);
  mid.request(4, 4);
  f.run();
  f.emit(pattern(12));
  f.run();
  REQUIRE(near.answers().size() == 1);
  REQUIRE(mid.answers().size() == 1);
  REQUIRE(far.answers().size() == 1);
  CHECK(near.arrival(0) < mid.arrival(0));
  CHECK(mid.arrival(0) < far.arrival(0));
  CHECK(near.received() == pattern(12).substr(0, 4));
  CHECK(mid.received() == pattern(12).substr(4, 4));
  CHECK(far.received() == pattern(12).substr(8, 4));
}

TEST_CASE("rule 1: a request beyond the published end stays parked") {
  fixture f;
  auto& p = f.add_probe();
  p.request(10, 5);
  f.emit("0123456789");
  f.run();
  CHECK(p.outstanding() == 1);
  f.emit("ABCDE");
  f.run();
  CHECK(p.received() == "ABCDE");
}

TEST_CASE("rule 1: bytes cross chunk borders intact") {
  fixture f{small_chunks()};
  auto data = pattern(50000, 3);
  auto& p = f.add_probe();
  p.read_all(0, 7000);
  for (std::size_t i = 0; i < data.size(); i += 3001)
    f.emit(std::string_view{data}.substr(i, 3001));
  f.end();
  f.run();
  CHECK(p.received() == data);
  CHECK(p.ended());
}

TEST_CASE("rule 4: the end is reported only at the last byte") {
  fixture f;
  auto& early = f.add_probe();
  auto& last = f.add_probe();
  early.request(0, 3);
  last.request(3, 100);
  f.emit("abcdef");
  f.end();
  f.run();
  REQUIRE(early.answers().size() == 1);
  CHECK_FALSE(early.ended()); // bytes remain after offset 3
  CHECK(last.received() == "def");
  CHECK(last.ended()); // the answer reaching the end says so
  auto& late = f.add_probe(); // a reader created after the end
  late.read_all(0, 2);
  f.run();
  CHECK(late.received() == "abcdef");
  CHECK(late.ended());
}

TEST_CASE("rule 5: an error reaches a reader only at its byte") {
  fixture f{small_chunks()};
  auto data = pattern(10007);
  auto& p = f.add_probe();
  p.read_all(0, 3000);
  f.emit(data);
  f.fail(make_error(errc::io_error, "disk on fire"));
  f.run();
  CHECK(p.received() == data); // exactly k bytes, not rounded to a chunk
  CHECK(is(p.error(), errc::io_error));
  // Every answer before the last carried bytes and no error.
  for (std::size_t i = 0; i + 1 < p.answers().size(); ++i)
    CHECK_FALSE(p.answers()[i].error);
  // A reader far below the failure still reads without seeing it.
  auto& q = f.add_probe();
  q.request(0, 100);
  f.run();
  CHECK(q.received() == data.substr(0, 100));
  CHECK_FALSE(q.error());
}

TEST_CASE("rule 5: the stream's status reports the error at once") {
  fixture f;
  f.emit("abc");
  f.fail(make_error(errc::io_error));
  f.run();
  auto st = f.status();
  CHECK(st.final);
  CHECK(st.size == 3);
  CHECK(is(st.error, errc::io_error));
  CHECK_FALSE(is(st.error, errc::timeout));
  // A clean status has no error; asking what it is must not crash (CAF's
  // category() of an empty error reads through a null pointer).
  CHECK_FALSE(is(caf::error{}, errc::io_error));
  CHECK_FALSE(is(caf::error{}, errc::none));
}

TEST_CASE("rule 7: a source shorter than its declared length fails") {
  stream_options opts;
  opts.declared_length = 10;
  fixture f{opts};
  auto& p = f.add_probe();
  p.read_all(0, 100);
  f.emit("12345");
  f.end();
  f.run();
  CHECK(p.received() == "12345");
  CHECK(is(p.error(), errc::unexpected_end));
}

TEST_CASE("rule 7: a longer source is cut at the declared length") {
  stream_options opts;
  opts.declared_length = 4;
  fixture f{opts};
  auto& p = f.add_probe();
  p.read_all(0, 100);
  f.emit("12");
  f.emit("3456");
  f.run();
  CHECK(p.received() == "1234");
  CHECK(p.ended());
  CHECK_FALSE(p.error());
  auto st = f.status();
  CHECK(st.final);
  CHECK(st.size == 4);
}

TEST_CASE("rule 8: past the capacity readers get the bytes, then buffer full") {
  stream_options opts;
  opts.capacity = 6;
  fixture f{opts};
  auto& p = f.add_probe();
  p.read_all(0, 4);
  f.emit("abcd");
  f.emit("efgh");
  f.run();
  CHECK(p.received() == "abcdef");
  CHECK(is(p.error(), errc::buffer_full));
}

TEST_CASE("rule 8: a source that fits its capacity exactly ends cleanly") {
  stream_options opts;
  opts.capacity = 4;
  fixture f{opts};
  auto& p = f.add_probe();
  p.read_all(0, 100);
  f.emit("abcd");
  f.end();
  f.run();
  CHECK(p.received() == "abcd");
  CHECK(p.ended());
  CHECK_FALSE(p.error());
}

TEST_CASE("rule 9: both edges of a retention window are exact") {
  stream_options opts;
  opts.retention = 10;
  fixture f{opts};
  auto& early = f.add_probe();
  early.request(0, 4); // answered before the window moves
  f.run();
  f.emit("0123456789");
  f.run();
  f.emit("ABCDEF"); // 16 bytes written: 6..15 are kept
  f.run();
  auto& from6 = f.add_probe();
  from6.request(6, 100);
  auto& from5 = f.add_probe();
  from5.request(5, 100);
  auto& from16 = f.add_probe();
  from16.request(16, 100);
  f.run();
  CHECK(from6.received() == "6789ABCDEF");
  CHECK(is(from5.error(), errc::data_loss));
  CHECK(render(from5.error()).find("1 byte lost") != std::string::npos);
  CHECK(from16.outstanding() == 1); // beyond the live end: waits
  CHECK(early.received() == "0123"); // a held slice stays valid
  auto st = f.status();
  CHECK(st.oldest == 6);
  CHECK(st.size == 16);
  f.end();
  f.run();
  CHECK(from16.ended()); // beyond the end of a finished stream: the end
  auto& from0 = f.add_probe();
  from0.request(0, 1);
  f.run();
  CHECK(is(from0.error(), errc::data_loss));
  CHECK(render(from0.error()).find("6 bytes lost") != std::string::npos);
}

TEST_CASE("rule 9: a reader that falls out of the window learns it there") {
  stream_options opts;
  opts.retention = 8;
  opts.chunk_size = 4096;
  fixture f{opts};
  auto& slow = f.add_probe();
  slow.request(0, 4);
  f.emit("abcdefgh");
  f.run();
  CHECK(slow.received() == "abcd");
  f.emit("ijklmnop"); // the window moves on while the slow reader stalls
  f.run();
  slow.read_all(4, 4); // it goes on at offset 4: lost
  f.run();
  CHECK(is(slow.error(), errc::data_loss));
  CHECK(render(slow.error()).find("4 bytes lost") != std::string::npos);
  auto& fast = f.add_probe();
  fast.read_all(8, 3); // the fast reader is untouched
  f.end();
  f.run();
  CHECK(fast.received() == "ijklmnop");
  CHECK(fast.ended());
}

TEST_CASE("demand-driven: the credit follows the furthest request") {
  constexpr auto unlimited = std::numeric_limits<std::uint64_t>::max();
  stream_options opts;
  opts.read_ahead = 100;
  fixture f{opts};
  CHECK(f.credit() == 100); // before anyone asks: the read-ahead alone
  auto& p = f.add_probe();
  p.request(0, 10);
  f.run();
  CHECK(f.credit() == 110);
  p.request(500, 20);
  p.request(50, 1); // not further: no change
  f.run();
  CHECK(f.credit() == 620);
  caf::anon_send(f.transfer(), release_atom::value);
  f.run();
  CHECK(f.credit() == unlimited);
}

TEST_CASE("tethered: the credit follows the slowest open reader") {
  constexpr auto unlimited = std::numeric_limits<std::uint64_t>::max();
  stream_options opts;
  opts.retention = 1000;
  opts.policy = retention_policy::tethered;
  fixture f{opts};
  CHECK(f.credit() == unlimited); // nobody reading: nothing holds it back
  auto& slow = f.add_probe();
  auto& fast = f.add_probe();
  slow.request(10, 1);
  fast.request(300, 1);
  f.run();
  CHECK(f.credit() == 1010);
  slow.request(200, 1);
  f.run();
  CHECK(f.credit() == 1200);
  caf::anon_send(f.transfer(), withdraw_atom::value, slow.id());
  f.run();
  CHECK(f.credit() == 1200); // a timed-out wait keeps the reader tethered
  slow.cancel(); // closed: the fast reader holds the window now
  f.run();
  CHECK(f.credit() == 1300);
  fast.cancel();
  f.run();
  CHECK(f.credit() == unlimited);
}

TEST_CASE("tethered: a reader below the window does not hold it back") {
  stream_options opts;
  opts.retention = 10;
  opts.policy = retention_policy::tethered;
  fixture f{opts};
  f.emit("0123456789ABCDEF"); // nobody reading: 6..15 are kept
  f.run();
  auto& late = f.add_probe();
  late.request(0, 4); // gone: data_loss, and no tether at offset 0
  f.run();
  CHECK(is(late.error(), errc::data_loss));
  CHECK(f.credit() == 16); // tethered at the oldest kept byte: 6 + 10
}

TEST_CASE("rule 10: canceling one reader wakes only that reader") {
  fixture f;
  auto& a = f.add_probe();
  auto& b = f.add_probe();
  a.request(0, 10);
  b.request(0, 10);
  f.run();
  a.cancel();
  f.run();
  REQUIRE(a.answers().size() == 1);
  CHECK(is(a.error(), errc::closed));
  CHECK(b.answers().empty());
  CHECK(b.outstanding() == 1);
  f.emit("x");
  f.run();
  CHECK(b.received() == "x");
}

TEST_CASE("rule 10: abort fails pending and later reads at once") {
  fixture f;
  f.emit("abc");
  auto& parked = f.add_probe();
  parked.request(3, 10);
  f.run();
  caf::anon_send(f.transfer(), abort_atom::value);
  f.run();
  CHECK(is(parked.error(), errc::canceled));
  auto& later = f.add_probe();
  later.request(0, 10); // bytes exist, but the stream was aborted
  f.run();
  CHECK(is(later.error(), errc::canceled));
  CHECK(later.received().empty());
  CHECK(is(f.status().error, errc::canceled));
}

TEST_CASE("rule 11: shutting down answers every parked request") {
  auto f = std::make_unique<fixture>();
  auto& a = f->add_probe();
  auto& b = f->add_probe();
  a.request(0, 10);
  b.request(100, 10);
  f->run();
  CHECK(a.outstanding() == 1);
  caf::anon_send(f->transfer(), shutdown_atom::value);
  f->run();
  CHECK(a.outstanding() == 0);
  CHECK(b.outstanding() == 0);
  CHECK(is(a.error(), errc::stream_gone));
  CHECK(is(b.error(), errc::stream_gone));
}

TEST_CASE("readers monitor: the reader over the cap waits for a slot") {
  stream_options opts;
  opts.max_readers = 2;
  fixture f{opts};
  std::vector<std::uint64_t> granted;
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    for (std::uint64_t id = 1; id <= 3; ++id)
      self->request(f.monitor(), caf::infinite, open_atom::value, id)
        .then([&](std::uint64_t x) { granted.push_back(x); });
  });
  f.run();
  CHECK(granted == std::vector<std::uint64_t>{1, 2});
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{1});
  f.run();
  CHECK(granted == std::vector<std::uint64_t>{1, 2, 3});
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("readers monitor: a withdrawn open does not take the next slot") {
  stream_options opts;
  opts.max_readers = 1;
  fixture f{opts};
  std::vector<std::string> events;
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    for (std::uint64_t id = 1; id <= 3; ++id)
      self->request(f.monitor(), caf::infinite, open_atom::value, id)
        .then([&, id](std::uint64_t) {
                events.push_back("granted " + std::to_string(id));
              },
              [&, id](caf::error& err) {
                events.push_back("refused " + std::to_string(id)
                                 + (is(err, errc::timeout) ? " timeout" : ""));
              });
  });
  f.run();
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{2}); // gives up
  f.run();
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{1});
  f.run();
  CHECK(events == std::vector<std::string>{"granted 1", "refused 2 timeout",
                                           "granted 3"});
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("readers monitor: wait_zero is answered only at zero readers") {
  fixture f;
  bool zero = false;
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    self->request(f.monitor(), caf::infinite, open_atom::value,
                  std::uint64_t{5})
      .then([&f, &zero, self](std::uint64_t) {
        self->request(f.monitor(), caf::infinite, wait_zero_atom::value)
          .then([&zero](std::uint64_t) { zero = true; });
      });
  });
  f.run();
  CHECK_FALSE(zero);
  // Refusing new readers (graceful close) keeps the open one open.
  caf::anon_send(f.monitor(), refuse_atom::value, make_error(errc::closing));
  f.run();
  CHECK_FALSE(zero);
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{5});
  f.run();
  CHECK(zero);
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("readers monitor: refused opens get the refusal error") {
  fixture f;
  caf::error result;
  caf::anon_send(f.monitor(), refuse_atom::value, make_error(errc::closing));
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    self->request(f.monitor(), caf::infinite, open_atom::value,
                  std::uint64_t{9})
      .then([](std::uint64_t) { FAIL("must be refused"); },
            [&](caf::error& err) { result = std::move(err); });
  });
  f.run();
  CHECK(is(result, errc::closing));
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("async reader: reads a stream in an actor, step by step") {
  fixture f{small_chunks()};
  auto data = pattern(20000, 5);
  std::string got;
  bool done = false;
  auto buf = std::make_shared<std::vector<char>>(1000);
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&, self, buf](auto r) {
      REQUIRE(r);
      auto reader = *r;
      auto loop = std::make_shared<std::function<void()>>();
      *loop = [&, reader, loop, buf]() mutable {
        reader.read(buf->data(), buf->size(), [&, loop, buf](auto n) {
          REQUIRE(n);
          if (*n == 0) {
            done = true;
            *loop = nullptr; // break the self-reference
            return;
          }
          got.append(buf->data(), *n);
          (*loop)();
        });
      };
      (*loop)();
    });
  });
  f.run();
  CHECK(got.empty()); // nothing published yet: the read is parked
  f.emit(std::string_view{data}.substr(0, 5000));
  f.run();
  CHECK(got == data.substr(0, 5000));
  f.emit(std::string_view{data}.substr(5000));
  f.end();
  f.run();
  CHECK(got == data);
  CHECK(done);
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("async reader: a handler may drop the last reader handle") {
  // A read served from held bytes runs its handler inside read(); here that
  // handler destroys the only handle while the reader runs its queue.
  fixture f;
  struct holder {
    std::optional<async_reader> reader;
    std::array<char, 2> buf{};
  };
  auto h = std::make_shared<holder>();
  bool called = false;
  auto client = f.sys().spawn([&, h](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [h](auto r) {
      REQUIRE(r);
      h->reader = *r;
      h->reader->read(h->buf.data(), 1, [](auto n) { REQUIRE(n); });
    });
    return caf::behavior{[&, h](int) {
      // Served from the held second byte, inside this call.
      h->reader->read(h->buf.data() + 1, 1, [&, h](auto n) {
        REQUIRE(n);
        called = true;
        h->reader.reset(); // the last handle goes while the queue runs
      });
    }};
  });
  f.emit("xy");
  f.run();
  caf::anon_send(client, 1);
  f.run();
  CHECK(called);
  CHECK(h->buf[1] == 'y');
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("async reader: an end that comes after the last byte was read") {
  // The reader consumes every byte and parks at the end offset before the
  // source says it ended: the end then arrives as an answer without bytes.
  fixture f;
  std::string got;
  int ends = 0;
  auto buf = std::make_shared<std::vector<char>>(100);
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&, buf](auto r) {
      REQUIRE(r);
      auto reader = *r;
      auto loop = std::make_shared<std::function<void()>>();
      *loop = [&, reader, loop, buf]() mutable {
        reader.read(buf->data(), buf->size(), [&, loop, buf](auto n) {
          REQUIRE(n);
          if (*n == 0) {
            ++ends;
            *loop = nullptr;
            return;
          }
          got.append(buf->data(), *n);
          (*loop)();
        });
      };
      (*loop)();
    });
  });
  f.emit("all the bytes");
  f.run();
  CHECK(got == "all the bytes");
  CHECK(ends == 0); // parked at offset 13
  f.end();
  // Bounded: a reader that asks again and again would never let run() end.
  CHECK(f.sched().run(1000) < 1000);
  CHECK(ends == 1);
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("stats: size follows the published bytes: final and error come "
          "exactly at the end") {
  fixture f;
  auto st = f.stream().stats();
  CHECK(st.size == 0);
  CHECK_FALSE(st.final);
  f.emit("hello");
  CHECK(f.stream().stats().size == 0); // not published before it is handled
  f.run();
  CHECK(f.stream().stats().size == 5);
  f.emit(" world");
  f.run();
  st = f.stream().stats();
  CHECK(st.size == 11);
  CHECK_FALSE(st.final);
  CHECK_FALSE(st.error);
  f.fail(make_error(errc::io_error, "disk gone"));
  CHECK_FALSE(f.stream().stats().final);
  f.run();
  st = f.stream().stats();
  CHECK(st.final);
  CHECK(st.size == 11);
  CHECK(is(st.error, errc::io_error));
  // A clean end has no error.
  fixture g;
  g.emit("abc");
  g.end();
  g.run();
  st = g.stream().stats();
  CHECK(st.final);
  CHECK_FALSE(st.error);
  CHECK(st.size == 3);
}

TEST_CASE("stats: capacity, declared length, retention and abort") {
  stream_options capped;
  capped.capacity = 4;
  fixture f{capped};
  f.emit("abcdef");
  f.run();
  auto st = f.stream().stats();
  CHECK(st.final);
  CHECK(st.size == 4);
  CHECK(is(st.error, errc::buffer_full));
  stream_options declared;
  declared.declared_length = 3;
  fixture g{declared};
  CHECK(g.stream().stats().declared_length
        == std::optional<std::uint64_t>{3});
  g.emit("abc");
  g.run();
  st = g.stream().stats();
  CHECK(st.final);
  CHECK_FALSE(st.error);
  stream_options window;
  window.retention = 10;
  fixture h{window};
  h.emit(pattern(25));
  h.run();
  st = h.stream().stats();
  CHECK(st.size == 25);
  CHECK(st.oldest == 15);
  fixture a;
  a.emit("ab");
  a.run();
  caf::anon_send(a.transfer(), abort_atom::value);
  a.run();
  st = a.stream().stats();
  CHECK(st.final);
  CHECK(is(st.error, errc::canceled));
}

TEST_CASE("stats: parked follows parked reads") {
  fixture f;
  auto& a = f.add_probe();
  auto& b = f.add_probe();
  a.request(0, 10);
  b.request(4, 10);
  f.run();
  CHECK(f.stream().stats().parked == 2);
  f.emit("abc"); // serves a only
  f.run();
  CHECK(a.answers().size() == 1);
  CHECK(f.stream().stats().parked == 1);
  b.cancel(); // answered with closed
  f.run();
  CHECK(f.stream().stats().parked == 0);
  a.request(3, 10);
  f.run();
  CHECK(f.stream().stats().parked == 1);
  f.end();
  f.run();
  CHECK(f.stream().stats().parked == 0);
}

TEST_CASE("stats: readers and waiting follow opens, closes and the 101st "
          "open") {
  fixture f; // max_readers 100
  std::vector<std::uint64_t> granted;
  auto client = f.sys().spawn([&](caf::event_based_actor* self) {
    for (std::uint64_t id = 1; id <= 101; ++id)
      self->request(f.monitor(), caf::infinite, open_atom::value, id)
        .then([&](std::uint64_t x) { granted.push_back(x); });
  });
  f.run();
  auto st = f.stream().stats();
  CHECK(granted.size() == 100);
  CHECK(st.readers == 100);
  CHECK(st.waiting == 1);
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{7});
  f.run();
  st = f.stream().stats();
  CHECK(granted.size() == 101); // the 101st got the slot
  CHECK(st.readers == 100);
  CHECK(st.waiting == 0);
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{8});
  caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{9});
  f.run();
  CHECK(f.stream().stats().readers == 98);
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

} // TEST_SUITE
