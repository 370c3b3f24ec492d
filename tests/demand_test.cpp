// Demand-driven reading: the source reads ahead at most `read_ahead` bytes
// past the furthest byte any reader asked for.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "asyncstream/blocking_reader.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

/// A source of `data` that checks, on every call, that it was not allowed
/// past `asked + read_ahead` (the test raises `asked` before each read).
struct witness {
  std::string data;
  std::size_t pos = 0;
  std::atomic<std::uint64_t> asked{0};
  std::atomic<bool> overrun{false};
  std::uint64_t read_ahead = 0;

  source make() {
    return source::from_function([this](std::byte* buf, std::size_t max) {
      if (pos + max > asked.load() + read_ahead)
        overrun = true;
      auto n = std::min(max, data.size() - pos);
      std::memcpy(buf, data.data() + pos, n);
      pos += n;
      read_outcome res;
      res.size = n;
      res.eof = pos == data.size();
      return res;
    });
  }
};

} // namespace

TEST_SUITE("demand") {

TEST_CASE_FIXTURE(system_fixture, "the source reads only as far as asked") {
  witness w;
  w.data = pattern(1 << 20, 4);
  w.read_ahead = 1000;
  stream_options opts;
  opts.read_ahead = w.read_ahead;
  auto s = stream::make(sys, w.make(), opts);
  REQUIRE(s);
  reader_options ropts;
  ropts.prefetch = 300;
  auto r = s->open_reader(ropts);
  REQUIRE(r);
  std::string got;
  char buf[100];
  for (int i = 0; i < 50; ++i) {
    w.asked = std::max<std::uint64_t>(w.asked, r->position() + ropts.prefetch);
    auto n = r->read(buf, sizeof(buf));
    REQUIRE(n);
    got.append(buf, *n);
  }
  auto st = s->status();
  REQUIRE(st);
  CHECK(st->size <= w.asked + w.read_ahead);
  CHECK_FALSE(st->final); // far from the end of the 1 MiB source
  CHECK_FALSE(w.overrun);
  CHECK(got == w.data.substr(0, got.size()));
  s->abort(); // the source waits for room: abort wakes it
}

TEST_CASE_FIXTURE(system_fixture, "no lost wake-up at the read-ahead limit") {
  // With no read-ahead at all, every 1-byte read waits exactly at the limit
  // while the source delivers that byte concurrently: 10,000 rounds.
  witness w;
  w.data = pattern(10000, 6);
  w.read_ahead = 0;
  stream_options opts;
  opts.read_ahead = 0;
  auto s = stream::make(sys, w.make(), opts);
  REQUIRE(s);
  reader_options ropts;
  ropts.prefetch = 1;
  auto r = s->open_reader(ropts);
  REQUIRE(r);
  std::string got;
  for (std::size_t i = 0; i < w.data.size(); ++i) {
    w.asked = i + 1;
    char c;
    auto n = r->read(&c, 1);
    REQUIRE(n);
    REQUIRE(*n == 1);
    got += c;
  }
  CHECK(got == w.data);
  CHECK_FALSE(w.overrun);
}

TEST_CASE_FIXTURE(system_fixture, "wait and an end seek lift the limit") {
  auto data = pattern(100000, 7);
  stream_options opts;
  opts.read_ahead = 10;
  {
    auto s = stream::make(sys, scripted(data, 4096), opts);
    REQUIRE(s);
    auto len = s->wait(); // would wait forever under the limit
    REQUIRE(len);
    CHECK(*len == data.size());
  }
  {
    auto s = stream::make(sys, scripted(data, 4096), opts);
    REQUIRE(s);
    auto r = s->open_reader();
    REQUIRE(r);
    auto pos = r->seek(-1, whence::end);
    REQUIRE(pos);
    CHECK(*pos == data.size() - 1);
  }
}

} // TEST_SUITE
