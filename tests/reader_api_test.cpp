// The reader API of issue 9: readers bound to their owner actor, the
// asynchronous API for any scheduled actor (typed or not), the stream
// operations for actors, the loop helpers, the streambuf adaptor, and safe
// handles (overflow-proof seeks, invalid and closed handles, zero-length
// reads at a pending error).
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <future>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "asyncstream/async.hpp"
#include "asyncstream/async_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/reader_streambuf.hpp"
#include "asyncstream/stream_writer.hpp"
#include "asyncstream/testing/fixture.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using asyncstream::testing::fixture;

namespace {

constexpr auto i64_max = std::numeric_limits<std::int64_t>::max();
constexpr auto i64_min = std::numeric_limits<std::int64_t>::min();
constexpr auto u64_max = std::numeric_limits<std::uint64_t>::max();

stream_options tethered(std::uint64_t window) {
  stream_options opts;
  opts.retention = window;
  opts.policy = retention_policy::tethered;
  return opts;
}

/// An actor that opens a reader of `s`, keeps it in `slot` and parks a read
/// of one byte; it answers `int` messages by throwing.
caf::actor spawn_owner(caf::actor_system& sys, const stream& s,
                       std::shared_ptr<std::optional<async_reader>> slot) {
  return sys.spawn([s, slot](caf::event_based_actor* self) {
    async_reader::open(self, s, [slot](auto r) {
      REQUIRE(r);
      *slot = *r;
      auto buf = std::make_shared<char>();
      (*slot)->read(buf.get(), 1, [buf](auto) {});
    });
    return caf::behavior{[](int) { throw std::runtime_error("boom"); }};
  });
}

/// The expected outcome of `seek(offset, from)` at `pos` when the end is
/// `end`: the new position, or nothing (invalid_argument).
std::optional<std::uint64_t> model_seek(std::uint64_t pos, std::uint64_t end,
                                        std::int64_t offset, whence from) {
  __int128 base = 0;
  if (from == whence::current)
    base = pos;
  else if (from == whence::end)
    base = end;
  auto target = base + offset;
  if (target < 0 || target > i64_max)
    return std::nullopt;
  return static_cast<std::uint64_t>(target);
}

const std::vector<std::int64_t> sweep_offsets = {
  0, 1, -1, 2, -2, 10, -10, i64_max, i64_max - 1, i64_min, i64_min + 1,
};

const std::vector<whence> sweep_whences = {whence::start, whence::current,
                                           whence::end};

} // namespace

TEST_SUITE("reader api") {

// -- readers bound to their owner --------------------------------------------

TEST_CASE("owner: a reader closes when its actor quits") {
  stream_options opts;
  opts.max_readers = 1;
  fixture f{opts};
  auto slot = std::make_shared<std::optional<async_reader>>();
  auto ran = std::make_shared<bool>(false);
  auto owner = f.sys().spawn([&, slot, ran](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [self, slot, ran](auto r) {
      REQUIRE(r);
      *slot = *r;
      auto buf = std::make_shared<char>();
      (*slot)->read(buf.get(), 1, [buf, ran](auto) { *ran = true; });
      self->quit(); // without closing the reader
    });
  });
  f.run();
  CHECK(f.stream().stats().readers == 0);
  CHECK(f.status().parked == 0); // the parked read was answered
  CHECK_FALSE(slot->value().is_open());
  // The queued handler never ran in the dead actor.
  CHECK_FALSE(*ran);
  // The slot is free again: a new reader gets it.
  bool granted = false;
  auto next = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&](auto r) { granted = bool{r}; });
  });
  f.run();
  CHECK(granted);
  caf::anon_send_exit(next, caf::exit_reason::user_shutdown);
  f.run();
  CHECK(f.stream().stats().readers == 0);
  slot->reset(); // the last handle, dropped after its actor died
  (void) owner;
}

TEST_CASE("owner: a reader closes when its actor is killed") {
  for (auto reason : {caf::error{caf::exit_reason::kill},
                      caf::error{caf::exit_reason::user_shutdown},
                      make_error(errc::io_error, "a custom exit reason")}) {
    CAPTURE(render(reason));
    fixture f;
    auto slot = std::make_shared<std::optional<async_reader>>();
    auto owner = spawn_owner(f.sys(), f.stream(), slot);
    f.run();
    CHECK(f.stream().stats().readers == 1);
    CHECK(f.status().parked == 1);
    caf::anon_send(owner, caf::exit_msg{owner.address(), reason});
    f.run();
    CHECK(f.stream().stats().readers == 0);
    CHECK(f.status().parked == 0);
    CHECK_FALSE(slot->value().is_open());
  }
}

TEST_CASE("owner: a reader closes when a handler of its actor throws") {
  fixture f;
  auto slot = std::make_shared<std::optional<async_reader>>();
  auto owner = spawn_owner(f.sys(), f.stream(), slot);
  f.run();
  CHECK(f.stream().stats().readers == 1);
  caf::anon_send(owner, 42); // its handler throws: the actor terminates
  f.run();
  CHECK(f.stream().stats().readers == 0);
  CHECK(f.status().parked == 0);
}

TEST_CASE("owner: a waiting open is withdrawn when its actor dies") {
  stream_options opts;
  opts.max_readers = 1;
  fixture f{opts};
  auto first = std::make_shared<std::optional<async_reader>>();
  auto holder = spawn_owner(f.sys(), f.stream(), first);
  bool called = false;
  auto waiter = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&](auto) { called = true; });
  });
  f.run();
  CHECK(f.stream().stats().waiting == 1);
  caf::anon_send_exit(waiter, caf::exit_reason::kill);
  f.run();
  CHECK(f.stream().stats().waiting == 0);
  // The withdrawn open does not take the slot the first reader frees.
  caf::anon_send_exit(holder, caf::exit_reason::user_shutdown);
  f.run();
  CHECK(f.stream().stats().readers == 0);
  CHECK_FALSE(called);
}

TEST_CASE("owner: dropping the last handle closes the reader") {
  fixture f;
  auto slot = std::make_shared<std::optional<async_reader>>();
  auto owner = f.sys().spawn([&, slot](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [slot](auto r) {
      REQUIRE(r);
      *slot = *r;
    });
    return caf::behavior{[slot](int) { slot->reset(); }};
  });
  f.run();
  CHECK(f.stream().stats().readers == 1);
  caf::anon_send(owner, 1);
  f.run();
  CHECK(f.stream().stats().readers == 0);
  caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE("owner: a tethered producer is released when the actor of its "
          "slow reader dies") {
  fixture f{tethered(10)};
  auto slot = std::make_shared<std::optional<async_reader>>();
  auto owner = f.sys().spawn([&, slot](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [slot](auto r) {
      REQUIRE(r);
      *slot = *r; // opens and never reads
    });
    // A behavior keeps it alive (an actor without one would terminate once
    // its requests are answered, and its reader would close with it).
    return caf::behavior{[](int) {}};
  });
  f.run();
  // Tethered from the moment it opened, before any read: at offset 0.
  CHECK(f.credit() == 10);
  f.emit("0123456789");
  f.run();
  CHECK(f.credit() == 10); // the producer is held back
  caf::anon_send_exit(owner, caf::exit_reason::kill);
  f.run();
  CHECK(f.credit() == u64_max); // no reader holds it any more
}

TEST_CASE("tether: read_at, wait_for and zero-length reads do not move it") {
  fixture f{tethered(10)};
  f.emit("0123456789");
  std::vector<std::string> log;
  std::uint64_t credit_after_read_at = 0;
  std::optional<async_reader> keep; // the reader stays open
  auto owner = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&](auto r) {
      REQUIRE(r);
      auto reader = *r;
      keep = reader;
      auto buf = std::make_shared<std::string>(20, '\0');
      reader.read_at(buf->data(), 4, 6, [&, buf](auto n) {
        REQUIRE(n);
        log.push_back("read_at " + buf->substr(0, *n));
      });
      reader.wait_for(9, [&](auto ok) {
        log.push_back(ok && *ok ? "byte 9" : "no byte 9");
      });
      reader.read(buf->data(), 0, [&](auto n) {
        log.push_back(n && *n == 0 ? "zero" : "zero read failed");
      });
      reader.read_exact(buf->data(), 10, [&, reader, buf](auto n) {
        REQUIRE(n);
        log.push_back("read " + buf->substr(0, *n));
      });
    });
    return caf::behavior{[](int) {}};
  });
  f.run();
  credit_after_read_at = f.credit();
  CHECK(log
        == std::vector<std::string>{"read_at 6789", "byte 9", "zero",
                                    "read 0123456789"});
  // Only the ordinary read moved the tether (its request was at 0).
  CHECK(credit_after_read_at == 10);
  caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE_FIXTURE(
  test::system_fixture,
  "owner: stream::close() returns when the reader of a dead actor "
  "was never closed") {
  test::live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  std::promise<void> opened;
  sys.spawn([&, s = *s](caf::event_based_actor* self) {
    async_reader::open(self, s, [&, self](auto r) {
      REQUIRE(r);
      // A read parked forever holds a copy of the handle; the actor quits
      // without closing the reader.
      auto reader = *r;
      auto buf = std::make_shared<char>();
      reader.read(buf.get(), 1, [buf, reader](auto) {});
      opened.set_value();
      self->quit();
    });
  });
  opened.get_future().wait();
  // Returns (the reader died with its actor), with `closed`: the live
  // source was stopped before its end.
  CHECK(is(s->close(), errc::closed));
}

// -- typed actors and the stream operations ----------------------------------

TEST_CASE("typed actors: read a stream to its end with read_to_end") {
  using iface = caf::typed_actor<caf::reacts_to<int>>;
  fixture f;
  std::string got;
  std::optional<caf::error> done;
  int batches = 0;
  auto a = f.sys().spawn([&](iface::pointer self) -> iface::behavior_type {
    async_reader::open(self, f.stream(), [&](auto r) {
      REQUIRE(r);
      auto reader = *r;
      reader.read_to_end(
        4,
        [&](std::vector<slice>& xs) {
          ++batches;
          for (auto& x : xs)
            got += x.as_string_view();
        },
        [&, reader](caf::error err) { done = std::move(err); });
    });
    return {[](int) {}};
  });
  f.run();
  f.emit("hello ");
  f.run();
  CHECK(got == "hello ");
  CHECK_FALSE(done);
  f.emit("world");
  f.end();
  f.run();
  CHECK(got == "hello world");
  CHECK(batches >= 3); // at most 4 bytes each
  REQUIRE(done);
  CHECK_FALSE(*done);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE("typed actors: stateful typed actors open readers too") {
  struct state {
    async_reader reader;
    std::string got;
  };
  using iface = caf::typed_actor<caf::reacts_to<int>>;
  fixture f;
  std::string result;
  auto a = f.sys().spawn(
    [&](iface::stateful_pointer<state> self) -> iface::behavior_type {
      async_reader::open(self, f.stream(), [&, self](auto r) {
        REQUIRE(r);
        self->state.reader = *r;
        self->state.reader.read_to_end(
          0,
          [self](std::vector<slice>& xs) {
            for (auto& x : xs)
              self->state.got += x.as_string_view();
          },
          [&, self](caf::error) { result = self->state.got; });
      });
      return {[](int) {}};
    });
  f.emit("typed");
  f.end();
  f.run();
  CHECK(result == "typed");
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE("actors: status, wait, close and a second close") {
  fixture f;
  std::vector<std::string> log;
  auto a = f.sys().spawn([&](caf::event_based_actor* self) {
    async::status(self, f.stream(), [&](auto st) {
      REQUIRE(st);
      log.push_back("status " + std::to_string(st->size));
    });
    async::wait(self, f.stream(), [&](auto n) {
      log.push_back(n ? "final " + std::to_string(*n) : "wait failed");
    });
  });
  f.emit("abc");
  f.run();
  f.end();
  f.run();
  CHECK(log == std::vector<std::string>{"status 3", "final 3"});
  log.clear();
  // A reader keeps the close waiting; its actor's death ends the wait.
  auto slot = std::make_shared<std::optional<async_reader>>();
  auto owner = spawn_owner(f.sys(), f.stream(), slot);
  f.run();
  auto closer = f.sys().spawn([&](caf::event_based_actor* self) {
    async::close(self, f.stream(), [&](caf::error err) {
      log.push_back(err ? "close: " + render(err) : "closed");
    });
  });
  f.run();
  CHECK(log.empty()); // waits for the reader
  caf::anon_send_exit(owner, caf::exit_reason::kill);
  f.run();
  CHECK(log == std::vector<std::string>{"closed"});
  // New readers are refused; a second close gives the first one's result.
  bool refused = false;
  auto late = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&](auto r) {
      refused = !r && is(r.error(), errc::closing);
    });
    async::close(self, f.stream(), [&](caf::error err) {
      log.push_back(err ? "second: " + render(err) : "second closed");
    });
  });
  f.run();
  CHECK(refused);
  CHECK(log == std::vector<std::string>{"closed", "second closed"});
  for (auto& x : {a, closer, late})
    caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE("actors: shutdown refuses with its error, remove of a memory "
          "stream") {
  fixture f;
  std::vector<std::string> log;
  auto a = f.sys().spawn([&](caf::event_based_actor* self) {
    async::shutdown(self, f.stream(), make_error(errc::io_error, "going"),
                    [&](caf::error err) {
                      // The source was live: stopped before its end, as the
                      // blocking shutdown and status() then say.
                      log.push_back(is(err, errc::closed) ? "shut down"
                                                          : render(err));
                    });
    async_reader::open(self, f.stream(), [&](auto r) {
      log.push_back(!r && is(r.error(), errc::io_error) ? "refused"
                                                        : "not refused");
    });
    async::remove(self, f.stream(), [&](caf::error err) {
      log.push_back(err ? render(err) : "removed");
    });
  });
  f.run();
  CHECK(log == std::vector<std::string>{"refused", "shut down", "removed"});
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE("actors: copy_to keeps at most credit batches unanswered") {
  fixture f;
  struct sink_state {
    std::string got;
    std::vector<caf::response_promise> held;
    std::size_t messages = 0;
    bool end = false;
  };
  auto sink = std::make_shared<sink_state>();
  auto dest = f.sys().spawn([sink](caf::event_based_actor* self) {
    return caf::behavior{[self, sink](stream_data& d) {
                           ++sink->messages;
                           for (auto& x : d.slices)
                             sink->got += x.as_string_view();
                           sink->end = sink->end || d.end;
                           auto rp = self->make_response_promise();
                           sink->held.push_back(rp);
                           return rp;
                         },
                         [sink](int) {
                           // Answers what it holds (inside the actor).
                           auto held = std::move(sink->held);
                           sink->held.clear();
                           for (auto& rp : held)
                             rp.deliver(std::uint64_t{3});
                         }};
  });
  std::optional<caf::error> done;
  auto copier = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&, self](auto r) {
      REQUIRE(r);
      async::copy_options opts;
      opts.batch = 3;
      opts.credit = 2;
      async::copy_to(self, *r, dest, opts,
                     [&](caf::error err) { done = std::move(err); });
    });
  });
  f.emit("0123456789");
  f.end();
  f.run();
  CHECK(sink->messages == 2); // the credit, not the whole stream
  CHECK(sink->got == "012345");
  while (!sink->held.empty()) {
    caf::anon_send(dest, 1);
    f.run();
    CHECK(sink->held.size() <= 2);
  }
  CHECK(sink->got == "0123456789");
  CHECK(sink->end);
  REQUIRE(done);
  CHECK_FALSE(*done);
  for (auto& x : {dest, copier})
    caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE("actors: copy_to reports a receiver that died") {
  fixture f;
  auto dest = f.sys().spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](stream_data&) -> std::uint64_t {
      throw std::runtime_error("receiver fails");
    }};
  });
  std::optional<caf::error> done;
  auto copier = f.sys().spawn([&](caf::event_based_actor* self) {
    async_reader::open(self, f.stream(), [&, self](auto r) {
      REQUIRE(r);
      async::copy_to(self, *r, dest, {},
                     [&](caf::error err) { done = std::move(err); });
    });
  });
  f.emit("bytes");
  f.run();
  REQUIRE(done);
  CHECK(*done);
  // The copy let go of its reader handle: the reader closed.
  CHECK(f.stream().stats().readers == 0);
  caf::anon_send_exit(copier, caf::exit_reason::user_shutdown);
  f.run();
}

// -- safe handles ------------------------------------------------------------

TEST_CASE("safe handles: seek never overflows (async reader)") {
  for (auto end : {std::uint64_t{10}, u64_max - 1}) {
    CAPTURE(end);
    stream_options opts;
    if (end != 10)
      opts.declared_length = end;
    fixture f{opts};
    if (end == 10) {
      f.emit("0123456789");
      f.end();
    }
    std::vector<std::string> mismatches;
    std::size_t checked = 0;
    auto a = f.sys().spawn([&](caf::event_based_actor* self) {
      async_reader::open(self, f.stream(), [&](auto r) {
        REQUIRE(r);
        auto reader = *r;
        for (std::uint64_t start : {std::uint64_t{0}, std::uint64_t{5},
                                    static_cast<std::uint64_t>(i64_max)}) {
          for (auto from : sweep_whences) {
            for (auto off : sweep_offsets) {
              reader.seek(static_cast<std::int64_t>(start), whence::start,
                          [](auto) {});
              auto want = model_seek(start, end, off, from);
              reader.seek(
                off, from, [&, reader, want, start, off, from](auto pos) {
                  ++checked;
                  auto ok = want
                              ? pos && *pos == *want
                              : !pos
                                  && is(pos.error(), errc::invalid_argument)
                                  && reader.position() == start;
                  if (!ok)
                    mismatches.push_back(
                      std::to_string(start) + " "
                      + std::to_string(static_cast<int>(from)) + " "
                      + std::to_string(off));
                });
            }
          }
        }
      });
    });
    f.run();
    CHECK(checked == 3 * sweep_whences.size() * sweep_offsets.size());
    CHECK(mismatches.empty());
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    f.run();
  }
}

TEST_CASE_FIXTURE(test::system_fixture,
                  "safe handles: seek never overflows (blocking reader)") {
  for (auto end : {std::uint64_t{10}, u64_max - 1}) {
    CAPTURE(end);
    std::optional<caf::expected<stream>> s;
    if (end == 10) {
      s = stream::make(sys, source::from_bytes(std::string("0123456789")));
    } else {
      stream_options opts;
      opts.declared_length = end;
      s = stream::make(sys, source::push(), opts);
    }
    REQUIRE(*s);
    auto r = (*s)->open_reader();
    REQUIRE(r);
    for (std::uint64_t start : {std::uint64_t{0}, std::uint64_t{5},
                                static_cast<std::uint64_t>(i64_max)}) {
      for (auto from : sweep_whences) {
        for (auto off : sweep_offsets) {
          CAPTURE(start);
          CAPTURE(static_cast<int>(from));
          CAPTURE(off);
          REQUIRE(r->seek(static_cast<std::int64_t>(start), whence::start));
          auto want = model_seek(start, end, off, from);
          auto pos = r->seek(off, from);
          if (want) {
            REQUIRE(pos);
            CHECK(*pos == *want);
          } else {
            REQUIRE_FALSE(pos);
            CHECK(is(pos.error(), errc::invalid_argument));
            CHECK(r->position() == start); // a failed seek keeps it
          }
        }
      }
    }
  }
}

TEST_CASE_FIXTURE(test::system_fixture,
                  "safe handles: default, moved-from and closed blocking "
                  "readers return errors") {
  auto s = stream::make(sys, source::from_bytes(std::string("abc")));
  REQUIRE(s);
  char buf[4];
  auto check_all = [&](blocking_reader& r, errc code) {
    CHECK(is(r.read(buf, 1).error(), code));
    CHECK(is(r.read(buf, 0).error(), code));
    CHECK(is(r.read_exact(buf, 2).error(), code));
    CHECK(is(r.read_at(buf, 1, 0).error(), code));
    CHECK(is(r.read_slices(1).error(), code));
    CHECK(is(r.seek(1, whence::start).error(), code));
    CHECK(is(r.skip_to_oldest().error(), code));
    CHECK(is(r.wait_for(0).error(), code));
    CHECK(is(r.pending_error(), code));
    CHECK_FALSE(r.at_end());
    r.close();
  };
  blocking_reader def;
  CHECK_FALSE(def.valid());
  CHECK(def.position() == 0);
  CHECK(def.id() == 0);
  check_all(def, errc::invalid_argument);
  auto r = s->open_reader();
  REQUIRE(r);
  auto moved = std::move(*r);
  CHECK_FALSE(r->valid());
  check_all(*r, errc::invalid_argument);
  CHECK(moved.read(buf, 1));
  moved.close();
  check_all(moved, errc::closed);
  blocking_reader assigned;
  assigned = std::move(moved);
  check_all(moved, errc::invalid_argument);
  check_all(assigned, errc::closed);
}

TEST_CASE("safe handles: default and closed async readers return errors") {
  fixture f;
  f.emit("abc");
  std::vector<std::string> log;
  auto a = f.sys().spawn([&](caf::event_based_actor* self) {
    auto record = [&](const char* what, errc code) {
      return [&log, what, code](auto res) {
        log.push_back(std::string{what}
                      + (!res && is(res.error(), code) ? " ok" : " wrong"));
      };
    };
    async_reader def;
    char buf[4];
    def.read(buf, 1, record("read", errc::invalid_argument));
    def.read_exact(buf, 1, record("read_exact", errc::invalid_argument));
    def.read_at(buf, 1, 0, record("read_at", errc::invalid_argument));
    def.read_slices(1, record("read_slices", errc::invalid_argument));
    def.seek(0, whence::start, record("seek", errc::invalid_argument));
    def.skip_to_oldest(record("skip", errc::invalid_argument));
    def.wait_for(0, record("wait_for", errc::invalid_argument));
    def.read_to_end(
      1, [](auto&) {},
      [&](caf::error err) {
        log.push_back(is(err, errc::invalid_argument) ? "loop ok"
                                                      : "loop wrong");
      });
    def.close();
    CHECK(is(def.pending_error(), errc::invalid_argument));
    CHECK(def.position() == 0);
    async_reader::open(self, f.stream(), [&, record](auto r) {
      REQUIRE(r);
      auto reader = *r;
      auto moved = std::move(reader);
      reader.read(nullptr, 1, record("moved read", errc::invalid_argument));
      moved.close();
      auto b = std::make_shared<std::string>(4, '\0');
      moved.read(b->data(), 1, record("closed read", errc::closed));
      moved.read(b->data(), 0, record("closed zero read", errc::closed));
      moved.seek(0, whence::end, record("closed seek", errc::closed));
      CHECK(is(moved.pending_error(), errc::closed));
      CHECK_FALSE(moved.at_end());
      CHECK_FALSE(moved.is_open());
    });
  });
  f.run();
  CHECK(log
        == std::vector<std::string>{
          "read ok", "read_exact ok", "read_at ok", "read_slices ok",
          "seek ok", "skip ok", "wait_for ok", "loop ok", "moved read ok",
          "closed read ok", "closed zero read ok", "closed seek ok"});
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  f.run();
}

TEST_CASE_FIXTURE(test::system_fixture,
                  "rule 3: a zero-length read at a pending error returns "
                  "it") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  REQUIRE_FALSE(w->write("hello", 5));
  w->close_with_error(make_error(errc::io_error, "disk on fire"));
  CHECK(is(s->wait().error(), errc::io_error)); // final now
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[8];
  CHECK(r->read(buf, 0) == std::size_t{0}); // bytes there: no error yet
  CHECK_FALSE(r->pending_error());
  CHECK_FALSE(r->at_end());
  CHECK(r->read_exact(buf, 5) == std::size_t{5});
  CHECK(is(r->read(buf, 0).error(), errc::io_error));
  CHECK(is(r->pending_error(), errc::io_error));
  CHECK(is(r->read_slices(0).error(), errc::io_error));
  CHECK(is(r->read(buf, 1).error(), errc::io_error));
  // A fresh reader that seeks there knows it without a read.
  auto r2 = s->open_reader();
  REQUIRE(r2);
  REQUIRE(r2->seek(5, whence::start));
  CHECK(is(r2->read(buf, 0).error(), errc::io_error));
  CHECK(is(r2->read_at(buf, 0, 5).error(), errc::io_error));
  CHECK(r2->read_at(buf, 0, 4) == std::size_t{0});
  s->abort();
  CHECK(is(r2->read(buf, 0).error(), errc::canceled));
}

TEST_CASE_FIXTURE(test::system_fixture,
                  "at_end and pending_error answer without a read") {
  auto s = stream::make(sys, source::from_bytes(std::string("abc")));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  CHECK_FALSE(r->at_end());
  CHECK_FALSE(r->pending_error());
  REQUIRE(r->seek(3, whence::start));
  CHECK(r->at_end());
  CHECK_FALSE(r->pending_error());
  CHECK(r->read(nullptr, 0) == std::size_t{0});
  r->close();
  CHECK_FALSE(r->at_end());
  CHECK(is(r->pending_error(), errc::closed));
}

TEST_CASE_FIXTURE(test::system_fixture,
                  "data loss: skip_to_oldest and data_loss_range") {
  stream_options opts;
  opts.retention = 10;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto data = test::pattern(30, 4);
  REQUIRE_FALSE(w->write(data.data(), data.size()));
  REQUIRE(s->status()); // the transfer actor handled the bytes
  auto r = s->open_reader();
  REQUIRE(r);
  auto err = r->pending_error();
  CHECK(is(err, errc::data_loss));
  CHECK(is(r->read(nullptr, 0).error(), errc::data_loss));
  char buf[32];
  auto n = r->read(buf, sizeof(buf));
  REQUIRE_FALSE(n);
  auto range = data_loss_range(n.error());
  REQUIRE(range);
  CHECK(range->offset == 0);
  CHECK(range->oldest == 20);
  CHECK(r->skip_to_oldest() == std::uint64_t{20});
  CHECK_FALSE(r->pending_error());
  auto k = r->read(buf, sizeof(buf));
  REQUIRE(k);
  CHECK(std::string(buf, *k) == data.substr(20, *k));
  CHECK(r->skip_to_oldest() == std::uint64_t{20} + *k); // a no-op above it
  w->close();
}

TEST_CASE_FIXTURE(test::system_fixture,
                  "span overloads read into std::byte buffers") {
  auto s = stream::make(sys, source::from_bytes(std::string("0123456789")));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  std::vector<std::byte> buf(4);
  CHECK(r->read_exact(caf::span<std::byte>{buf}) == std::size_t{4});
  CHECK(static_cast<char>(buf[3]) == '3');
  std::array<std::byte, 3> at{};
  CHECK(r->read_at(caf::span<std::byte>{at}, 7) == std::size_t{3});
  CHECK(static_cast<char>(at[0]) == '7');
  CHECK(r->read(caf::span<std::byte>{buf}) == std::size_t{4});
  CHECK(static_cast<char>(buf[0]) == '4');
}

// -- the streambuf adaptor ---------------------------------------------------

TEST_CASE_FIXTURE(test::system_fixture,
                  "reader_istream: getline, seekg, tellg and an error at its "
                  "byte") {
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += "line " + std::to_string(i) + '\n';
  auto s = stream::make(sys, test::scripted(text, 777));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  reader_istream in{std::move(*r), 100};
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    CHECK(line == "line " + std::to_string(count));
    ++count;
  }
  CHECK(count == 2000);
  CHECK_FALSE(in.error()); // a clean end
  in.clear();
  in.seekg(5);
  CHECK(in.tellg() == 5);
  std::getline(in, line);
  CHECK(line == "0");
  CHECK(in.tellg() == 7);
  in.seekg(-4, std::ios_base::end);
  std::getline(in, line);
  CHECK(line == "999");
  in.clear();
  in.seekg(-3, std::ios_base::cur);
  std::getline(in, line);
  CHECK(line == "99");
  in.clear();
  in.seekg(-1, std::ios_base::beg); // refused: the position stays
  CHECK(in.fail());
  CHECK(is(in.error(), errc::invalid_argument));
  in.clear();
  CHECK(in.tellg() == static_cast<std::streamoff>(text.size()));
  // An error ends the input after the bytes before it.
  auto failing = stream::make(
    sys, test::scripted("abc", 2, make_error(errc::io_error, "late")));
  REQUIRE(failing);
  auto fr = failing->open_reader();
  REQUIRE(fr);
  reader_istream in2{std::move(*fr)};
  std::string all;
  in2 >> all;
  CHECK(all == "abc");
  CHECK(in2.eof());
  CHECK(is(in2.error(), errc::io_error));
}

// -- the cap -----------------------------------------------------------------

TEST_CASE_FIXTURE(test::system_fixture,
                  "a plain open_reader() at the cap ends when the stream is "
                  "aborted or shut down") {
  for (bool use_abort : {true, false}) {
    CAPTURE(use_abort);
    test::live_pipe p;
    stream_options opts;
    opts.max_readers = 1;
    auto s = stream::make(sys, source::from_fd(p.reader_fd(), true), opts);
    REQUIRE(s);
    auto first = s->open_reader();
    REQUIRE(first);
    auto waiting = std::async(std::launch::async, [s = *s] {
      return s.open_reader(); // no timeout: waits for a slot
    });
    if (use_abort) {
      s->abort();
      auto r = waiting.get();
      REQUIRE_FALSE(r);
      CHECK(is(r.error(), errc::canceled));
    } else {
      auto closer = std::async(std::launch::async, [s = *s]() mutable {
        return s.shutdown(make_error(errc::removing, "maintenance"));
      });
      auto r = waiting.get(); // refused before the close can return
      REQUIRE_FALSE(r);
      CHECK(is(r.error(), errc::removing));
      first->close();
      CHECK(is(closer.get(), errc::closed)); // stopped before its end
    }
  }
}

} // TEST_SUITE
