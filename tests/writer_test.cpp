// Writer (push) mode: a producer pushes bytes; readers read them at once,
// at any time, each the whole stream.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/stream_writer.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

TEST_SUITE("writer") {

TEST_CASE_FIXTURE(system_fixture, "written bytes reach readers at once") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto r = s->open_reader();
  REQUIRE(r);
  REQUIRE_FALSE(w->write("hello", 5));
  char buf[16];
  auto n = r->read_exact(buf, 5); // published without waiting for more
  REQUIRE(n);
  CHECK(std::string(buf, *n) == "hello");
  REQUIRE_FALSE(w->write(" world", 6));
  REQUIRE_FALSE(w->close());
  auto rest = read_all(*r);
  REQUIRE(rest);
  CHECK(*rest == " world");
  auto late = s->open_reader(); // after close: the whole stream
  REQUIRE(late);
  auto all = read_all(*late);
  REQUIRE(all);
  CHECK(*all == "hello world");
  CHECK(w->written() == 11);
  CHECK(s->file_descriptor() == -1); // memory mode: no file
  auto len = s->wait();
  REQUIRE(len);
  CHECK(*len == 11);
}

TEST_CASE_FIXTURE(system_fixture, "text writes need no byte count") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  std::string owned = "std::string, ";
  REQUIRE_FALSE(w->write("a literal, "));
  REQUIRE_FALSE(w->write(owned));
  REQUIRE_FALSE(w->write(std::string_view{"a view"}));
  REQUIRE_FALSE(w->close());
  CHECK(w->written() == 30);
  auto r = s->open_reader();
  REQUIRE(r);
  std::string got(64, '\0');
  auto n = r->read_exact(got.data(), got.size());
  REQUIRE(n);
  got.resize(*n);
  CHECK(got == "a literal, std::string, a view");
}

TEST_CASE_FIXTURE(system_fixture, "large writes cross chunk borders") {
  stream_options opts;
  opts.chunk_size = 4096;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto data = pattern(100000, 3);
  for (std::size_t i = 0; i < data.size(); i += 7001)
    REQUIRE_FALSE(w->write(data.data() + i, std::min<std::size_t>(
                                              7001, data.size() - i)));
  REQUIRE_FALSE(w->close());
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r, 3000);
  REQUIRE(got);
  CHECK(*got == data);
}

TEST_CASE_FIXTURE(system_fixture, "close_with_error fails readers at its byte") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  REQUIRE_FALSE(w->write("abc", 3));
  REQUIRE_FALSE(w->close_with_error(make_error(errc::io_error, "upstream")));
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[8];
  auto n = r->read(buf, 8);
  REQUIRE(n);
  CHECK(std::string(buf, *n) == "abc");
  auto err = r->read(buf, 8);
  REQUIRE_FALSE(err);
  CHECK(is(err.error(), errc::io_error));
  CHECK(is(w->close_with_error(caf::error{}), errc::invalid_argument));
}

TEST_CASE_FIXTURE(system_fixture, "a handed-over buffer is not copied") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto buf = std::make_shared<const std::string>("no copy");
  REQUIRE_FALSE(w->write(buf));
  REQUIRE_FALSE(w->close());
  auto r = s->open_reader();
  REQUIRE(r);
  auto xs = r->read_slices(100);
  REQUIRE(xs);
  REQUIRE(xs->size() == 1);
  CHECK(reinterpret_cast<const char*>(xs->front().data()) == buf->data());
}

TEST_CASE_FIXTURE(system_fixture, "writing after close fails clearly") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  REQUIRE_FALSE(w->close());
  CHECK(is(w->write("x", 1), errc::closed));
  CHECK_FALSE(w->close()); // a second close is a no-op
  auto again = s->writer(); // one writer per stream
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::invalid_argument));
  auto pulled = stream::make(sys, source::from_bytes(std::string("x")));
  REQUIRE(pulled);
  CHECK_FALSE(pulled->writer()); // not a pushed stream
}

TEST_CASE_FIXTURE(system_fixture, "writes after abort or capacity fail") {
  stream_options opts;
  opts.capacity = 4;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  // The bytes up to the capacity go in; the write says what it could not.
  CHECK(is(w->write("abcdef", 6), errc::buffer_full));
  CHECK(w->written() == 4);
  auto len = s->wait();
  REQUIRE_FALSE(len);
  CHECK(is(len.error(), errc::buffer_full));
  CHECK(is(w->write("g", 1), errc::closed));
  auto s2 = stream::make(sys, source::push());
  REQUIRE(s2);
  auto w2 = s2->writer();
  REQUIRE(w2);
  s2->abort();
  CHECK(is(w2->write("x", 1), errc::canceled));
}

TEST_CASE_FIXTURE(system_fixture, "a writer dropped without close fails") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  {
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(w->write("partial", 7));
  }
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[16];
  auto n = r->read(buf, 16);
  REQUIRE(n);
  CHECK(*n == 7);
  auto err = r->read(buf, 16); // never a complete-looking stream
  REQUIRE_FALSE(err);
  CHECK(is(err.error(), errc::unexpected_end));
}

TEST_CASE_FIXTURE(system_fixture, "writers on several threads are safe") {
  // Each thread writes records "<thread><seq>" of 8 bytes; every record must
  // arrive whole, and every thread's records in its order.
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  constexpr int threads = 8;
  constexpr int records = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < records; ++i) {
        char rec[8];
        std::snprintf(rec, sizeof(rec), "%d%06d", t, i);
        rec[7] = '\n';
        CHECK_FALSE(w->write(rec, 8));
      }
    });
  auto r = s->open_reader();
  REQUIRE(r);
  for (auto& t : ts)
    t.join();
  REQUIRE_FALSE(w->close());
  auto all = read_all(*r, 1000);
  REQUIRE(all);
  REQUIRE(all->size() == threads * records * 8);
  std::vector<int> next(threads, 0);
  for (std::size_t off = 0; off < all->size(); off += 8) {
    auto rec = all->substr(off, 8);
    REQUIRE(rec[7] == '\n');
    int t = rec[0] - '0';
    REQUIRE(t >= 0);
    REQUIRE(t < threads);
    CHECK(std::stoi(rec.substr(1, 6)) == next[t]);
    ++next[t];
  }
  for (int t = 0; t < threads; ++t)
    CHECK(next[t] == records);
}

TEST_CASE_FIXTURE(system_fixture, "rule 9: a reader recovers from data loss") {
  stream_options opts;
  opts.retention = 10;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  REQUIRE_FALSE(w->write("0123456789ABCDEF", 16));
  REQUIRE_FALSE(w->close());
  REQUIRE(s->wait());
  auto r = s->open_reader();
  REQUIRE(r);
  char buf[32];
  auto lost = r->read(buf, sizeof(buf));
  REQUIRE_FALSE(lost);
  CHECK(is(lost.error(), errc::data_loss));
  CHECK(r->position() == 0);
  auto st = s->status();
  REQUIRE(st);
  REQUIRE(r->seek(static_cast<std::int64_t>(st->oldest), whence::start));
  auto n = r->read_exact(buf, sizeof(buf));
  REQUIRE(n);
  CHECK(std::string(buf, *n) == "6789ABCDEF");
}

TEST_CASE_FIXTURE(system_fixture, "tethered: the slowest reader holds back") {
  stream_options opts;
  opts.retention = 100;
  opts.policy = retention_policy::tethered;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto slow = s->open_reader();
  REQUIRE(slow);
  char buf[1000];
  // The slow reader asks for offset 0 once, then stalls there.
  std::thread first_byte([&] { CHECK(slow->read_at(buf, 1, 0)); });
  REQUIRE_FALSE(w->write("x", 1));
  first_byte.join();
  auto data = pattern(1000, 5);
  data[0] = 'x';
  std::thread producer([&] {
    CHECK_FALSE(w->write(data.data() + 1, 999)); // blocks at offset 100
    CHECK_FALSE(w->close());
  });
  // Another reader sees the first 100 bytes: the window's worth past the
  // slow reader's offset, and no more.
  reader_options ropts;
  ropts.timeout = caf::timespan{std::chrono::milliseconds{50}};
  auto fast = s->open_reader(ropts);
  REQUIRE(fast);
  auto n = fast->read_exact(buf, 100);
  REQUIRE(n);
  CHECK(*n == 100);
  auto more = fast->read(buf, 1); // byte 100 is held back
  REQUIRE_FALSE(more);
  CHECK(is(more.error(), errc::timeout));
  auto st = s->status();
  REQUIRE(st);
  CHECK(st->size == 100);
  CHECK(st->oldest == 0); // nothing the slow reader needs was dropped
  slow->close(); // it lets go: the producer goes on as `fast` reads
  std::string rest;
  for (;;) {
    auto k = fast->read(buf, sizeof(buf));
    if (!k && is(k.error(), errc::timeout))
      continue;
    REQUIRE(k);
    if (*k == 0)
      break;
    rest.append(buf, *k);
  }
  producer.join();
  CHECK(rest == data.substr(100));
}

TEST_CASE_FIXTURE(system_fixture, "tethered: writer, slow reader, 50 fast") {
  // Nothing is lost: every reader's checksum matches, while the stream never
  // holds more than the window past the slow reader.
  constexpr std::size_t size = 4 << 20;
  constexpr std::uint64_t window = 256 * 1024;
  stream_options opts;
  opts.retention = window;
  opts.policy = retention_policy::tethered;
  opts.chunk_size = 64 * 1024;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto data = pattern(size, 9);
  // Every reader asks for byte 0 before the bulk is written (a reader
  // counts from its first request), so the window is tethered from the start.
  REQUIRE_FALSE(w->write(data.data(), 1));
  std::mutex mtx;
  std::condition_variable cv;
  int ready = 0;
  auto arrive = [&] {
    std::lock_guard<std::mutex> guard{mtx};
    ++ready;
    cv.notify_all();
  };
  std::vector<std::thread> threads;
  std::vector<std::string> got(51);
  std::atomic<bool> bound_ok{true};
  for (int i = 0; i < 51; ++i) {
    threads.emplace_back([&, i] {
      reader_options ropts;
      ropts.prefetch = i == 0 ? 1024 : 64 * 1024;
      auto r = s->open_reader(ropts);
      if (!r) {
        arrive();
        return;
      }
      std::string out(1, '\0');
      CHECK(r->read_exact(out.data(), 1)); // first request: tracked from 0
      arrive();
      std::string buf(i == 0 ? 1000 : 65536, '\0');
      std::size_t reads = 0;
      for (;;) {
        auto n = r->read(buf.data(), buf.size());
        if (!n) {
          out += "error: " + render(n.error());
          break;
        }
        if (*n == 0)
          break;
        out.append(buf.data(), *n);
        if (i == 0 && ++reads % 256 == 0) {
          auto st = s->status(); // the slow reader bounds the stream
          if (st && st->size > r->position() + window + 1024)
            bound_ok = false;
        }
      }
      got[i] = std::move(out);
    });
  }
  {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [&] { return ready == 51; });
  }
  for (std::size_t off = 1; off < size; off += 10000)
    REQUIRE_FALSE(w->write(data.data() + off,
                           std::min<std::size_t>(10000, size - off)));
  REQUIRE_FALSE(w->close());
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < 51; ++i)
    CHECK(got[i] == data); // no data_loss for anyone
  CHECK(bound_ok);
}

} // TEST_SUITE
