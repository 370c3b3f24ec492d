// File-backed storage: the body lives in a stream file, memory holds only the
// newest bytes; remove(), shutdown(err) and re-opening a stream file.
#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/stream_writer.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

/// A private directory for one test's stream files, deleted afterwards.
struct temp_dir {
  std::string path;

  temp_dir() {
    auto* env = std::getenv("TMPDIR");
    std::string tmpl = std::string{env != nullptr && *env ? env : "/tmp"}
                       + "/asyncstream-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp");
    path = tmpl;
  }

  ~temp_dir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0)
      MESSAGE("could not delete " << path);
  }

  std::string file(const std::string& name) const {
    return path + "/" + name;
  }
};

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::size_t entries(const std::string& dir) {
  std::size_t n = 0;
  if (auto* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d))
      if (std::string{e->d_name} != "." && std::string{e->d_name} != "..")
        ++n;
    ::closedir(d);
  }
  return n;
}

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// Small chunks, a small memory cache and small windows, so that a few MiB
/// exercise every path: memory, file, window borders.
stream_options small_file_options(std::string path,
                                  std::shared_ptr<chunk_pool> pool = nullptr) {
  stream_options opts;
  opts.chunk_size = 64 * 1024;
  opts.pool = std::move(pool);
  file_storage fs;
  fs.path = std::move(path);
  fs.memory_cache = 128 * 1024;
  fs.map_window = 64 * 1024;
  fs.cached_windows = 2;
  opts.file = fs;
  return opts;
}

void write_all(stream_writer& w, const std::string& data, std::size_t step) {
  for (std::size_t i = 0; i < data.size(); i += step)
    REQUIRE_FALSE(
      w.write(data.data() + i, std::min(step, data.size() - i)));
}

} // namespace

TEST_SUITE("file") {

TEST_CASE_FIXTURE(system_fixture,
                  "a stream far larger than the memory cache is read back "
                  "from its file, with memory bounded by the cache") {
  temp_dir dir;
  auto pool = chunk_pool::make(64 * 1024);
  auto path = dir.file("big.stream");
  auto s = stream::make(sys, source::push(), small_file_options(path, pool));
  REQUIRE(s);
  CHECK(s->file_path() == path);
  auto w = s->writer();
  REQUIRE(w);
  auto data = pattern(8 * 1024 * 1024, 5);
  write_all(*w, data, 10007);
  REQUIRE_FALSE(w->close());
  auto len = s->wait();
  REQUIRE(len);
  CHECK(*len == data.size());
  // Memory holds the cache (128 KiB in 64 KiB chunks) plus the chunk a
  // partial cut leaves, not the 8 MiB written.
  CHECK(pool->stats().in_use <= 3);
  CHECK(pool->stats().acquired == data.size() / (64 * 1024));
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r, 50000);
  REQUIRE(got);
  CHECK(*got == data);
  CHECK(slurp(path) == data);
  // The descriptor serves the published bytes at their offsets (sendfile).
  REQUIRE(s->file_descriptor() >= 0);
  std::string via_fd(4096, '\0');
  REQUIRE(::pread(s->file_descriptor(), via_fd.data(), via_fd.size(), 12345)
          == 4096);
  CHECK(via_fd == data.substr(12345, 4096));
  // A read across the border of the memory cache: file, then memory.
  auto border = data.size() - 128 * 1024;
  REQUIRE(r->seek(static_cast<std::int64_t>(border - 1000), whence::start));
  std::string buf(3000, '\0');
  auto n = r->read_exact(buf.data(), buf.size());
  REQUIRE(n);
  CHECK(buf == data.substr(border - 1000, 3000));
}

TEST_CASE_FIXTURE(system_fixture,
                  "readers at the live edge and far behind get every byte "
                  "of a pulled file-backed stream") {
  temp_dir dir;
  live_pipe pipe;
  auto s = stream::make(sys, source::from_fd(pipe.reader_fd()),
                        small_file_options(dir.file("live.stream")));
  REQUIRE(s);
  auto data = pattern(4 * 1024 * 1024, 9);
  constexpr int readers = 10;
  std::vector<std::string> got(readers);
  std::vector<caf::error> errs(readers);
  std::vector<std::thread> threads;
  for (int i = 0; i < readers; ++i) {
    threads.emplace_back([&, i] {
      auto r = s->open_reader();
      if (!r) {
        errs[i] = r.error();
        return;
      }
      auto all = read_all(*r, 1000 + 4000 * i);
      if (all)
        got[i] = std::move(*all);
      else
        errs[i] = all.error();
    });
    // Half of the readers join late, when the start is only in the file.
    if (i == readers / 2)
      pipe.write(std::string_view{data}.substr(0, data.size() / 2));
  }
  pipe.write(std::string_view{data}.substr(data.size() / 2));
  pipe.close_writer();
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < readers; ++i) {
    CAPTURE(i);
    CHECK_FALSE(errs[i]);
    CHECK(got[i].size() == data.size());
    CHECK(got[i] == data);
  }
  auto late = s->open_reader();
  REQUIRE(late);
  auto all = read_all(*late, 1 << 20);
  REQUIRE(all);
  CHECK(*all == data);
}

TEST_CASE_FIXTURE(system_fixture,
                  "an unnamed temporary file serves the stream and has no "
                  "path") {
  temp_dir dir;
  stream_options opts;
  file_storage fs;
  fs.directory = dir.path;
  fs.memory_cache = 0; // every read goes to the file
  opts.file = fs;
  auto data = pattern(3 * 1024 * 1024 + 17, 2);
  auto s = stream::make(sys, scripted(data, 70000), opts);
  REQUIRE(s);
  CHECK(s->file_path().empty());
  CHECK(s->file_descriptor() >= 0); // unnamed, but a file all the same
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r, 1 << 20);
  REQUIRE(got);
  CHECK(*got == data);
  // Nothing was left in the directory.
  CHECK(entries(dir.path) == 0);
  r->close();
  CHECK_FALSE(s->remove()); // nothing to delete: fine
}

TEST_CASE_FIXTURE(system_fixture,
                  "a complete buffer is written to the stream file") {
  temp_dir dir;
  auto path = dir.file("buffer.stream");
  auto data = pattern(300000, 4);
  auto s = stream::make(sys, source::from_bytes(data), small_file_options(path));
  REQUIRE(s);
  CHECK(slurp(path) == data);
  auto r = s->open_reader();
  REQUIRE(r);
  auto got = read_all(*r);
  REQUIRE(got);
  CHECK(*got == data);
}

TEST_CASE_FIXTURE(system_fixture,
                  "remove() refuses new readers with removing, lets open "
                  "ones read on, returns when they closed, then deletes the "
                  "file") {
  temp_dir dir;
  auto path = dir.file("removed.stream");
  auto s = stream::make(sys, source::push(), small_file_options(path));
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto data = pattern(1024 * 1024, 6);
  write_all(*w, data, 65536);
  REQUIRE_FALSE(w->close());
  auto r = s->open_reader();
  REQUIRE(r);
  // Slices of the file taken before the removal stay valid after it.
  auto held = r->read_slices(200000);
  REQUIRE(held);
  REQUIRE(r->seek(0, whence::start));
  caf::error removed = make_error(errc::invalid_argument, "not run");
  std::thread remover{[&] { removed = s->remove(); }};
  // While `r` is open the file cannot be gone, whenever remove() started.
  auto got = read_all(*r, 30000);
  REQUIRE(got);
  CHECK(*got == data);
  CHECK(exists(path));
  r->close();
  remover.join();
  CHECK_FALSE(removed);
  CHECK_FALSE(exists(path));
  auto refused = s->open_reader();
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), errc::removing));
  std::string first;
  for (auto& x : *held)
    first.append(x.as_string_view());
  CHECK(first == data.substr(0, first.size()));
  CHECK(first.size() > 0);
  CHECK_FALSE(s->remove()); // idempotent
}

TEST_CASE_FIXTURE(system_fixture,
                  "shutdown(err) refuses new readers with err and keeps "
                  "the file, which re-opens as a complete stream") {
  temp_dir dir;
  auto path = dir.file("kept.stream");
  auto data = pattern(700000, 8);
  {
    auto s = stream::make(sys, source::push(), small_file_options(path));
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    write_all(*w, data, 4096);
    REQUIRE_FALSE(w->close());
    auto r = s->open_reader();
    REQUIRE(r);
    caf::error down = make_error(errc::invalid_argument, "not run");
    std::thread closer{
      [&] { down = s->shutdown(make_error(errc::closed, "maintenance")); }};
    auto got = read_all(*r, 30000); // an open reader reads on
    REQUIRE(got);
    CHECK(*got == data);
    r->close();
    closer.join();
    CHECK_FALSE(down); // the stream itself ended cleanly
    auto refused = s->open_reader();
    REQUIRE_FALSE(refused);
    CHECK(is(refused.error(), errc::closed));
    CHECK(render(refused.error()).find("maintenance") != std::string::npos);
  }
  REQUIRE(exists(path));
  auto again = stream::reopen(sys, path);
  REQUIRE(again);
  auto st = again->status();
  REQUIRE(st);
  CHECK(st->final);
  CHECK(st->size == data.size());
  CHECK_FALSE(again->writer());
  auto r = again->open_reader();
  REQUIRE(r);
  // The end is known at once: an end-relative seek does not wait.
  auto pos = r->seek(-1000, whence::end);
  REQUIRE(pos);
  CHECK(*pos == data.size() - 1000);
  REQUIRE(r->seek(0, whence::start));
  auto got = read_all(*r, 100000);
  REQUIRE(got);
  CHECK(*got == data);
  auto missing = stream::reopen(sys, dir.file("nope.stream"));
  REQUIRE_FALSE(missing);
  CHECK(is(missing.error(), errc::io_error));
}

TEST_CASE_FIXTURE(system_fixture,
                  "a stream file that cannot be created or written fails "
                  "clearly") {
  SUBCASE("no such directory") {
    auto s = stream::make(sys, source::push(),
                          small_file_options("/nonexistent-dir/x.stream"));
    REQUIRE_FALSE(s);
    CHECK(is(s.error(), errc::io_error));
    CHECK(render(s.error()).find("/nonexistent-dir/x.stream")
          != std::string::npos);
  }
  SUBCASE("a full disk fails the writer and its readers at that byte") {
    REQUIRE(exists("/dev/full"));
    auto s = stream::make(sys, source::push(), small_file_options("/dev/full"));
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    auto err = w->write("abc", 3);
    CHECK(is(err, errc::io_error));
    CHECK(is(w->write("d", 1), errc::io_error)); // and every later write
    auto r = s->open_reader();
    REQUIRE(r);
    char buf[4];
    auto n = r->read(buf, sizeof(buf));
    REQUIRE_FALSE(n);
    CHECK(is(n.error(), errc::io_error));
  }
  SUBCASE("a full disk fails a pulled source at that byte") {
    auto s = stream::make(sys, scripted("abcdef", 2),
                          small_file_options("/dev/full"));
    REQUIRE(s);
    auto r = s->open_reader();
    REQUIRE(r);
    char buf[4];
    auto n = r->read(buf, sizeof(buf));
    REQUIRE_FALSE(n);
    CHECK(is(n.error(), errc::io_error));
    auto len = s->wait();
    REQUIRE_FALSE(len);
    CHECK(is(len.error(), errc::io_error));
  }
}

TEST_CASE_FIXTURE(system_fixture,
                  "a retention window on a file-backed stream keeps "
                  "absolute offsets and reports data loss") {
  temp_dir dir;
  auto opts = small_file_options(dir.file("window.stream"));
  opts.retention = 256 * 1024;
  auto s = stream::make(sys, source::push(), opts);
  REQUIRE(s);
  auto w = s->writer();
  REQUIRE(w);
  auto data = pattern(1024 * 1024, 1);
  write_all(*w, data, 65536);
  REQUIRE_FALSE(w->close());
  REQUIRE(s->wait());
  auto oldest = data.size() - 256 * 1024;
  auto r = s->open_reader();
  REQUIRE(r);
  // Below the window: data loss. At its start: the bytes (from the file,
  // since the memory cache holds only the newest 128 KiB).
  char c;
  auto lost = r->read(&c, 1);
  REQUIRE_FALSE(lost);
  CHECK(is(lost.error(), errc::data_loss));
  REQUIRE(r->seek(static_cast<std::int64_t>(oldest), whence::start));
  auto got = read_all(*r, 10000);
  REQUIRE(got);
  CHECK(*got == data.substr(oldest));
}

} // TEST_SUITE
