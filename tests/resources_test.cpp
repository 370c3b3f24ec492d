// Resources a stream takes, and what happens when there are none: out of
// descriptors (a lowered RLIMIT_NOFILE), out of threads and memory (a
// lowered RLIMIT_AS), descriptors only where needed, 1000 small streams, the
// pools' resident free memory bounded at run time, and stream::stats() with
// real threads.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <system_error>
#include <string>
#include <thread>
#include <vector>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/detail/chunk_sizer.hpp"
#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/stream_writer.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

/// Counts the entries of a /proc/self directory ("fd", "task").
std::size_t count_entries(const char* dir) {
  std::size_t n = 0;
  if (auto* d = ::opendir(dir)) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    ::closedir(d);
  }
  return n;
}

std::size_t open_fds() {
  return count_entries("/proc/self/fd");
}

/// Reads a "Name:   1234 kB" line of /proc/self/status, in bytes.
std::uint64_t proc_status_bytes(const char* name) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  auto len = std::strlen(name);
  while (std::getline(in, line))
    if (line.compare(0, len, name) == 0 && line.size() > len
        && line[len] == ':')
      return std::stoull(line.substr(len + 1)) * 1024;
  return 0;
}

/// Lowers RLIMIT_NOFILE to the open descriptors plus a few, then takes the
/// few with /dev/null, so that no descriptor is left. `release(n)` gives n
/// of them back. Everything is restored on destruction.
struct no_descriptors_left {
  rlimit saved{};
  std::vector<int> fillers;
  std::size_t before = 0;

  no_descriptors_left() {
    before = open_fds();
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit low = saved;
    low.rlim_cur = before + 8;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    for (;;) {
      auto fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        REQUIRE(errno == EMFILE);
        break;
      }
      fillers.push_back(fd);
    }
    MESSAGE("RLIMIT_NOFILE " << low.rlim_cur << ", " << before
                             << " descriptors open, " << fillers.size()
                             << " taken by fillers");
  }

  void release(std::size_t n) {
    for (; n > 0 && !fillers.empty(); --n) {
      ::close(fillers.back());
      fillers.pop_back();
    }
  }

  ~no_descriptors_left() {
    release(fillers.size());
    ::setrlimit(RLIMIT_NOFILE, &saved);
  }
};

/// Reads `s` to its end through a fresh reader.
std::string read_stream(const stream& s) {
  auto r = s.open_reader();
  REQUIRE(r);
  auto got = read_all(*r);
  REQUIRE(got);
  return *got;
}

/// A stream file of a few bytes, written with plain stdio.
struct stream_file {
  std::string path;

  explicit stream_file(const std::string& bytes) {
    auto* env = std::getenv("TMPDIR");
    std::string tmpl = std::string{env != nullptr && *env ? env : "/tmp"}
                       + "/asyncstream-res-XXXXXX";
    auto fd = ::mkstemp(tmpl.data());
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, bytes.data(), bytes.size())
            == static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    path = tmpl;
  }

  ~stream_file() {
    ::unlink(path.c_str());
  }
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool address_sanitizer = true;
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
constexpr bool address_sanitizer = true;
#  else
constexpr bool address_sanitizer = false;
#  endif
#else
constexpr bool address_sanitizer = false;
#endif

/// UndefinedBehaviorSanitizer's vptr check asks the kernel whether memory
/// is readable through a pipe it opens: with no descriptor left it reports
/// every dynamic type as an "invalid vptr". The tests that take every
/// descriptor therefore run only without it (CI's plain build runs them).
#if defined(ASYNCSTREAM_UNDEFINED_SANITIZER)
constexpr bool undefined_sanitizer = true;
#else
constexpr bool undefined_sanitizer = false;
#endif

#define SKIP_WITHOUT_DESCRIPTORS_UNDER_UBSAN()                                 \
  if (undefined_sanitizer) {                                                   \
    MESSAGE("skipped under UBSan: its vptr check needs a descriptor (a "       \
            "pipe) and reports false 'invalid vptr' errors when none is "      \
            "left");                                                           \
    return;                                                                    \
  }

} // namespace

TEST_SUITE("resources") {

TEST_CASE_FIXTURE(system_fixture,
                  "out of descriptors: a descriptor source fails cleanly") {
  SKIP_WITHOUT_DESCRIPTORS_UNDER_UBSAN();
  live_pipe p;
  std::string path;
  stream_file file{"from a file\n"};
  auto fds_before = open_fds();
  {
    no_descriptors_left limit;
    for (int i = 0; i < 100; ++i) {
      // The stop eventfd of a descriptor source cannot be opened.
      auto s = stream::make(sys, source::from_fd(p.reader_fd()));
      REQUIRE_FALSE(s);
      CHECK(is(s.error(), errc::resource_exhausted));
      CHECK(render(s.error()).find("eventfd") != std::string::npos);
    }
    MESSAGE(render(stream::make(sys, source::from_fd(p.reader_fd())).error()));
    // A source given as a path opens its file in the one free slot; make
    // fails (no slot for the eventfd) and must close that file again, or
    // the next from_path would find no slot.
    limit.release(1);
    for (int i = 0; i < 100; ++i) {
      auto src = source::from_path(file.path);
      REQUIRE(src);
      auto s = stream::make(sys, std::move(*src));
      REQUIRE_FALSE(s);
      CHECK(is(s.error(), errc::resource_exhausted));
    }
    // from_path itself, without a slot.
    auto extra = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(extra >= 0); // takes the free slot again
    auto src = source::from_path(file.path);
    REQUIRE_FALSE(src);
    CHECK(is(src.error(), errc::resource_exhausted));
    ::close(extra);
  }
  CHECK(open_fds() == fds_before);
  // With descriptors again, the same stream works.
  auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(s);
  p.write("hello");
  p.close_writer();
  CHECK(read_stream(*s) == "hello");
  auto src = source::from_path(file.path);
  REQUIRE(src);
  auto f = stream::make(sys, std::move(*src));
  REQUIRE(f);
  CHECK(read_stream(*f) == "from a file\n");
}

TEST_CASE_FIXTURE(system_fixture,
                  "out of descriptors: file storage fails cleanly") {
  SKIP_WITHOUT_DESCRIPTORS_UNDER_UBSAN();
  stream_file old{"written earlier"};
  auto fds_before = open_fds();
  stream_options unnamed;
  unnamed.file = file_storage{};
  stream_options named;
  named.file = file_storage{};
  named.file->path = old.path + ".new";
  {
    no_descriptors_left limit;
    for (int i = 0; i < 100; ++i) {
      auto a = stream::make(sys, source::push(), unnamed);
      REQUIRE_FALSE(a);
      CHECK(is(a.error(), errc::resource_exhausted));
      auto b = stream::make(sys, source::from_bytes(std::string("x")), named);
      REQUIRE_FALSE(b);
      CHECK(is(b.error(), errc::resource_exhausted));
      auto c = stream::reopen(sys, old.path);
      REQUIRE_FALSE(c);
      CHECK(is(c.error(), errc::resource_exhausted));
    }
    MESSAGE(render(stream::reopen(sys, old.path).error()));
  }
  ::unlink(named.file->path.c_str());
  CHECK(open_fds() == fds_before);
  auto a = stream::make(sys, source::push(), unnamed);
  REQUIRE(a);
  auto w = a->writer();
  REQUIRE(w);
  REQUIRE_FALSE(w->write("abc", 3));
  REQUIRE_FALSE(w->close());
  CHECK(read_stream(*a) == "abc");
  auto c = stream::reopen(sys, old.path);
  REQUIRE(c);
  CHECK(read_stream(*c) == "written earlier");
}

TEST_CASE_FIXTURE(system_fixture,
                  "descriptors only where needed: pushed memory streams take "
                  "none") {
  SKIP_WITHOUT_DESCRIPTORS_UNDER_UBSAN();
  auto before = open_fds();
  std::vector<stream> streams;
  std::vector<stream_writer> writers;
  {
    no_descriptors_left limit; // not one descriptor to spare
    for (int i = 0; i < 20; ++i) {
      auto s = stream::make(sys, source::push());
      REQUIRE(s);
      auto w = s->writer();
      REQUIRE(w);
      REQUIRE_FALSE(w->write("pushed", 6));
      REQUIRE_FALSE(w->close());
      CHECK(read_stream(*s) == "pushed");
      streams.push_back(std::move(*s));
      writers.push_back(std::move(*w));
      // A complete buffer and a read function need none either.
      auto b = stream::make(sys, source::from_bytes(std::string("buffer")));
      REQUIRE(b);
      CHECK(read_stream(*b) == "buffer");
      auto f = stream::make(sys, scripted("function", 3));
      REQUIRE(f);
      CHECK(read_stream(*f) == "function");
    }
  }
  CHECK(open_fds() == before);
  // A pushed file-backed stream takes one (its file), a descriptor source
  // one (the eventfd that wakes its reader's poll).
  stream_options fopts;
  fopts.file = file_storage{};
  auto f = stream::make(sys, source::push(), fopts);
  REQUIRE(f);
  CHECK(open_fds() == before + 1);
  live_pipe p; // two descriptors of its own
  auto d = stream::make(sys, source::from_fd(p.reader_fd(), true));
  REQUIRE(d);
  CHECK(open_fds() == before + 1 + 2 + 1);
}

TEST_CASE("out of threads: make fails cleanly and the system still shuts "
          "down") {
  // The actor system is local: its destructor would wait forever for an
  // actor or a thread that a failed spawn left registered (what CAF 0.17's
  // own detached spawn does when std::thread throws). Thread creation fails
  // through the kernel's fault injection, the way std::thread fails.
  auto threads_before = count_entries("/proc/self/task");
  auto fds_before = open_fds();
  {
    caf::actor_system_config cfg;
    system_fixture::prepare(cfg);
    caf::actor_system sys{cfg};
    live_pipe p;
    auto fds_with_pipe = open_fds();
    stream_options own; // the transfer actor on a thread of its own
    stream_options shared;
    shared.transfer_thread = false;
    for (int i = 0; i < 100; ++i) {
      // The transfer actor's thread.
      detail::fail_thread_creation(0, 1);
      auto a = stream::make(sys, source::push(), own);
      REQUIRE_FALSE(a);
      CHECK(is(a.error(), errc::resource_exhausted));
      // The source reader's thread (its eventfd must go too).
      detail::fail_thread_creation(0, 1);
      auto b = stream::make(sys, source::from_fd(p.reader_fd()), shared);
      REQUIRE_FALSE(b);
      CHECK(is(b.error(), errc::resource_exhausted));
      // The source reader's thread was created (and waits), the transfer
      // actor's fails: the waiting thread must end without having read.
      detail::fail_thread_creation(1, 1);
      auto c = stream::make(sys, source::from_fd(p.reader_fd()), own);
      REQUIRE_FALSE(c);
      CHECK(is(c.error(), errc::resource_exhausted));
      if (i == 0)
        MESSAGE(render(a.error()));
    }
    detail::fail_thread_creation(0, 0);
    CHECK(open_fds() == fds_with_pipe);
    // Nothing was read from the pipe by an abandoned reader.
    p.write("after");
    p.close_writer();
    auto s = stream::make(sys, source::from_fd(p.reader_fd(), true), own);
    REQUIRE(s);
    CHECK(read_stream(*s) == "after");
  } // ~actor_system: hangs (the test times out) if anything was left behind
  CHECK(open_fds() == fds_before);
  // Threads that were counted out may still be on their way out of the
  // kernel for a moment: show the count, do not race it.
  MESSAGE("threads: " << threads_before << " before, "
                      << count_entries("/proc/self/task") << " after");
}

TEST_CASE_FIXTURE(system_fixture,
                  "out of memory: a writer that gets no chunk fails the "
                  "stream, it does not throw") {
  if (address_sanitizer) {
    MESSAGE("skipped under AddressSanitizer (its allocator needs address "
            "space that RLIMIT_AS would deny)");
    return;
  }
  stream_options opts;
  opts.pool = chunk_pool::make(64 * 1024); // no slab mapped yet
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  // Every thread that takes part has run once before the limit: a thread
  // that first touches a thread_local during the window cannot register
  // its destructor and glibc aborts the process (seen once in CI: "failed
  // to register TLS destructor: out of memory").
  REQUIRE(s->status());
  auto r = s->open_reader();
  REQUIRE(r);
  caf::error err;
  {
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_AS, &saved) == 0);
    // A slab needs 4 MiB of address space (2 MiB, aligned to 2 MiB).
    rlimit low = saved;
    low.rlim_cur = proc_status_bytes("VmSize") + (std::uint64_t{1} << 20);
    REQUIRE(::setrlimit(RLIMIT_AS, &low) == 0);
    err = w->write("abc", 3);
    ::setrlimit(RLIMIT_AS, &saved);
  }
  REQUIRE(err);
  CHECK(is(err, errc::resource_exhausted));
  CHECK(is(w->write("x", 1), errc::resource_exhausted));
  char buf[8];
  auto n = r->read(buf, sizeof(buf));
  REQUIRE_FALSE(n);
  CHECK(is(n.error(), errc::resource_exhausted));
}

TEST_CASE("1000 one-byte pushed streams cost a few MiB, and the pools' "
          "free memory obeys its bound") {
  constexpr int n = 1000;
  auto pools_before = chunk_pool::shared_stats();
  auto rss_before = proc_status_bytes("VmRSS");
  std::uint64_t rss_with = 0;
  chunk_pool_stats pools_with;
  {
    caf::actor_system_config cfg;
    system_fixture::prepare(cfg);
    caf::actor_system sys{cfg};
    std::vector<stream> streams;
    streams.reserve(n);
    stream_options opts;
    opts.transfer_thread = false; // what a server with many streams sets
    for (int i = 0; i < n; ++i) {
      auto s = stream::make(sys, source::push(), opts);
      REQUIRE(s);
      auto w = s->writer();
      REQUIRE(w);
      REQUIRE_FALSE(w->write("x", 1));
      REQUIRE_FALSE(w->close());
      streams.push_back(std::move(*s));
    }
    // Every byte is published once its stream is final.
    for (auto& s : streams)
      REQUIRE(s.wait());
    CHECK(read_stream(streams.front()) == "x");
    CHECK(read_stream(streams.back()) == "x");
    pools_with = chunk_pool::shared_stats();
    rss_with = proc_status_bytes("VmRSS");
    streams.clear();
  } // ~actor_system: every transfer actor has let go of its chunk
  auto pools_after = chunk_pool::shared_stats();
  auto in_use = pools_with.in_use_bytes - pools_before.in_use_bytes;
  auto mapped = pools_with.mapped_bytes - pools_before.mapped_bytes;
  MESSAGE("1000 streams of 1 byte: chunks in use "
          << in_use / 1024 << " KiB, pools mapped " << mapped / 1024
          << " KiB more, RSS +" << (rss_with - rss_before) / 1024 << " KiB");
  // One 4 KiB chunk per stream (not 1 MiB): 4000 KiB.
  CHECK(in_use <= std::uint64_t{n} * 4096);
  CHECK(mapped <= (std::uint64_t{8} << 20));
  // Chunks, actors, mailboxes: a few KiB per stream, not a MiB.
  // (AddressSanitizer's shadow memory and quarantine add tens of MiB.)
  CHECK(rss_with - rss_before
        <= (std::uint64_t{address_sanitizer ? 160 : 32} << 20));
  CHECK(pools_after.in_use_bytes == pools_before.in_use_bytes);
  // Freed chunks stay resident up to the process-wide bound; lowering it
  // gives the rest back at once.
  auto saved = chunk_pool::shared_max_cached();
  chunk_pool::set_shared_max_cached(64 * 1024);
  auto trimmed = chunk_pool::shared_stats();
  MESSAGE("resident free chunk memory: " << pools_after.cached_bytes / 1024
                                         << " KiB, after the bound "
                                         << trimmed.cached_bytes / 1024
                                         << " KiB");
  CHECK(trimmed.cached_bytes <= 64 * 1024);
  chunk_pool::set_shared_max_cached(saved);
}

TEST_CASE_FIXTURE(system_fixture, "stats: a pushed stream, with threads") {
  stream_options opts;
  opts.declared_length = 10;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto st = s->stats();
  CHECK(st.size == 0);
  CHECK_FALSE(st.final);
  CHECK(st.declared_length == std::optional<std::uint64_t>{10});
  auto w = s->writer();
  REQUIRE(w);
  REQUIRE_FALSE(w->write("hello", 5));
  auto r = s->open_reader();
  REQUIRE(r);
  CHECK(s->stats().readers == 1);
  char buf[16];
  auto n = r->read_exact(buf, 5); // the bytes were published: size counts them
  REQUIRE(n);
  CHECK(*n == 5);
  st = s->stats();
  CHECK(st.size == 5);
  CHECK_FALSE(st.final);
  // A close reaches the monitor before a later open from the same thread.
  r->close();
  auto r2 = s->open_reader();
  REQUIRE(r2);
  CHECK(s->stats().readers == 1);
  REQUIRE_FALSE(w->write("world", 5)); // reaches the declared length
  auto len = s->wait();
  REQUIRE(len);
  st = s->stats();
  CHECK(st.size == 10);
  CHECK(st.final);
  CHECK_FALSE(st.error);
  // A failed stream: the error is there once final.
  auto f = stream::make(sys, source::push());
  REQUIRE(f);
  auto fw = f->writer();
  REQUIRE(fw);
  REQUIRE_FALSE(fw->write("ab", 2));
  CHECK_FALSE(f->stats().final);
  REQUIRE_FALSE(fw->close_with_error(make_error(errc::io_error, "gone")));
  CHECK_FALSE(f->wait());
  st = f->stats();
  CHECK(st.final);
  CHECK(st.size == 2);
  CHECK(is(st.error, errc::io_error));
  // An invalid handle: zeros.
  CHECK(stream{}.stats().size == 0);
}

TEST_CASE_FIXTURE(system_fixture, "stats: complete streams are final at once") {
  auto b = stream::make(sys, source::from_bytes(std::string("0123456789")));
  REQUIRE(b);
  auto st = b->stats(); // no round trip: published before make returned
  CHECK(st.final);
  CHECK(st.size == 10);
  stream_file file{"abcdef"};
  auto r = stream::reopen(sys, file.path);
  REQUIRE(r);
  st = r->stats();
  CHECK(st.final);
  CHECK(st.size == 6);
}

TEST_CASE_FIXTURE(system_fixture,
                  "stats: the 101st reader waits, with threads") {
  auto s = stream::make(sys, source::from_bytes(std::string("x")));
  REQUIRE(s);
  std::vector<blocking_reader> readers;
  for (int i = 0; i < 100; ++i) {
    auto r = s->open_reader();
    REQUIRE(r);
    readers.push_back(std::move(*r));
  }
  auto st = s->stats();
  CHECK(st.readers == 100);
  CHECK(st.waiting == 0);
  std::atomic<bool> granted{false};
  std::thread t([&] {
    auto r = s->open_reader(); // waits for a slot
    CHECK(r);
    granted = true;
  });
  // stats() is what a metrics poll calls; polling it here is the use case
  // (no sleep: it returns at once, and the open is counted before it waits).
  while (s->stats().waiting != 1)
    std::this_thread::yield();
  CHECK(s->stats().readers == 100);
  CHECK_FALSE(granted);
  readers.front().close();
  t.join();
  CHECK(granted);
  st = s->stats();
  CHECK(st.waiting == 0);
}

TEST_CASE("chunks grow from 16 KiB (or less) to chunk_size") {
  using detail::chunk_sizer;
  auto sizes = [](const stream_options& opts, std::size_t hint,
                  std::vector<std::uint64_t> at) {
    chunk_sizer sizer{opts};
    std::vector<std::size_t> out;
    for (auto written : at) {
      out.push_back(sizer.next_size(written, hint));
      auto c = sizer.next(written, hint);
      CHECK(c->capacity() == out.back());
    }
    return out;
  };
  stream_options opts; // chunk_size 1 MiB
  CHECK(sizes(opts, 0, {0, 1, 2, 3, 4, 5})
        == std::vector<std::size_t>{16384, 65536, 262144, 1048576, 1048576,
                                    1048576});
  // A small first write starts smaller.
  CHECK(sizes(opts, 1, {0, 1, 2})
        == std::vector<std::size_t>{4096, 16384, 65536});
  CHECK(sizes(opts, 5000, {0, 1}) == std::vector<std::size_t>{16384, 65536});
  // A declared length caps every chunk at the step that holds the rest.
  stream_options declared;
  declared.declared_length = 100;
  CHECK(sizes(declared, 0, {0}) == std::vector<std::size_t>{4096});
  declared.declared_length = 100 * 1024;
  CHECK(sizes(declared, 0, {0, 16384, 81920})
        == std::vector<std::size_t>{16384, 65536, 65536}); // 20 KiB left
  // Small chunk sizes: never above chunk_size.
  stream_options small;
  small.chunk_size = 4096;
  CHECK(sizes(small, 0, {0, 4096, 8192})
        == std::vector<std::size_t>{4096, 4096, 4096});
  small.chunk_size = 100 * 1024; // not on the 4^k ladder: rounded to pages
  CHECK(sizes(small, 0, {0, 1, 2, 3})
        == std::vector<std::size_t>{16384, 65536, 102400, 102400});
  // A given pool keeps its fixed size.
  stream_options fixed;
  fixed.pool = chunk_pool::make(8192);
  CHECK(sizes(fixed, 1, {0, 1, 2}) == std::vector<std::size_t>{8192, 8192,
                                                               8192});
}

TEST_CASE_FIXTURE(system_fixture, "a big stream fills growing chunks, then "
                                  "full ones") {
  auto s = stream::make(sys, source::push());
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto data = pattern(3 << 20, 4);
  for (std::size_t i = 0; i < data.size(); i += 64 * 1024)
    REQUIRE_FALSE(w->write(data.data() + i, 64 * 1024));
  REQUIRE_FALSE(w->close());
  auto r = s->open_reader();
  REQUIRE(r);
  std::vector<std::size_t> capacities;
  std::string got;
  for (;;) {
    auto xs = r->read_slices(1 << 20);
    REQUIRE(xs);
    if (xs->empty())
      break;
    for (auto& x : *xs) {
      got.append(x.as_string_view());
      if (x.offset_in_chunk() == 0) // the first byte of a chunk
        capacities.push_back(x.owner()->capacity());
    }
  }
  CHECK(got == data);
  REQUIRE(capacities.size() >= 5);
  CHECK(capacities[0] == 16384);
  CHECK(capacities[1] == 65536);
  CHECK(capacities[2] == 262144);
  CHECK(capacities[3] == 1048576);
  CHECK(capacities.back() == 1048576);
}

TEST_CASE_FIXTURE(system_fixture, "a pulled source fills growing chunks") {
  auto data = pattern(2 << 20, 9);
  auto s = stream::make(sys, scripted(data, 64 * 1024));
  REQUIRE(s);
  auto r = s->open_reader();
  REQUIRE(r);
  std::vector<std::size_t> capacities;
  std::string got;
  for (;;) {
    auto xs = r->read_slices(1 << 20);
    REQUIRE(xs);
    if (xs->empty())
      break;
    for (auto& x : *xs) {
      got.append(x.as_string_view());
      if (x.offset_in_chunk() == 0)
        capacities.push_back(x.owner()->capacity());
    }
  }
  CHECK(got == data);
  REQUIRE(capacities.size() >= 4);
  CHECK(capacities[0] == 16384);
  CHECK(capacities[1] == 65536);
  CHECK(capacities[2] == 262144);
  CHECK(capacities[3] == 1048576);
}

} // TEST_SUITE
