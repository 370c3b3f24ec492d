// Concurrency stress: 100 readers with random read sizes and random start
// times over a source with random read sizes; every checksum must match.
#include <doctest/doctest.h>

#include <future>
#include <random>
#include <thread>

#include <caf/event_based_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/blocking_reader.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t n) {
  auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

constexpr std::uint64_t fnv_init = 14695981039346656037ull;

/// A source of `size` pseudo-random bytes in reads of random sizes.
source random_source(std::shared_ptr<const std::string> data,
                     std::uint32_t seed) {
  auto pos = std::make_shared<std::size_t>(0);
  auto rng = std::make_shared<std::mt19937>(seed);
  return source::from_function(
    [=](std::byte* buf, std::size_t max) -> read_outcome {
      std::uniform_int_distribution<std::size_t> len{1, 100000};
      auto n = std::min({max, len(*rng), data->size() - *pos});
      std::memcpy(buf, data->data() + *pos, n);
      *pos += n;
      read_outcome res;
      res.size = n;
      res.eof = *pos == data->size();
      if ((*rng)() % 8 == 0)
        std::this_thread::yield(); // vary the interleaving
      return res;
    });
}

std::shared_ptr<const std::string> random_bytes(std::size_t n,
                                                std::uint32_t seed) {
  auto out = std::make_shared<std::string>(n, '\0');
  std::mt19937_64 rng{seed};
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    auto x = rng();
    std::memcpy(out->data() + i, &x, 8);
  }
  return out;
}

} // namespace

TEST_SUITE("stress") {

TEST_CASE_FIXTURE(system_fixture, "100 blocking readers, random everything") {
  constexpr std::size_t size = 24 << 20;
  auto data = random_bytes(size, 42);
  auto want = fnv1a(fnv_init, data->data(), data->size());
  stream_options opts;
  opts.chunk_size = 256 * 1024; // many chunk borders
  auto s = stream::make(sys, random_source(data, 7), opts);
  REQUIRE(s);
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> sums(100, 0);
  std::vector<std::string> errors(100);
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng{static_cast<std::uint32_t>(i)};
      reader_options ropts;
      ropts.prefetch = std::uniform_int_distribution<std::size_t>{
        1, 4 << 20}(rng);
      auto r = s->open_reader(ropts);
      if (!r) {
        errors[i] = render(r.error());
        return;
      }
      // A random start time: wait until a random offset exists.
      auto start = std::uniform_int_distribution<std::int64_t>{
        0, static_cast<std::int64_t>(size - 1)}(rng);
      if (auto ok = r->wait_for(start); !ok || !*ok) {
        errors[i] = "wait_for failed";
        return;
      }
      std::uniform_int_distribution<std::size_t> len{1, 200000};
      std::string buf(200000, '\0');
      auto h = fnv_init;
      for (;;) {
        auto n = r->read(buf.data(), len(rng));
        if (!n) {
          errors[i] = render(n.error());
          return;
        }
        if (*n == 0)
          break;
        h = fnv1a(h, buf.data(), *n);
      }
      sums[i] = h;
    });
  }
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < 100; ++i) {
    CHECK(errors[i] == "");
    CHECK(sums[i] == want);
  }
}

TEST_CASE_FIXTURE(system_fixture, "100 actor readers, random read sizes") {
  constexpr std::size_t size = 8 << 20;
  auto data = random_bytes(size, 43);
  auto want = fnv1a(fnv_init, data->data(), data->size());
  auto s = stream::make(sys, random_source(data, 8));
  REQUIRE(s);
  std::vector<std::future<std::uint64_t>> sums;
  for (int i = 0; i < 100; ++i) {
    auto done = std::make_shared<std::promise<std::uint64_t>>();
    sums.push_back(done->get_future());
    sys.spawn([i, done, s = *s](caf::event_based_actor* self) {
      async_reader::open(self, s, [self, i, done](auto r) {
        if (!r) {
          done->set_value(0);
          return;
        }
        struct loop_state {
          async_reader reader;
          std::mt19937 rng;
          std::string buf = std::string(100000, '\0');
          std::uint64_t h = fnv_init;
        };
        auto st = std::make_shared<loop_state>();
        st->reader = *r;
        st->rng.seed(static_cast<std::uint32_t>(i));
        auto step = std::make_shared<std::function<void()>>();
        *step = [self, st, step, done] {
          auto n = std::uniform_int_distribution<std::size_t>{1, 100000}(
            st->rng);
          st->reader.read(st->buf.data(), n, [self, st, step, done](auto k) {
            if (!k || *k == 0) {
              done->set_value(k ? st->h : 0);
              st->reader.close();
              *step = nullptr;
              self->quit();
              return;
            }
            st->h = fnv1a(st->h, st->buf.data(), *k);
            (*step)();
          });
        };
        (*step)();
      });
    });
  }
  for (auto& f : sums)
    CHECK(f.get() == want);
}

} // TEST_SUITE
