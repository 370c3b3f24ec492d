// asyncstream-remote-bench: a remote reader's throughput over loopback
// against the middleman's raw request/response throughput with the same
// payloads, side by side in one run (docs/benchmarks.md, "Remote readers").
//
// The parent forks a serving child (this binary with --serve): it publishes
// a complete stream of --bytes bytes and a raw actor that answers
// (read_atom, offset, max) with a remote_chunk of the same bytes (slices of
// the same memory, no stream in between). The parent then reads the whole
// stream through `remote::open` + `read_slices` (zero-copy on its side),
// and fetches the same bytes from the raw actor with as many requests of
// --payload bytes in flight as fit the same window. Medians over --runs.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/chunk.hpp"
#include "asyncstream/remote.hpp"
#include "asyncstream/remote_protocol.hpp"
#include "asyncstream/stream_writer.hpp"

namespace {

using namespace asyncstream;
using clock_type = std::chrono::steady_clock;

using raw_actor = caf::typed_actor<caf::replies_to<
  remote::read_atom, std::uint64_t, std::uint64_t>::with<remote::remote_chunk>>;

/// `--mm-workers`: the middleman's deserialization workers (CAF's
/// default when negative).
int mm_workers = -1;

struct config : caf::actor_system_config {
  config() {
    remote::configure(*this);
    add_message_type<raw_actor>("bench::raw_actor");
    set("scheduler.max-threads", 2);
    if (mm_workers >= 0)
      set("middleman.workers", static_cast<std::size_t>(mm_workers));
  }
};

/// The served bytes: one buffer, shared by the stream and the raw actor.
chunk_ptr make_bytes(std::uint64_t n) {
  auto buf = std::make_shared<std::string>(n, '\0');
  for (std::uint64_t i = 0; i < n; ++i)
    (*buf)[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
  return adopt_buffer(std::move(buf));
}

int serve(std::uint64_t bytes) {
  config cfg;
  caf::actor_system sys{cfg};
  auto data = make_bytes(bytes);
  auto s = stream::make(sys, source::push());
  if (!s)
    return 1;
  {
    auto w = s->writer();
    if (!w || w->write(slice{data, 0, bytes}) || w->close())
      return 1;
  }
  auto pub = remote::publisher::publish(sys, 0);
  if (!pub || pub->add("bench", *s))
    return 1;
  auto raw
    = sys.spawn([data, bytes](raw_actor::pointer) -> raw_actor::behavior_type {
        return {
          [data, bytes](remote::read_atom, std::uint64_t offset,
                        std::uint64_t max) {
            remote::remote_chunk c;
            c.offset = offset;
            auto n = offset < bytes ? std::min(max, bytes - offset) : 0;
            if (n > 0)
              c.bytes.slices.emplace_back(data, offset, n);
            c.bytes.size = n;
            c.end = offset + n >= bytes;
            return c;
          },
        };
      });
  auto raw_port = sys.middleman().publish(raw, 0, "127.0.0.1", true);
  if (!raw_port)
    return 1;
  std::cout << "PORTS " << pub->port() << ' ' << *raw_port << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    // until the parent closes our stdin
  }
  caf::anon_send_exit(raw, caf::exit_reason::user_shutdown);
  return 0;
}

/// Reads the whole stream remotely; returns seconds.
double run_remote(caf::actor_system& sys, std::uint16_t port,
                  std::uint64_t bytes, std::uint64_t window,
                  std::uint64_t payload) {
  remote::open_options opts;
  opts.window = window;
  auto s = remote::open(sys, "127.0.0.1", port, "bench", opts);
  if (!s) {
    std::cerr << "open: " << sys.render(s.error()) << "\n";
    std::exit(1);
  }
  reader_options ropts;
  ropts.prefetch = payload;
  auto start = clock_type::now();
  auto r = s->open_reader(ropts);
  if (!r)
    std::exit(1);
  std::uint64_t got = 0;
  for (;;) {
    auto xs = r->read_slices(payload);
    if (!xs) {
      std::cerr << "read: " << sys.render(xs.error()) << "\n";
      std::exit(1);
    }
    if (xs->empty())
      break;
    for (auto& x : *xs)
      got += x.size();
  }
  auto secs = std::chrono::duration<double>(clock_type::now() - start).count();
  if (got != bytes) {
    std::cerr << "remote reader got " << got << " of " << bytes << "\n";
    std::exit(1);
  }
  return secs;
}

/// Fetches the same bytes from the raw actor, `window / payload` requests
/// in flight; returns seconds.
double run_raw(caf::actor_system& sys, std::uint16_t port, std::uint64_t bytes,
               std::uint64_t window, std::uint64_t payload) {
  auto raw = sys.middleman().remote_actor<raw_actor>("127.0.0.1", port);
  if (!raw) {
    std::cerr << "raw: " << sys.render(raw.error()) << "\n";
    std::exit(1);
  }
  auto in_flight = std::max<std::uint64_t>(1, window / payload);
  std::promise<double> done;
  auto fut = done.get_future();
  sys.spawn([&, hdl = *raw](caf::event_based_actor* self) {
    struct st {
      std::uint64_t next = 0;
      std::uint64_t got = 0;
      clock_type::time_point start = clock_type::now();
    };
    auto state = std::make_shared<st>();
    std::shared_ptr<std::function<void()>> ask
      = std::make_shared<std::function<void()>>();
    *ask = [=, &done] {
      if (state->next >= bytes)
        return;
      auto off = state->next;
      state->next += payload;
      self->request(hdl, caf::infinite, remote::read_atom::value, off, payload)
        .then(
          [=, &done](remote::remote_chunk& c) {
            state->got += c.bytes.size;
            if (state->got >= bytes) {
              done.set_value(
                std::chrono::duration<double>(clock_type::now() - state->start)
                  .count());
              self->quit();
              return;
            }
            (*ask)();
          },
          [=](caf::error&) { self->quit(); });
    };
    for (std::uint64_t i = 0; i < in_flight; ++i)
      (*ask)();
  });
  return fut.get();
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string{argv[1]} == "--serve") {
    mm_workers = std::stoi(argv[3]);
    return serve(std::stoull(argv[2]));
  }
  CLI::App app{"asyncstream-remote-bench: a remote reader against the "
               "middleman's raw request/response, over loopback"};
  std::uint64_t bytes = 1u << 30;
  std::uint64_t window = 8u << 20;
  std::uint64_t payload = 1u << 20;
  int runs = 3;
  app.add_option("--bytes", bytes, "bytes per run")->capture_default_str();
  app.add_option("--window", window, "bytes in flight (both rows)")
    ->capture_default_str();
  app
    .add_option("--payload", payload,
                "bytes per message (the session pushes at most 1 MiB)")
    ->capture_default_str();
  app.add_option("--mm-workers", mm_workers,
                 "the middleman's deserialization workers in both "
                 "processes (default: CAF's)");
  app.add_option("--runs", runs, "runs of each row (medians)")
    ->check(CLI::Range(1, 100))
    ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  // The serving child.
  int to_child[2];
  int from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0)
    return 1;
  auto pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    auto arg = std::to_string(bytes);
    auto workers = std::to_string(mm_workers);
    execl("/proc/self/exe", argv[0], "--serve", arg.c_str(), workers.c_str(),
          nullptr);
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  FILE* child_out = fdopen(from_child[0], "r");
  unsigned stream_port = 0;
  unsigned raw_port = 0;
  if (std::fscanf(child_out, "PORTS %u %u", &stream_port, &raw_port) != 2) {
    std::cerr << "the serving child did not start\n";
    return 1;
  }
  std::vector<double> remote_secs;
  std::vector<double> raw_secs;
  {
    config cfg;
    caf::actor_system sys{cfg};
    std::printf("%-44s %10s %10s\n", "row (bytes per run, window, payload)",
                "seconds", "GB/s");
    for (int i = 0; i < runs; ++i) {
      auto a = run_raw(sys, static_cast<std::uint16_t>(raw_port), bytes, window,
                       payload);
      auto b = run_remote(sys, static_cast<std::uint16_t>(stream_port), bytes,
                          window, payload);
      raw_secs.push_back(a);
      remote_secs.push_back(b);
      std::printf("run %d: %-37s %10.3f %10.2f\n", i + 1,
                  "raw request/response", a, bytes / a / 1e9);
      std::printf("run %d: %-37s %10.3f %10.2f\n", i + 1, "remote reader", b,
                  bytes / b / 1e9);
    }
  }
  auto raw_gbs = bytes / median(raw_secs) / 1e9;
  auto remote_gbs = bytes / median(remote_secs) / 1e9;
  std::printf("median: raw request/response %.2f GB/s, remote reader %.2f "
              "GB/s, ratio %.2f (%llu bytes, window %llu, payload %llu, %d "
              "runs)\n",
              raw_gbs, remote_gbs, remote_gbs / raw_gbs,
              static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(window),
              static_cast<unsigned long long>(payload), runs);
  close(to_child[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  return 0;
}
