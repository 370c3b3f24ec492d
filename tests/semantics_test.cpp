// The contract of DESIGN.md's semantics list through the blocking API, with
// real threads and live sources. Nothing sleeps: a test waits for a
// condition (a read returning, a pipe being written) or not at all.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/stream.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;
using namespace std::chrono_literals;


TEST_SUITE("semantics") {

TEST_CASE_FIXTURE(system_fixture, "rule 1: every reader gets the exact bytes") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto data = pattern(300000, 1);
  auto a = s->open_reader();
  auto b = s->open_reader();
  REQUIRE(a);
  REQUIRE(b);
  std::thread writer([&] {
    for (std::size_t i = 0; i < data.size(); i += 7777)
      p.write(std::string_view{data}.substr(i, 7777));
    p.close_writer();
  });
  auto got_a = read_all(*a, 1000);
  auto got_b = read_all(*b, 65536);
  writer.join();
  REQUIRE(got_a);
  REQUIRE(got_b);
  CHECK(*got_a == data);
  CHECK(*got_b == data);
  auto len = s->wait();
  REQUIRE(len);
  CHECK(*len == data.size());
}

TEST_CASE_FIXTURE(system_fixture, "rule 1: bytes returned with EOF are kept") {
  // The read function returns its last bytes together with eof.
  auto data = pattern(1000, 2);
  auto s = stream::make(sys, scripted(data, 300));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r);
  REQUIRE(got);
  CHECK(*got == data);
}

TEST_CASE_FIXTURE(system_fixture, "rule 2: a read returns what exists") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  p.write("0123456789");
  char buf[100];
  auto n = r->read(buf, sizeof(buf)); // must not wait for 100 bytes
  REQUIRE(n);
  CHECK(*n >= 1);
  CHECK(*n <= 10);
  CHECK(std::string(buf, *n) == std::string("0123456789").substr(0, *n));
}

TEST_CASE_FIXTURE(system_fixture, "rule 2: read_exact waits for all bytes") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  std::atomic<bool> done{false};
  std::string out(10, '\0');
  std::thread t([&] {
    auto n = r->read_exact(out.data(), 10);
    CHECK(n);
    CHECK(*n == 10);
    done = true;
  });
  p.write("01234");
  p.write("56789");
  t.join();
  CHECK(done);
  CHECK(out == "0123456789");
}

TEST_CASE_FIXTURE(system_fixture, "rule 2: read_exact stops at the end") {
  auto s = stream::make(sys, source::from_bytes(std::string("abc")));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[10];
  auto n = r->read_exact(buf, 10);
  REQUIRE(n);
  CHECK(*n == 3);
}

TEST_CASE_FIXTURE(system_fixture, "rule 3: a zero-length read never blocks") {
  live_pipe p; // nothing is ever written: any wait would hang the test
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[1];
  for (int i = 0; i < 1000; ++i) {
    auto n = r->read(buf, 0);
    REQUIRE(n);
    CHECK(*n == 0);
  }
  auto xs = r->read_slices(0);
  REQUIRE(xs);
  CHECK(xs->empty());
  r->close();
  s->abort();
}

TEST_CASE_FIXTURE(system_fixture, "rule 4: a reader created after the end") {
  auto data = pattern(200000, 3);
  auto s = stream::make(sys, scripted(data, 65536));
  REQUIRE(s);
  auto len = s->wait();
  REQUIRE(len);
  CHECK(*len == data.size());
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r, 5000);
  REQUIRE(got);
  CHECK(*got == data);
  char c;
  auto n = r->read(&c, 1); // still the end, again
  REQUIRE(n);
  CHECK(*n == 0);
}

TEST_CASE_FIXTURE(system_fixture, "rule 5: errors are delayed to their byte") {
  auto data = pattern(100001, 4); // not a multiple of any block or chunk
  auto s = stream::make(sys, scripted(data, 4096,
                                      make_error(errc::io_error, "boom")));
  REQUIRE(s);
  // The stream reports the error at once...
  auto len = s->wait();
  REQUIRE_FALSE(len);
  CHECK(is(len.error(), errc::io_error));
  auto st = s->status();
  REQUIRE(st);
  CHECK(is(st->error, errc::io_error));
  // ...while readers get every byte before it, then the error.
  auto r = s->open_reader();
  REQUIRE(r);
  std::string got;
  std::string buf(3000, '\0');
  caf::error err;
  for (;;) {
    auto n = r->read(buf.data(), buf.size());
    if (!n) {
      err = n.error();
      break;
    }
    REQUIRE(*n > 0); // never a clean end
    got.append(buf.data(), *n);
  }
  CHECK(got == data);
  CHECK(is(err, errc::io_error));
  // read_at below the failing byte still works.
  char c = 0;
  auto k = r->read_at(&c, 1, 100000);
  REQUIRE(k);
  CHECK(*k == 1);
  CHECK(c == data[100000]);
}

TEST_CASE_FIXTURE(system_fixture, "rule 6: misuse gives invalid_argument") {
  auto s = stream::make(sys, source::from_bytes(std::string("0123456789")));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[4];
  auto at = r->read_at(buf, 4, -1);
  REQUIRE_FALSE(at);
  CHECK(is(at.error(), errc::invalid_argument));
  REQUIRE(r->seek(3, whence::start));
  auto neg = r->seek(-10, whence::current);
  REQUIRE_FALSE(neg);
  CHECK(is(neg.error(), errc::invalid_argument));
  CHECK(r->position() == 3); // a failed seek leaves the position
  auto bad = r->seek(0, static_cast<whence>(7));
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), errc::invalid_argument));
  CHECK(r->position() == 3);
  auto w = r->wait_for(-5);
  REQUIRE_FALSE(w);
  CHECK(is(w.error(), errc::invalid_argument));
  // The reader and the stream are untouched.
  auto n = r->read(buf, 4);
  REQUIRE(n);
  CHECK(std::string(buf, *n) == "3456");
  auto other = s->open_reader();
  REQUIRE(other);
  auto all = read_all(*other);
  REQUIRE(all);
  CHECK(*all == "0123456789");
}

TEST_CASE_FIXTURE(system_fixture, "rule 6: seeking past the end is allowed") {
  auto s = stream::make(sys, source::from_bytes(std::string("abc")));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  auto pos = r->seek(100, whence::start);
  REQUIRE(pos);
  CHECK(*pos == 100);
  char c;
  auto n = r->read(&c, 1);
  REQUIRE(n);
  CHECK(*n == 0); // at a finished stream: the end
  REQUIRE(r->seek(-1, whence::end));
  n = r->read(&c, 1);
  REQUIRE(n);
  CHECK(*n == 1);
  CHECK(c == 'c');
}

TEST_CASE_FIXTURE(system_fixture, "rule 7: seeking from the end waits") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  std::atomic<bool> returned{false};
  std::thread t([&] {
    auto pos = r->seek(-2, whence::end);
    returned = true;
    REQUIRE(pos);
    CHECK(*pos == 4);
  });
  p.write("abcdef");
  // The seek cannot have returned: the stream has not ended. Check that
  // the bytes are published (so the seek saw them) and it still waits.
  auto other = s->open_reader();
  REQUIRE(other);
  char buf[6];
  REQUIRE(other->read_exact(buf, 6));
  CHECK_FALSE(returned);
  p.close_writer();
  t.join();
  CHECK(returned);
  char c;
  auto n = r->read(&c, 1);
  REQUIRE(n);
  CHECK(c == 'e');
}

TEST_CASE_FIXTURE(system_fixture, "rule 7: a declared length ends seeks") {
  live_pipe p;
  stream_options opts;
  opts.declared_length = 8;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true), opts);
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  auto pos = r->seek(-3, whence::end); // nothing written: must not wait
  REQUIRE(pos);
  CHECK(*pos == 5);
  p.write("0123456789"); // longer than declared: cut at 8
  char buf[16];
  auto n = r->read_exact(buf, 16);
  REQUIRE(n);
  CHECK(std::string(buf, *n) == "567");
  auto len = s->wait();
  REQUIRE(len);
  CHECK(*len == 8);
}

TEST_CASE_FIXTURE(system_fixture, "rule 7: a short source fails at its end") {
  stream_options opts;
  opts.declared_length = 100;
  auto s = stream::make(sys, scripted(pattern(60), 16), opts);
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  std::string buf(100, '\0');
  auto n = r->read_exact(buf.data(), 100);
  REQUIRE(n); // the 60 bytes first
  CHECK(*n == 60);
  auto again = r->read(buf.data(), 1);
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::unexpected_end));
}

TEST_CASE_FIXTURE(system_fixture, "rule 8: a fixed capacity") {
  stream_options opts;
  opts.capacity = 600;
  auto data = pattern(1000, 6);
  auto s = stream::make(sys, scripted(data, 128), opts);
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  std::string buf(1000, '\0');
  auto n = r->read_exact(buf.data(), 1000);
  REQUIRE(n);
  CHECK(*n == 600);
  CHECK(buf.substr(0, 600) == data.substr(0, 600));
  auto more = r->read(buf.data(), 1);
  REQUIRE_FALSE(more);
  CHECK(is(more.error(), errc::buffer_full));
}

TEST_CASE_FIXTURE(system_fixture, "rule 10: graceful close") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  p.write("hello");
  std::atomic<bool> closed{false};
  caf::error close_result;
  std::thread closer([&] {
    close_result = s->close();
    closed = true;
  });
  // New readers are refused once the close started (retry until then).
  for (;;) {
    auto extra = s->open_reader();
    if (!extra) {
      CHECK(is(extra.error(), errc::closing));
      break;
    }
    extra->close();
  }
  CHECK_FALSE(closed); // our reader is still open
  char buf[5];
  auto n = r->read_exact(buf, 5); // and reads on
  REQUIRE(n);
  CHECK(std::string(buf, 5) == "hello");
  r->close();
  closer.join();
  CHECK(closed);
  // The source was live: the close stopped it before its end, and close()
  // says so, as status() does from now on.
  CHECK(is(close_result, errc::closed));
  CHECK(is(s->close(), errc::closed)); // a second close: same status, at once
  auto st = s->status(); // nothing after close crashes
  REQUIRE(st);
  CHECK(is(st->error, errc::closed));
}

TEST_CASE_FIXTURE(system_fixture, "rule 10: closing a reader wakes only it") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  auto a = s->open_reader();
  auto b = s->open_reader();
  REQUIRE(a);
  REQUIRE(b);
  caf::error a_err;
  std::string b_got;
  std::thread ta([&] {
    char c;
    auto n = a->read(&c, 1);
    REQUIRE_FALSE(n);
    a_err = n.error();
  });
  std::thread tb([&] {
    char c;
    auto n = b->read(&c, 1);
    REQUIRE(n);
    b_got.assign(&c, *n);
  });
  a->close(); // from another thread than the one reading
  ta.join();
  CHECK(is(a_err, errc::closed));
  p.write("z"); // b was not woken by the close: it waits for this byte
  tb.join();
  CHECK(b_got == "z");
  char c;
  auto after = a->read(&c, 1); // reads after close fail clearly
  REQUIRE_FALSE(after);
  CHECK(is(after.error(), errc::closed));
  a->close(); // closing twice is fine
}

TEST_CASE_FIXTURE(system_fixture, "rule 10: abort cancels every read") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  p.write("abc");
  auto never_closes = s->open_reader(); // held open through the abort
  auto waiting = s->open_reader();
  REQUIRE(never_closes);
  REQUIRE(waiting);
  caf::error err;
  std::promise<void> got_three;
  std::thread t([&] {
    char buf[8];
    CHECK(waiting->read_exact(buf, 3));
    got_three.set_value();
    auto n = waiting->read(buf, 8); // parks: nothing beyond byte 3
    CHECK_FALSE(n);
    if (!n)
      err = n.error();
  });
  // Whether the read has parked yet or not, it must end with `canceled`.
  got_three.get_future().wait();
  s->abort();
  t.join();
  CHECK(is(err, errc::canceled));
  char c;
  auto later = never_closes->read(&c, 1); // bytes exist, yet: canceled
  REQUIRE_FALSE(later);
  CHECK(is(later.error(), errc::canceled));
  auto fresh = s->open_reader();
  REQUIRE_FALSE(fresh);
  CHECK(is(fresh.error(), errc::canceled));
  auto st = s->status();
  REQUIRE(st);
  CHECK(is(st->error, errc::canceled));
  auto closed = s->close(); // returns at once after an abort
  CHECK(is(closed, errc::canceled));
  CHECK(is(s->close(), errc::canceled));
  s->abort(); // twice: a no-op
}

TEST_CASE_FIXTURE(system_fixture, "rule 10: abort releases a waiting close") {
  auto s = stream::make(sys, source::from_bytes(std::string("abc")));
  REQUIRE(s);
  auto never_closes = s->open_reader();
  REQUIRE(never_closes);
  caf::error result;
  std::thread closer([&] { result = s->close(); }); // waits for the reader
  // Wait until the close has started (new readers are refused), then abort.
  for (;;) {
    auto probe = s->open_reader();
    if (!probe)
      break;
    probe->close();
  }
  s->abort();
  closer.join(); // would hang if abort left the close waiting
  CHECK(is(result, errc::canceled));
  CHECK(is(s->close(), errc::canceled));
}

TEST_CASE_FIXTURE(system_fixture, "the 101st reader waits for a slot") {
  auto s = stream::make(sys, source::from_bytes(std::string("x")));
  REQUIRE(s);
  std::vector<blocking_reader> readers;
  for (int i = 0; i < 100; ++i) {
    auto r = s->open_reader();
    REQUIRE(r);
    readers.push_back(std::move(*r));
  }
  auto timed = s->open_reader(caf::timespan{20ms});
  REQUIRE_FALSE(timed);
  CHECK(is(timed.error(), errc::timeout));
  std::atomic<bool> granted{false};
  std::thread t([&] {
    auto r = s->open_reader(); // waits without a timeout
    CHECK(r);
    granted = true;
  });
  // The timed-out open above must not take this slot: the waiting open
  // above does.
  readers.front().close();
  t.join();
  CHECK(granted);
}

TEST_CASE_FIXTURE(system_fixture, "rule 11: a read with a timeout gives up") {
  live_pipe p;
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  reader_options opts;
  opts.timeout = caf::timespan{10ms};
  auto r = s->open_reader(opts);
  REQUIRE(r);
  char c;
  auto n = r->read(&c, 1); // nothing is written: the wait gives up
  REQUIRE_FALSE(n);
  CHECK(is(n.error(), errc::timeout));
  CHECK(r->position() == 0);
  auto pos = r->seek(0, whence::end); // the end never comes either
  REQUIRE_FALSE(pos);
  CHECK(is(pos.error(), errc::timeout));
  p.write("q"); // the reader is still usable
  do // a loaded machine may take longer than 10 ms to deliver the byte
    n = r->read(&c, 1);
  while (!n && is(n.error(), errc::timeout));
  REQUIRE(n);
  CHECK(*n == 1);
  CHECK(c == 'q');
}

TEST_CASE_FIXTURE(system_fixture, "misuse: an invalid stream handle") {
  stream s;
  CHECK_FALSE(s.valid());
  auto r = s.open_reader();
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::invalid_argument));
  CHECK(is(s.close(), errc::invalid_argument));
  s.abort(); // a no-op
}

TEST_CASE_FIXTURE(system_fixture, "misuse: opening a missing file") {
  auto src = source::from_path("/nonexistent/asyncstream-test");
  REQUIRE_FALSE(src);
  CHECK(is(src.error(), errc::io_error));
  CHECK(render(src.error()).find("/nonexistent") != std::string::npos);
}

TEST_CASE_FIXTURE(system_fixture, "a file source reads the whole file") {
  char name[] = "/tmp/asyncstream-test-XXXXXX";
  int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  auto data = pattern(1 << 20, 8);
  REQUIRE(::write(fd, data.data(), data.size())
          == static_cast<ssize_t>(data.size()));
  ::close(fd);
  auto src = source::from_path(name);
  ::unlink(name);
  REQUIRE(src);
  auto s = stream::make(sys, std::move(*src));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r, 100000);
  REQUIRE(got);
  CHECK(*got == data);
}

TEST_CASE_FIXTURE(system_fixture, "zero-copy slices alias the stored chunk") {
  auto text = std::make_shared<const std::string>("zero copy please");
  auto s = stream::make(sys, source::from_bytes(text));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  auto xs = r->read_slices(4);
  REQUIRE(xs);
  REQUIRE(xs->size() == 1);
  CHECK(xs->front().as_string_view() == "zero");
  // The very bytes of the caller's buffer: no copy on the way.
  CHECK(reinterpret_cast<const char*>(xs->front().data()) == text->data());
  auto rest = r->read_slices(1000);
  REQUIRE(rest);
  CHECK(rest->front().as_string_view() == " copy please");
  auto end = r->read_slices(1000);
  REQUIRE(end);
  CHECK(end->empty());
}

} // TEST_SUITE
