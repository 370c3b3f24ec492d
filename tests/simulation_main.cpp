// asyncstream-simulation: runs the seeded kernel simulation
// (simulation.hpp) for a range of seeds.
//
//   asyncstream-simulation                   seeds 0..999 (what CI runs)
//   asyncstream-simulation --seeds 100000    seeds 0..99999
//   asyncstream-simulation --first 5000 --seeds 250
//   asyncstream-simulation --seed 1234 [--trace]   replays one seed
//
// Exits 0 when every seed passed, 1 on the first violation (after printing
// its report: seed, configuration, schedule, replay command), or with
// --keep-going after the whole range (printing each failing seed's report),
// 2 on a usage error.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "simulation.hpp"

namespace {

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--seeds N] [--first N] [--seed N] [--trace] "
               "[--keep-going] [--quiet]\n"
               "  --seeds N     run N seeds (default 1000)\n"
               "  --first N     start at seed N (default 0)\n"
               "  --seed N      run only seed N (replay)\n"
               "  --trace       print each step of the schedule\n"
               "  --keep-going  run every seed, report each failure\n"
               "  --quiet       no progress lines\n"
               "  --coverage    count the events and answers of every kind\n",
               argv0);
}

bool parse_u64(const char* s, std::uint64_t& out) {
  if (s == nullptr || *s == '\0')
    return false;
  char* end = nullptr;
  errno = 0;
  auto x = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  out = x;
  return true;
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t first = 0;
  std::uint64_t count = 1000;
  bool trace = false;
  bool keep_going = false;
  bool quiet = false;
  bool coverage = false;
  std::map<std::string, std::uint64_t> counts;
  for (int i = 1; i < argc; ++i) {
    auto arg = std::string{argv[i]};
    auto value = [&](std::uint64_t& out) {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], out)) {
        usage(argv[0]);
        std::exit(2);
      }
      ++i;
    };
    if (arg == "--seeds") {
      value(count);
    } else if (arg == "--first") {
      value(first);
    } else if (arg == "--seed") {
      value(first);
      count = 1;
    } else if (arg == "--trace") {
      trace = true;
    } else if (arg == "--keep-going") {
      keep_going = true;
    } else if (arg == "--quiet") {
      quiet = true;
    } else if (arg == "--coverage") {
      coverage = true;
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  asyncstream::sim::options opts;
  opts.trace = trace;
  opts.replay_command = argv[0];
  auto start = std::chrono::steady_clock::now();
  auto last_print = start;
  std::uint64_t failures = 0;
  std::uint64_t steps = 0;
  std::uint64_t messages = 0;
  std::uint64_t answers = 0;
  std::uint64_t done = 0;
  std::vector<std::uint64_t> failed;
  if (!quiet)
    std::printf("simulating seeds %" PRIu64 "..%" PRIu64 "\n", first,
                first + count - 1);
  for (std::uint64_t seed = first; seed - first < count; ++seed) {
    if (trace)
      std::fprintf(stderr, "seed %" PRIu64 ": %s\n", seed,
                   asyncstream::sim::describe_config(seed).c_str());
    auto res = asyncstream::sim::run_seed(seed, opts);
    ++done;
    steps += res.steps;
    messages += res.messages;
    answers += res.answers;
    for (auto& [what, n] : res.coverage)
      counts[what] += n;
    if (!res.ok) {
      ++failures;
      failed.push_back(seed);
      std::fflush(stdout);
      std::fprintf(stderr, "%s\n", res.report.c_str());
      if (!keep_going)
        break;
    }
    auto now = std::chrono::steady_clock::now();
    if (!quiet && now - last_print > std::chrono::seconds{10}) {
      last_print = now;
      std::printf("  %" PRIu64 " seeds, %" PRIu64 " failed, %.1f s\n", done,
                  failures, std::chrono::duration<double>(now - start).count());
      std::fflush(stdout);
    }
  }
  auto secs
    = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
        .count();
  std::printf("%" PRIu64 " seeds (%" PRIu64 "..%" PRIu64 "), %" PRIu64
              " failed, %" PRIu64 " steps, %" PRIu64 " messages, %" PRIu64
              " answers checked, %.1f s\n",
              done, first, first + done - 1, failures, steps, messages, answers,
              secs);
  if (coverage)
    for (auto& [what, n] : counts)
      std::printf("  %-40s %" PRIu64 "\n", what.c_str(), n);
  if (!failed.empty()) {
    std::printf("failed seeds:");
    for (auto s : failed)
      std::printf(" %" PRIu64, s);
    std::printf("\n");
  }
  return failures == 0 ? 0 : 1;
}
