// The child roles of the remote tests. Each prints its findings as lines
// the test reads (`READY`, `RESULT ...`, `PORT n`), then exits or waits
// for its standard input to end.
#include "roles.hpp"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include <future>

#include <caf/event_based_actor.hpp>

#include "asyncstream/async_reader.hpp"
#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/remote_protocol.hpp"
#include "asyncstream/stream_writer.hpp"

namespace asyncstream::test {

namespace {

std::string name_of(const caf::error& err) {
  if (!err)
    return "none";
  if (err.category() == error_category)
    return to_string(static_cast<errc>(err.code()));
  return "caf";
}

void say(const std::string& line) {
  std::cout << line << std::endl;
}

/// Blocks until the test closes our standard input (or kills us).
void wait_for_stdin_end() {
  std::string line;
  while (std::getline(std::cin, line)) {
    // nop
  }
}

caf::expected<stream> open_remote(caf::actor_system& sys, char** argv,
                                  std::uint64_t window = 8u << 20) {
  remote::open_options opts;
  opts.window = window;
  return remote::open(sys, argv[2],
                      static_cast<std::uint16_t>(std::stoul(argv[3])), argv[4],
                      opts);
}

/// --read HOST PORT NAME WINDOW: reads to the end (or an error); says
/// STARTED after its first bytes.
int read_all(caf::actor_system& sys, char** argv) {
  auto s = open_remote(sys, argv, std::stoull(argv[5]));
  if (!s) {
    say("RESULT bytes=0 hash=0 error=" + name_of(s.error()));
    return 0;
  }
  auto r = s->open_reader();
  if (!r) {
    say("RESULT bytes=0 hash=0 error=" + name_of(r.error()));
    return 0;
  }
  std::vector<std::byte> buf(256 << 10);
  std::uint64_t total = 0;
  std::uint64_t h = 1469598103934665603ull;
  caf::error err;
  for (;;) {
    auto n = r->read(buf.data(), buf.size());
    if (!n) {
      err = std::move(n.error());
      break;
    }
    if (*n == 0)
      break;
    if (total == 0)
      say("STARTED");
    h = fnv(buf.data(), *n, h);
    total += *n;
  }
  say("RESULT bytes=" + std::to_string(total) + " hash=" + std::to_string(h)
      + " error=" + name_of(err));
  return 0;
}

/// --async-read HOST PORT NAME: reads to the end from inside an actor
/// (async_reader::read_to_end).
int async_read_all(caf::actor_system& sys, char** argv) {
  auto s = open_remote(sys, argv);
  if (!s) {
    say("RESULT bytes=0 hash=0 error=" + name_of(s.error()));
    return 0;
  }
  std::promise<std::string> done;
  auto fut = done.get_future();
  sys.spawn([&done, str = *s](caf::event_based_actor* self) {
    async_reader::open(self, str, [&done](auto r) {
      if (!r) {
        done.set_value("bytes=0 hash=0 error=" + name_of(r.error()));
        return;
      }
      struct tally {
        std::uint64_t bytes = 0;
        std::uint64_t hash = 1469598103934665603ull;
      };
      auto t = std::make_shared<tally>();
      r->read_to_end(
        0,
        [t](std::vector<slice>& xs) {
          for (auto& x : xs) {
            t->hash = fnv(x.data(), x.size(), t->hash);
            t->bytes += x.size();
          }
        },
        [t, &done](caf::error err) {
          done.set_value("bytes=" + std::to_string(t->bytes) + " hash="
                         + std::to_string(t->hash) + " error=" + name_of(err));
        });
    });
  });
  say("RESULT " + fut.get());
  return 0;
}

/// --hold HOST PORT NAME: reads one byte, says READY, then waits.
int hold(caf::actor_system& sys, char** argv) {
  auto s = open_remote(sys, argv, 64u << 10);
  if (!s) {
    say("FAILED " + name_of(s.error()));
    return 1;
  }
  auto r = s->open_reader();
  if (!r) {
    say("FAILED " + name_of(r.error()));
    return 1;
  }
  std::byte b;
  auto n = r->read(&b, 1);
  say(n ? "READY" : "FAILED " + name_of(n.error()));
  wait_for_stdin_end();
  return 0;
}

/// --cap HOST PORT NAME: the stream's cap is 1; a second reader waits.
int cap(caf::actor_system& sys, char** argv) {
  auto s = open_remote(sys, argv);
  if (!s) {
    say("FAILED " + name_of(s.error()));
    return 1;
  }
  auto r1 = s->open_reader();
  say("FIRST " + (r1 ? std::string{"ok"} : name_of(r1.error())));
  auto r2 = s->open_reader(std::chrono::milliseconds{300});
  say("SECOND " + (r2 ? std::string{"ok"} : name_of(r2.error())));
  if (r1)
    r1->close();
  auto r3 = s->open_reader(std::chrono::seconds{20});
  say("THIRD " + (r3 ? std::string{"ok"} : name_of(r3.error())));
  return 0;
}

/// --positional HOST PORT NAME: read_at, wait_for, seek, skip back.
int positional(caf::actor_system& sys, char** argv) {
  auto s = open_remote(sys, argv, 64u << 10);
  if (!s) {
    say("POSITIONAL " + name_of(s.error()));
    return 1;
  }
  auto r = s->open_reader();
  if (!r) {
    say("POSITIONAL " + name_of(r.error()));
    return 1;
  }
  std::vector<std::byte> buf(1000);
  auto n = r->read_at(buf.data(), buf.size(), 5000);
  if (!n || *n != buf.size() || buf != pattern(5000, buf.size())) {
    say("POSITIONAL read_at");
    return 1;
  }
  if (r->position() != 0) {
    say("POSITIONAL read_at moved the position");
    return 1;
  }
  auto there = r->wait_for(200000);
  if (!there || !*there) {
    say("POSITIONAL wait_for");
    return 1;
  }
  // Forward past the window, then back: both reposition the session.
  for (std::uint64_t at : {150000ull, 2000ull}) {
    if (!r->seek(static_cast<std::int64_t>(at), whence::start)) {
      say("POSITIONAL seek");
      return 1;
    }
    auto k = r->read_exact(buf.data(), 100);
    if (!k || *k != 100
        || !std::equal(buf.begin(), buf.begin() + 100,
                       pattern(at, 100).begin())) {
      say("POSITIONAL read after seek to " + std::to_string(at));
      return 1;
    }
  }
  say("POSITIONAL ok");
  return 0;
}

/// --seek-far HOST PORT NAME: seeks to the largest offset and reads.
int seek_far(caf::actor_system& sys, char** argv) {
  auto s = open_remote(sys, argv);
  auto r = s ? s->open_reader() : caf::expected<blocking_reader>{s.error()};
  if (!r) {
    say("FAR " + name_of(r.error()));
    return 1;
  }
  auto far = std::numeric_limits<std::int64_t>::max();
  if (!r->seek(far, whence::start)) {
    say("FAR seek failed");
    return 1;
  }
  std::byte b;
  auto n = r->read(&b, 1);
  say("FAR " + (n ? std::to_string(*n) : name_of(n.error())));
  return 0;
}

/// --raw-seek HOST PORT NAME: a client of its own (no proxy) opens a
/// session and sends a seek near 2^64, as a hostile peer could; the
/// session must answer with the stream's end, not go silent.
int raw_seek(caf::actor_system& sys, char** argv) {
  auto dir = sys.middleman().remote_actor<remote::directory_actor>(
    argv[2], static_cast<std::uint16_t>(std::stoul(argv[3])));
  if (!dir) {
    say("RAWSEEK unreachable");
    return 1;
  }
  caf::scoped_actor self{sys};
  remote::open_request req;
  req.name = argv[4];
  req.window = 1 << 20;
  remote::session_actor session;
  self->request(*dir, std::chrono::seconds{20}, open_atom::value, req)
    .receive([&](remote::open_reply& rep) { session = rep.session; },
             [&](caf::error&) {});
  if (!session) {
    say("RAWSEEK no session");
    return 1;
  }
  auto far = std::numeric_limits<std::uint64_t>::max() - 10;
  self->send(session, remote::seek_atom::value, std::uint64_t{2}, far,
             std::numeric_limits<std::uint64_t>::max());
  // Chunks of generation 1 (the open's) may come first; wait for ours.
  std::string res = "silent";
  for (int i = 0; i < 100 && res == "silent"; ++i) {
    bool got = false;
    self->receive(
      [&](remote::remote_chunk& c) {
        got = true;
        if (c.generation == 2)
          res = c.end ? "end" : "bytes";
      },
      caf::after(std::chrono::seconds{20}) >> [&] { i = 100; });
    (void) got;
  }
  say("RAWSEEK " + res);
  return 0;
}

/// --serve BYTES: publishes stream "live" (BYTES written, not ended),
/// says PORT, waits for its standard input to end.
int serve(caf::actor_system& sys, char** argv) {
  auto bytes = std::stoull(argv[2]);
  auto s = stream::make(sys, source::push());
  auto w = s ? s->writer() : caf::expected<stream_writer>{s.error()};
  auto pub = remote::publisher::publish(sys, 0);
  if (!s || !w || !pub || pub->add("live", *s)) {
    say("FAILED");
    return 1;
  }
  auto data = pattern(0, static_cast<std::size_t>(bytes));
  if (w->write(data.data(), data.size())) {
    say("FAILED");
    return 1;
  }
  say("PORT " + std::to_string(pub->port()));
  wait_for_stdin_end();
  return 0;
}

/// --raw-open HOST PORT NAME: an open of protocol version 99.
int raw_open(caf::actor_system& sys, char** argv) {
  auto dir = sys.middleman().remote_actor<remote::directory_actor>(
    argv[2], static_cast<std::uint16_t>(std::stoul(argv[3])));
  if (!dir) {
    say("RAW unreachable");
    return 1;
  }
  remote::open_request req;
  req.version = 99;
  req.name = argv[4];
  req.window = 1 << 20;
  caf::scoped_actor self{sys};
  std::string res = "none";
  self->request(*dir, std::chrono::seconds{20}, open_atom::value, req)
    .receive([&](remote::open_reply&) { res = "opened"; },
             [&](caf::error& err) { res = name_of(err); });
  say("RAW " + res);
  return 0;
}

} // namespace

int run_role(int argc, char** argv) {
  remote_config cfg;
  caf::actor_system sys{cfg};
  std::string role = argv[1];
  if (role == "--read" && argc == 6)
    return read_all(sys, argv);
  if (role == "--async-read" && argc == 5)
    return async_read_all(sys, argv);
  if (role == "--hold" && argc == 5)
    return hold(sys, argv);
  if (role == "--cap" && argc == 5)
    return cap(sys, argv);
  if (role == "--positional" && argc == 5)
    return positional(sys, argv);
  if (role == "--raw-seek" && argc == 5)
    return raw_seek(sys, argv);
  if (role == "--seek-far" && argc == 5)
    return seek_far(sys, argv);
  if (role == "--serve" && argc == 3)
    return serve(sys, argv);
  if (role == "--raw-open" && argc == 5)
    return raw_open(sys, argv);
  std::fprintf(stderr, "unknown role %s\n", argv[1]);
  return 2;
}

} // namespace asyncstream::test
