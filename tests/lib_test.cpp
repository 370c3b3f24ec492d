// Unit tests of lib/: chunks, pool, slices, body index, pending index.
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "asyncstream/body_index.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/errc.hpp"
#include "asyncstream/pending_index.hpp"

using namespace asyncstream;

namespace {

mutable_chunk_ptr make_chunk(const std::string& text) {
  auto buf = std::make_shared<std::string>(text);
  return adopt_buffer(std::move(buf));
}

std::string concat(const std::vector<slice>& xs) {
  std::string out;
  for (auto& x : xs)
    out += x.as_string_view();
  return out;
}

} // namespace

TEST_SUITE("lib") {

TEST_CASE("slices share their chunk and never copy it") {
  auto c = make_chunk("hello world");
  slice s{c, 0, 11};
  auto sub = s.subslice(6, 5);
  CHECK(sub.as_string_view() == "world");
  CHECK(sub.data() == c->data() + 6);
  CHECK(c.use_count() == 3);
  sub.remove_prefix(2);
  CHECK(sub.as_string_view() == "rld");
  CHECK(s.subslice(20, 5).empty());
}

TEST_CASE("a slice keeps its chunk alive after everything else is gone") {
  slice s;
  {
    auto pool = chunk_pool::make(4096);
    auto c = pool->acquire();
    std::memcpy(c->mutable_data(), "abc", 3);
    s = slice{c, 0, 3};
  }
  CHECK(s.as_string_view() == "abc");
}

TEST_CASE("the chunk pool reuses released blocks instead of fresh pages") {
  auto pool = chunk_pool::make(64 * 1024);
  const std::byte* first = nullptr;
  {
    auto c = pool->acquire();
    first = c->data();
    CHECK(c->capacity() == 64 * 1024);
    CHECK(pool->stats().in_use == 1);
  }
  CHECK(pool->stats().in_use == 0);
  CHECK(pool->stats().cached == 1);
  auto again = pool->acquire();
  CHECK(again->data() == first);
  CHECK(pool->stats().reused == 1);
  // A slab spans 2 MiB: 32 chunks of 64 KiB before a second mapping.
  std::vector<mutable_chunk_ptr> many;
  for (int i = 0; i < 31; ++i)
    many.push_back(pool->acquire());
  CHECK(pool->stats().mapped_bytes == 2 * 1024 * 1024);
  many.push_back(pool->acquire());
  CHECK(pool->stats().mapped_bytes == 4 * 1024 * 1024);
}

TEST_CASE("a second stream through the pool faults in no fresh pages") {
  // Fill 64 MiB of chunks, release them, fill 64 MiB again: the second pass
  // reuses resident blocks, so it takes (almost) no page faults, where fresh
  // memory would take one per 4 KiB page (16384) or per huge page (32).
  auto pool = chunk_pool::make(1 << 20, 128 << 20);
  auto fill = [&] {
    std::vector<mutable_chunk_ptr> xs;
    for (int i = 0; i < 64; ++i) {
      xs.push_back(pool->acquire());
      std::memset(xs.back()->mutable_data(), i, xs.back()->capacity());
    }
  };
  auto faults = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
  };
  fill();
  auto before = faults();
  fill();
  auto second = faults() - before;
  MESSAGE("page faults of the second 64 MiB: " << second);
  CHECK(second < 64); // fewer than one per chunk
  CHECK(pool->stats().reused == 64);
}

TEST_CASE("the chunk pool bounds the resident free memory") {
  auto pool = chunk_pool::make(64 * 1024, 2 * 64 * 1024);
  {
    std::vector<mutable_chunk_ptr> xs;
    for (int i = 0; i < 4; ++i)
      xs.push_back(pool->acquire());
  }
  CHECK(pool->stats().cached == 2);
  pool->trim();
  CHECK(pool->stats().cached == 0);
}

TEST_CASE("a pool's bound can be lowered at run time and trims at once") {
  auto pool = chunk_pool::make(64 * 1024, 8 * 64 * 1024);
  {
    std::vector<mutable_chunk_ptr> xs;
    for (int i = 0; i < 6; ++i)
      xs.push_back(pool->acquire());
    CHECK(pool->stats().in_use_bytes == 6 * 64 * 1024);
  }
  CHECK(pool->stats().cached == 6);
  CHECK(pool->stats().cached_bytes == 6 * 64 * 1024);
  pool->set_max_cached(2 * 64 * 1024);
  CHECK(pool->max_cached() == 2 * 64 * 1024);
  CHECK(pool->stats().cached == 2);
  // Above the bound, a freed chunk's pages go back to the kernel.
  {
    std::vector<mutable_chunk_ptr> xs;
    for (int i = 0; i < 4; ++i)
      xs.push_back(pool->acquire());
  }
  CHECK(pool->stats().cached == 2);
  CHECK(pool->stats().in_use == 0);
}

TEST_CASE("the process-wide pools share one bound on free memory") {
  auto saved = chunk_pool::shared_max_cached();
  auto small = chunk_pool::shared(16 * 1024);
  auto big = chunk_pool::shared(256 * 1024);
  CHECK(chunk_pool::shared(16 * 1024).get() == small.get());
  chunk_pool::set_shared_max_cached(std::size_t{64} << 20);
  {
    std::vector<mutable_chunk_ptr> xs;
    for (int i = 0; i < 8; ++i) {
      xs.push_back(small->acquire());
      xs.push_back(big->acquire());
    }
  }
  auto st = chunk_pool::shared_stats();
  CHECK(st.cached_bytes >= 8 * (16 + 256) * 1024);
  // One bound for all of them: trimmed at once, across sizes.
  chunk_pool::set_shared_max_cached(300 * 1024);
  st = chunk_pool::shared_stats();
  CHECK(st.cached_bytes <= 300 * 1024);
  // Freed chunks above the bound are not kept.
  {
    std::vector<mutable_chunk_ptr> xs;
    for (int i = 0; i < 8; ++i)
      xs.push_back(big->acquire());
  }
  CHECK(chunk_pool::shared_stats().cached_bytes <= 300 * 1024);
  chunk_pool::set_shared_max_cached(0);
  CHECK(chunk_pool::shared_stats().cached_bytes == 0);
  chunk_pool::set_shared_max_cached(saved);
}

TEST_CASE("a slab of small chunks is not one huge page") {
  // Touching one byte of a 16 KiB chunk makes one 4 KiB page resident, not
  // the 2 MiB huge page its slab would get if it were advised for them.
  auto pool = chunk_pool::make(16 * 1024);
  auto c = pool->acquire();
  c->mutable_data()[0] = std::byte{1};
  auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  auto base = reinterpret_cast<std::uintptr_t>(c->data()) & ~(page - 1);
  auto huge = base & ~((std::uintptr_t{2} << 20) - 1);
  std::vector<unsigned char> resident((std::size_t{2} << 20) / page);
  REQUIRE(::mincore(reinterpret_cast<void*>(huge), std::size_t{2} << 20,
                    resident.data())
          == 0);
  std::size_t n = 0;
  for (auto r : resident)
    n += r & 1;
  MESSAGE("resident pages of the slab after touching one byte: " << n);
  CHECK(n <= 4);
}

TEST_CASE("body index merges adjacent appends into one extent") {
  auto c = make_chunk("abcdefghij");
  body_index body;
  body.append(slice{c, 0, 3});
  body.append(slice{c, 3, 4});
  body.append(slice{c, 7, 3});
  CHECK(body.size() == 10);
  CHECK(body.extents() == 1);
  body.append(slice{make_chunk("KLM"), 0, 3});
  CHECK(body.extents() == 2);
  std::vector<slice> out;
  CHECK(body.collect(8, 4, out) == 4);
  CHECK(concat(out) == "ijKL");
  CHECK(out.size() == 2);
}

TEST_CASE("body index collects exactly the requested window") {
  body_index body;
  std::string all;
  for (int i = 0; i < 50; ++i) {
    std::string part(static_cast<std::size_t>(i % 7 + 1), char('a' + i % 26));
    all += part;
    body.append(slice{make_chunk(part), 0, part.size()});
  }
  for (std::size_t off = 0; off < all.size(); off += 3) {
    for (std::size_t n : {1, 2, 5, 17, 1000}) {
      std::vector<slice> out;
      auto got = body.collect(off, n, out);
      auto want = all.substr(off, n);
      CHECK(got == want.size());
      CHECK(concat(out) == want);
    }
  }
  std::vector<slice> out;
  CHECK(body.collect(all.size(), 10, out) == 0);
  CHECK(body.collect(0, 0, out) == 0);
  CHECK(out.empty());
}

TEST_CASE("body index forgets its oldest bytes exactly") {
  body_index body;
  auto c = make_chunk("0123456789ABCDEF");
  body.append(slice{c, 0, 10});
  body.append(slice{make_chunk("ABCDEF"), 0, 6});
  std::vector<slice> held;
  body.collect(0, 16, held); // a reader's slices, taken before the drop
  body.drop_front(6);
  CHECK(body.begin() == 6);
  CHECK(body.size() == 16);
  std::vector<slice> out;
  CHECK(body.collect(6, 100, out) == 10);
  CHECK(concat(out) == "6789ABCDEF");
  out.clear();
  CHECK(body.collect(5, 100, out) == 0); // below the window
  body.drop_front(12);
  CHECK(body.extents() == 1); // the first chunk is out of the index
  out.clear();
  CHECK(body.collect(12, 2, out) == 2);
  CHECK(concat(out) == "CD");
  CHECK(concat(held) == "0123456789ABCDEF"); // still valid
  body.drop_front(100); // clamped to the size
  CHECK(body.begin() == 16);
  CHECK(body.extents() == 0);
}

TEST_CASE("pending index hands out ready requests in offset order") {
  pending_index<int> idx;
  idx.add(1, 30, 5, 100);
  idx.add(2, 10, 5, 200);
  idx.add(3, 20, 5, 300);
  idx.add(4, 50, 5, 400);
  std::vector<int> got;
  idx.take_ready(31, [&](auto&& e) { got.push_back(e.payload); });
  CHECK(got == std::vector<int>{200, 300, 100});
  CHECK(idx.size() == 1);
  got.clear();
  idx.take_ready(50, [&](auto&& e) { got.push_back(e.payload); });
  CHECK(got.empty());
  idx.take_all([&](auto&& e) { got.push_back(e.payload); });
  CHECK(got == std::vector<int>{400});
  CHECK(idx.empty());
}

TEST_CASE("pending index drops one reader's requests only") {
  pending_index<int> idx;
  idx.add(7, 10, 1, 1);
  idx.add(8, 10, 1, 2);
  idx.add(7, 40, 1, 3);
  std::vector<int> got;
  idx.take_reader(7, [&](auto&& e) { got.push_back(e.payload); });
  CHECK(got.size() == 2);
  CHECK(idx.size() == 1);
  got.clear();
  idx.take_ready(100, [&](auto&& e) { got.push_back(e.payload); });
  CHECK(got == std::vector<int>{2});
  idx.take_reader(7, [&](auto&&) { FAIL("reader 7 has nothing left"); });
}

TEST_CASE("every error code has a message and a name") {
  for (int i = 0; i <= static_cast<int>(errc::not_found); ++i) {
    auto code = static_cast<errc>(i);
    CHECK(std::string{describe(code)} != "unknown asyncstream error");
    CHECK(to_string(code) != "unknown");
  }
}

} // TEST_SUITE
