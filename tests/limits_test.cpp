// Exact limits and deterministic answers with real threads (issue 9): a
// writer never takes a byte past its stream's limit and answers every call
// as stream_writer.hpp says whatever the timing; a pulled source is never
// asked for a byte past the limit; close() and status() agree; errors name
// what failed; sources close what they own on every path; a stream that
// outlives its actor system is reported and shut down, not hung on.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/detail/own_thread.hpp"
#include "asyncstream/stream_writer.hpp"
#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

/// Runs that a timing-dependent answer would fail at least once in
/// (before the fix, a write after a declared-length cut succeeded in 25 of
/// 30 runs).
constexpr int runs = 30;

std::size_t open_fds() {
  std::size_t n = 0;
  if (auto* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    ::closedir(d);
  }
  return n;
}

/// A read function that hands out `data` and records the furthest offset
/// it was ever asked to fill up to (its position plus the call's `max`).
struct witness {
  std::string data;
  std::size_t pos = 0;
  std::atomic<std::uint64_t> asked{0};
};

source witnessed(std::shared_ptr<witness> w, std::size_t step) {
  return source::from_function(
    [w, step](std::byte* buf, std::size_t max) -> read_outcome {
      if (w->pos + max > w->asked.load())
        w->asked = w->pos + max;
      auto n = std::min({max, step, w->data.size() - w->pos});
      std::memcpy(buf, w->data.data() + w->pos, n);
      w->pos += n;
      read_outcome res;
      res.size = n;
      res.eof = w->pos == w->data.size();
      return res;
    });
}

std::string read_everything(const stream& s, caf::error* err = nullptr) {
  auto r = s.open_reader();
  REQUIRE(r);
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = r->read(buf, sizeof(buf));
    if (!n) {
      if (err != nullptr)
        *err = n.error();
      return out;
    }
    if (*n == 0)
      return out;
    out.append(buf, *n);
  }
}

} // namespace

TEST_SUITE("limits") {
  TEST_CASE_FIXTURE(system_fixture,
                    "writer: a write crossing the declared length writes up to "
                    "it, and every later write is refused, in every run") {
    for (int i = 0; i < runs; ++i) {
      stream_options opts;
      opts.declared_length = 50;
      auto s = stream::make(sys, source::push(), opts);
      REQUIRE(s);
      auto w = s->writer();
      REQUIRE(w);
      auto data = pattern(101, i);
      auto err = w->write(data.data(), data.size());
      REQUIRE(is(err, errc::closed));
      CHECK(render(err).find("declared length 50") != std::string::npos);
      CHECK(w->written() == 50);
      // No waiting for the transfer actor: the answer is the writer's own.
      CHECK(is(w->write("x", 1), errc::closed));
      CHECK(
        is(w->write(std::make_shared<const std::string>("y")), errc::closed));
      CHECK(w->written() == 50);
      CHECK_FALSE(w->close()); // the stream is complete: a clean end
      CHECK_FALSE(w->close());
      auto len = s->wait();
      REQUIRE(len);
      CHECK(*len == 50);
      CHECK(read_everything(*s) == data.substr(0, 50));
    }
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "writer: a write ending exactly at the declared length "
                    "completes the stream") {
    for (int i = 0; i < runs; ++i) {
      stream_options opts;
      opts.declared_length = 10;
      auto s = stream::make(sys, source::push(), opts);
      REQUIRE(s);
      auto w = s->writer();
      REQUIRE(w);
      REQUIRE_FALSE(w->write("0123456789", 10));
      CHECK(is(w->write("x", 1), errc::closed));
      CHECK_FALSE(w->close());
      auto len = s->wait();
      REQUIRE(len);
      CHECK(*len == 10);
    }
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "writer: a write crossing the capacity writes up to it and "
                    "returns buffer_full; later writes are refused") {
    for (int i = 0; i < runs; ++i) {
      stream_options opts;
      opts.capacity = 4;
      auto s = stream::make(sys, source::push(), opts);
      REQUIRE(s);
      auto w = s->writer();
      REQUIRE(w);
      auto err = w->write("abcdef", 6);
      REQUIRE(is(err, errc::buffer_full));
      CHECK(render(err).find("4 of 6 bytes written") != std::string::npos);
      CHECK(w->written() == 4);
      CHECK(is(w->write("g", 1), errc::closed));
      CHECK(is(w->close(), errc::buffer_full)); // how the stream ended
      CHECK(is(w->close_with_error(make_error(errc::io_error)), errc::closed));
      caf::error rerr;
      CHECK(read_everything(*s, &rerr) == "abcd");
      CHECK(is(rerr, errc::buffer_full));
    }
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "writer: filling the capacity exactly, then closing, ends "
                    "cleanly") {
    stream_options opts;
    opts.capacity = 4;
    auto s = stream::make(sys, source::push(), opts);
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(w->write("abcd", 4));
    CHECK_FALSE(w->close());
    auto len = s->wait();
    REQUIRE(len);
    CHECK(*len == 4);
    // A zero-byte write after the capacity filled changes nothing.
    stream_options again = opts;
    auto t = stream::make(sys, source::push(), again);
    REQUIRE(t);
    auto v = t->writer();
    REQUIRE(v);
    REQUIRE_FALSE(v->write("abcd", 4));
    CHECK_FALSE(v->write("", 0));
    CHECK_FALSE(v->write(slice{}));
    CHECK(is(v->write("e", 1), errc::buffer_full));
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "writer: after abort every call says canceled, in every "
                    "run") {
    for (int i = 0; i < runs; ++i) {
      auto s = stream::make(sys, source::push());
      REQUIRE(s);
      auto w = s->writer();
      REQUIRE(w);
      REQUIRE_FALSE(w->write("ab", 2));
      s->abort();
      auto err = w->write("c", 1);
      REQUIRE(is(err, errc::canceled));
      CHECK(render(err).find("stream aborted") != std::string::npos);
      CHECK(render(err).find("read canceled") == std::string::npos);
      CHECK(is(w->close(), errc::canceled));
      CHECK(
        is(w->close_with_error(make_error(errc::io_error)), errc::canceled));
      CHECK(w->written() == 2);
    }
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "writer: close is idempotent and reports how the stream "
                    "ended") {
    auto s = stream::make(sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(w->close());
    CHECK_FALSE(w->close()); // ended cleanly: none again
    auto err = w->write("x", 1);
    CHECK(is(err, errc::closed));
    CHECK(render(err).find("write after close") != std::string::npos);
    CHECK(is(w->close_with_error(make_error(errc::io_error)), errc::closed));
    // After close_with_error, close() returns that error.
    auto t = stream::make(sys, source::push());
    REQUIRE(t);
    auto v = t->writer();
    REQUIRE(v);
    REQUIRE_FALSE(v->close_with_error(make_error(errc::io_error, "upstream")));
    CHECK(is(v->close(), errc::io_error));
    CHECK(is(v->write("x", 1), errc::closed));
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "writer: a stream closed by its owner refuses writes with "
                    "closed") {
    auto s = stream::make(sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    REQUIRE_FALSE(w->write("abc", 3));
    auto closed = s->close(); // no reader open: returns at once
    CHECK(is(closed, errc::closed));
    CHECK(is(w->write("d", 1), errc::closed));
    CHECK(is(w->close(), errc::closed));
    CHECK(w->written() == 3);
  }

  TEST_CASE_FIXTURE(system_fixture, "writer: a moved-from writer answers "
                                    "invalid_argument") {
    auto s = stream::make(sys, source::push());
    REQUIRE(s);
    auto w = s->writer();
    REQUIRE(w);
    auto moved = std::move(*w);
    CHECK(is(w->write("x", 1), errc::invalid_argument));
    CHECK(is(w->write(slice{}), errc::invalid_argument));
    CHECK(is(w->close(), errc::invalid_argument));
    CHECK(is(w->close_with_error(make_error(errc::io_error)),
             errc::invalid_argument));
    CHECK(w->written() == 0);
    REQUIRE_FALSE(moved.write("x", 1));
    REQUIRE_FALSE(moved.close());
    CHECK(read_everything(*s) == "x");
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "a pulled source is never read past the declared length: "
                    "a pipe keeps the rest") {
    live_pipe p;
    stream_options opts;
    opts.declared_length = 8;
    // Not owned: the test reads the rest of the pipe afterwards.
    auto s = stream::make(sys, source::from_fd(p.reader_fd(), false), opts);
    REQUIRE(s);
    p.write("0123456789");
    auto len = s->wait();
    REQUIRE(len);
    CHECK(*len == 8);
    CHECK(read_everything(*s) == "01234567");
    char rest[16];
    auto n = ::read(p.reader_fd(), rest, sizeof(rest));
    REQUIRE(n == 2);
    CHECK(std::string(rest, 2) == "89"); // the next reader's bytes
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "a pulled source is never asked for more than the declared "
                    "length or the capacity") {
    for (int i = 0; i < runs; ++i) {
      auto w = std::make_shared<witness>();
      w->data = pattern(1000, i);
      stream_options opts;
      opts.declared_length = 300;
      auto s = stream::make(sys, witnessed(w, 64), opts);
      REQUIRE(s);
      auto len = s->wait();
      REQUIRE(len);
      CHECK(*len == 300);
      CHECK(w->asked.load() == 300); // asked for exactly the declared bytes
      CHECK(read_everything(*s) == w->data.substr(0, 300));
    }
    for (int i = 0; i < runs; ++i) {
      auto w = std::make_shared<witness>();
      w->data = pattern(1000, i);
      stream_options opts;
      opts.capacity = 300;
      auto s = stream::make(sys, witnessed(w, 64), opts);
      REQUIRE(s);
      auto len = s->wait();
      REQUIRE_FALSE(len);
      CHECK(is(len.error(), errc::buffer_full));
      CHECK(w->asked.load() == 300);
      caf::error err;
      CHECK(read_everything(*s, &err) == w->data.substr(0, 300));
      CHECK(is(err, errc::buffer_full));
    }
    // A source that ends with its last byte exactly at the capacity ends
    // cleanly (it said so together with the bytes).
    auto w = std::make_shared<witness>();
    w->data = pattern(300, 1);
    stream_options opts;
    opts.capacity = 300;
    auto s = stream::make(sys, witnessed(w, 1000), opts);
    REQUIRE(s);
    auto len = s->wait();
    REQUIRE(len);
    CHECK(*len == 300);
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "close() of a live stream returns what status() says "
                    "afterwards") {
    live_pipe p;
    auto s = stream::make(sys, source::from_fd(p.reader_fd(), true));
    REQUIRE(s);
    p.write("abc");
    auto r = s->open_reader();
    REQUIRE(r);
    char buf[3];
    REQUIRE(r->read_exact(buf, 3));
    r->close();
    auto closed = s->close();
    CHECK(is(closed, errc::closed));
    auto st = s->status();
    REQUIRE(st);
    CHECK(st->final);
    CHECK(is(st->error, errc::closed));
    CHECK(is(s->close(), errc::closed)); // the same again
    CHECK(is(s->stats().error, errc::closed));
    // A stream that ended by itself closes with its own (clean) status.
    auto done = stream::make(sys, source::from_bytes(std::string("x")));
    REQUIRE(done);
    CHECK_FALSE(done->close());
    auto dst = done->status();
    REQUIRE(dst);
    CHECK_FALSE(dst->error);
  }

  TEST_CASE_FIXTURE(system_fixture, "errors name what failed") {
    stream_options opts;
    opts.file = file_storage{};
    opts.file->path = "/nonexistent-dir/asyncstream/x.stream";
    auto s = stream::make(sys, source::push(), opts);
    REQUIRE_FALSE(s);
    CHECK(is(s.error(), errc::io_error));
    auto text = render(s.error());
    MESSAGE(text);
    CHECK(text.find("creating the stream file /nonexistent-dir")
          != std::string::npos);
    CHECK(text.find("reading the source") == std::string::npos);
    if (::access("/dev/full", W_OK) == 0) {
      stream_options full;
      full.file = file_storage{};
      full.file->path = "/dev/full";
      auto f = stream::make(sys, source::push(), full);
      REQUIRE(f);
      auto w = f->writer();
      REQUIRE(w);
      auto err = w->write("abc", 3);
      REQUIRE(is(err, errc::io_error));
      MESSAGE(render(err));
      CHECK(render(err).find("writing the stream file at offset 0")
            != std::string::npos);
    }
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "sources close the descriptors they own on every path") {
    char name[] = "/tmp/asyncstream-limits-XXXXXX";
    int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "a file\n", 7) == 7);
    ::close(fd);
    auto before = open_fds();
    stream_options bad_file;
    bad_file.file = file_storage{};
    bad_file.file->path = "/nonexistent-dir/asyncstream/x.stream";
    for (int i = 0; i < 100; ++i) {
      // make fails creating the stream file.
      auto src = source::from_path(name);
      REQUIRE(src);
      auto s = stream::make(sys, std::move(*src), bad_file);
      REQUIRE_FALSE(s);
    }
    CHECK(open_fds() == before);
    for (int i = 0; i < 100; ++i) {
      // make fails creating the source reader's thread.
      auto src = source::from_path(name);
      REQUIRE(src);
      detail::fail_thread_creation(0, 1);
      auto s = stream::make(sys, std::move(*src));
      REQUIRE_FALSE(s);
    }
    detail::fail_thread_creation(0, 0);
    CHECK(open_fds() == before);
    {
      // A system of its own: its destructor waits for the source readers'
      // threads, which close their files as they end.
      caf::actor_system_config cfg;
      system_fixture::prepare(cfg);
      caf::actor_system local{cfg};
      for (int i = 0; i < 100; ++i) {
        // Read to the end, and dropped unread (stopped while it reads).
        auto src = source::from_path(name);
        REQUIRE(src);
        auto s = stream::make(local, std::move(*src));
        REQUIRE(s);
        if (i % 2 == 0)
          CHECK(read_everything(*s) == "a file\n");
      }
    }
    CHECK(open_fds() == before);
    // A source never given to a stream closes its file when it goes.
    {
      auto src = source::from_path(name);
      REQUIRE(src);
      CHECK(open_fds() == before + 1);
    }
    CHECK(open_fds() == before);
    ::unlink(name);
  }

  TEST_CASE("a stream that outlives its actor system is reported and shut "
            "down, not hung on") {
    // In a child process: what this guards against is a hang at exit. The
    // parent reads the child's stderr until it closes, at most 60 s.
    int err_pipe[2];
    REQUIRE(::pipe(err_pipe) == 0);
    auto pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(err_pipe[1], 2);
      ::close(err_pipe[0]);
      ::close(err_pipe[1]);
      int code = 0;
      {
        // Declared before the system: destroyed after it (the misuse).
        stream pushed;
        stream pulled;
        stream scheduled;
        std::optional<stream_writer> writer;
        std::optional<stream_writer> idle_writer;
        live_pipe p;
        {
          caf::actor_system_config cfg;
          system_fixture::prepare(cfg);
          caf::actor_system sys{cfg};
          auto a = stream::make(sys, source::push());
          auto b = stream::make(sys, source::from_fd(p.reader_fd()));
          stream_options on_scheduler;
          on_scheduler.transfer_thread = false;
          auto c = stream::make(sys, source::push(), on_scheduler);
          if (!a || !b || !c)
            ::_exit(2);
          pushed = std::move(*a);
          pulled = std::move(*b); // its reader waits in poll(2)
          scheduled = std::move(*c);
          writer.emplace(std::move(*pushed.writer()));
          idle_writer.emplace(std::move(*scheduled.writer()));
          if (writer->write("abc", 3))
            ::_exit(3);
        } // ~actor_system: must return
        // From now on every call fails with stream_gone; nothing crashes.
        auto st = pushed.status();
        auto reader = pushed.open_reader();
        if (!is(writer->write("d", 1), errc::stream_gone))
          code = 4;
        else if (st || !is(st.error(), errc::stream_gone))
          code = 5;
        else if (!is(pushed.close(), errc::stream_gone))
          code = 6;
        else if (reader || !is(reader.error(), errc::stream_gone))
          code = 7;
        pulled.abort();   // a no-op now
        pushed.release(); // a no-op now
        writer.reset();   // no unexpected_end sent to a gone actor
      }                   // the streams go after their system
      std::fprintf(stderr, "child done\n");
      ::_exit(code);
    }
    ::close(err_pipe[1]);
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool eof = false;
    while (!eof) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0)
        break;
      pollfd pfd{err_pipe[0], POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left)) <= 0)
        continue;
      char buf[512];
      auto n = ::read(err_pipe[0], buf, sizeof(buf));
      if (n <= 0)
        eof = true;
      else
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(err_pipe[0]);
    if (!eof)
      ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    MESSAGE("child stderr: " << text);
    REQUIRE_MESSAGE(eof, "the child hung at its actor system's end");
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(text.find("child done") != std::string::npos);
    auto first = text.find("outlive their caf::actor_system");
    REQUIRE(first != std::string::npos); // reported, with what to do
    CHECK(text.find("destroy every stream") != std::string::npos);
    CHECK(text.find("outlive their", first + 1) == std::string::npos); // once
  }

} // TEST_SUITE
