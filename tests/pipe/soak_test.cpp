// The backed pipe's seeded soak: random windows, frame sizes, write and read
// sizes, and random cut and stall schedules in both directions; every byte
// must arrive exactly once and in order, both sides must end cleanly.
//
// CTest runs seeds 0..PIPE_SOAK_DEFAULT-1. More seeds:
//   PIPE_SOAK_SEEDS=1000 ./asyncstream-pipe-tests -tc='*soak*'
// One seed (as a failure prints it):
//   PIPE_SOAK_SEED=17 ./asyncstream-pipe-tests -tc='*soak*'
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <random>
#include <string>
#include <thread>

#include "asyncstream/error.hpp"
#include "pipe_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t soak_default = 24;

std::optional<std::uint64_t> env_number(const char* name) {
  auto* s = std::getenv(name);
  if (s == nullptr || *s == '\0')
    return std::nullopt;
  return std::strtoull(s, nullptr, 10);
}

std::string bytes_for(std::mt19937_64& rng, std::size_t n) {
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng() & 0xff);
  return out;
}

/// The counters of a pipe, for failure messages.
std::string show(backed_pipe& p) {
  auto st = p.stats();
  return std::string{to_string(st.state)} + ", generation "
         + std::to_string(st.generation) + ", written "
         + std::to_string(st.written) + ", acknowledged "
         + std::to_string(st.acknowledged) + ", received "
         + std::to_string(st.received) + ", read " + std::to_string(st.read)
         + (st.write_closed_acknowledged ? ", end acknowledged" : "")
         + (st.peer_closed ? ", peer ended" : "") + ", last error "
         + render(st.last_error);
}

struct soak_result {
  std::string failure; // empty: fine
  bool goodbye_missing = false;
  std::uint64_t attempts = 0;
  std::uint64_t sent = 0;
};

/// Writes `data` in random pieces, then ends the direction.
caf::error write_all(backed_pipe& p, const std::string& data,
                     std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::size_t i = 0;
  while (i < data.size()) {
    auto k = std::min<std::size_t>(data.size() - i, 1 + rng() % 8192);
    if (auto err = p.write(data.data() + i, k))
      return err;
    i += k;
  }
  return p.close_write();
}

/// Reads in random pieces until the end.
caf::expected<std::string> read_all_random(backed_pipe& p, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::string out;
  std::string buf(8192, '\0');
  for (;;) {
    auto k = p.read(buf.data(), 1 + rng() % buf.size());
    if (!k)
      return std::move(k.error());
    if (*k == 0)
      return out;
    out.append(buf.data(), *k);
  }
}

soak_result run_seed(caf::actor_system& sys, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  static constexpr std::uint64_t windows[] = {512, 4096, 65536, 1 << 20};
  static constexpr std::size_t frames[] = {16, 700, 4096, 65536};
  pipe_options opts;
  opts.window = windows[rng() % 4];
  opts.max_frame = frames[rng() % 4];
  opts.backoff_initial = 100us;
  opts.backoff_max = 2ms;
  testing::fault_plan plan;
  plan.seed = seed * 1000003;
  plan.min_bytes = 1 + rng() % 2000;
  // At least 400 bytes of spread: a connection must be able to carry its
  // handshake, greeting and end frames (about 150 bytes) now and then.
  plan.max_bytes = plan.min_bytes + 400 + rng() % 60000;
  plan.stall_per_mille = static_cast<unsigned>(rng() % 10);
  plan.max_stall = std::chrono::microseconds(rng() % 300);
  plan.buffer = 1 + rng() % 100000;
  auto a2p = bytes_for(rng, rng() % 300000);
  auto p2a = bytes_for(rng, rng() % 300000);
  soak_result res;
  bool goodbye_missing = false;
  pipe_pair pp{sys, opts, plan};
  auto work = std::async(std::launch::async, [&]() -> std::string {
    if (auto err = pp.active.connect())
      return "connect: " + render(err);
    auto wa = std::async(std::launch::async,
                         [&] { return write_all(pp.active, a2p, seed + 1); });
    auto wp = std::async(std::launch::async,
                         [&] { return write_all(pp.passive, p2a, seed + 2); });
    auto rp = std::async(std::launch::async,
                         [&] { return read_all_random(pp.passive, seed + 3); });
    auto ra = read_all_random(pp.active, seed + 4);
    auto at_passive = rp.get();
    if (auto err = wa.get())
      return "active write: " + render(err);
    if (auto err = wp.get())
      return "passive write: " + render(err);
    if (!ra)
      return "active read: " + render(ra.error());
    if (!at_passive)
      return "passive read: " + render(at_passive.error());
    if (*ra != p2a)
      return "passive -> active: " + std::to_string(ra->size()) + " of "
             + std::to_string(p2a.size()) + " bytes, content "
             + (ra->size() == p2a.size() ? "differs" : "cut");
    if (*at_passive != a2p)
      return "active -> passive: " + std::to_string(at_passive->size()) + " of "
             + std::to_string(a2p.size()) + " bytes, content "
             + (at_passive->size() == a2p.size() ? "differs" : "cut");
    if (auto err = pp.active.wait_acknowledged(30s))
      return "active acknowledged: " + render(err);
    if (auto err = pp.passive.wait_acknowledged(30s))
      return "passive acknowledged: " + render(err);
    // Goodbyes are counted, not required: both sides are settled here
    // (every byte read and acknowledged both ways, checked above). A cut
    // can take the active side's last goodbye once it has the passive's,
    // and the passive side cannot reconnect to get it; and under the
    // heaviest cut plans (most connections cut within their first 200
    // bytes) the active side's goodbye may not arrive within the wait
    // either (4 seeds of the first 1000, each passing on a rerun).
    if (!pp.active.wait_peer_done(10s) || !pp.passive.wait_peer_done(2s))
      goodbye_missing = true;
    return {};
  });
  if (work.wait_for(120s) != std::future_status::ready) {
    res.failure = "no progress within 120 s (active "
                  + std::string{to_string(pp.active.state())} + ", passive "
                  + to_string(pp.passive.state()) + ")";
    pp.active.close(); // unblocks every call of the work
    pp.passive.close();
    work.wait();
    return res;
  }
  res.failure = work.get();
  res.goodbye_missing = goodbye_missing;
  if (!res.failure.empty())
    res.failure += " (window " + std::to_string(opts.window) + ", frames "
                   + std::to_string(opts.max_frame) + ", cuts after "
                   + std::to_string(plan.min_bytes) + ".."
                   + std::to_string(plan.max_bytes) + " bytes, buffer "
                   + std::to_string(plan.buffer) + ", bytes "
                   + std::to_string(a2p.size()) + " / "
                   + std::to_string(p2a.size()) + ")";
  auto st = pp.active.stats();
  res.attempts = st.attempts;
  res.sent = st.sent;
  if (res.failure.empty() && st.written != a2p.size())
    res.failure = "written counter " + std::to_string(st.written);
  return res;
}

} // namespace

TEST_SUITE("backed pipe soak") {
  TEST_CASE("soak: random cut schedules in both directions, every byte "
            "exactly once and in order") {
    system_fixture f;
    std::uint64_t first = 0;
    std::uint64_t count = env_number("PIPE_SOAK_SEEDS").value_or(soak_default);
    if (auto one = env_number("PIPE_SOAK_SEED")) {
      first = *one;
      count = 1;
    }
    std::uint64_t failed = 0;
    std::uint64_t no_goodbye = 0;
    std::uint64_t attempts = 0;
    std::uint64_t sent = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (auto seed = first; seed < first + count; ++seed) {
      auto res = run_seed(f.sys, seed);
      attempts += res.attempts;
      if (res.goodbye_missing)
        ++no_goodbye;
      sent += res.sent;
      if (!res.failure.empty()) {
        ++failed;
        FAIL_CHECK("seed " << seed << ": " << res.failure
                           << "\n  replay: PIPE_SOAK_SEED=" << seed
                           << " ./asyncstream-pipe-tests -tc='*soak*'");
      }
    }
    auto secs
      = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
    std::printf("pipe soak: %llu seeds (%llu..%llu), %llu failed, %llu "
                "without both goodbyes, %llu connect attempts, %llu bytes "
                "in whole data frames (replays included), %.1f s\n",
                static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(first),
                static_cast<unsigned long long>(first + count - 1),
                static_cast<unsigned long long>(failed),
                static_cast<unsigned long long>(no_goodbye),
                static_cast<unsigned long long>(attempts),
                static_cast<unsigned long long>(sent), secs);
    CHECK(failed == 0);
  }
}
