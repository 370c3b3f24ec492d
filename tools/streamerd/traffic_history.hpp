// traffic_history: a stream's bytes in and out, sampled over the last
// minute, for the rate charts of the status page (`/status.json`'s
// `rate_in` and `rate_out`).
//
// Contract: thread-safe (one mutex). Samples are taken when someone asks
// (`/status.json`, `/metrics`), at most one per second; a rate is the
// difference of two consecutive samples over their distance in time, so a
// gap (nobody asked) shows as its average rate.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace streamerd {

/// Bytes per second in and out, oldest first, one value per sample.
struct traffic_rates {
  std::vector<std::uint64_t> in;
  std::vector<std::uint64_t> out;
};

class traffic_history {
public:
  using clock = std::chrono::steady_clock;

  /// The span the rates cover.
  static constexpr std::chrono::seconds window{60};

  /// Records the counters at `now` (unless the last sample is younger than
  /// a second) and returns the rates over the window.
  traffic_rates sample(clock::time_point now, std::uint64_t in,
                       std::uint64_t out) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (samples_.empty() || now - samples_.back().at >= std::chrono::seconds{1})
      samples_.push_back({now, in, out});
    while (samples_.size() > 2 && now - samples_[1].at > window)
      samples_.pop_front();
    traffic_rates r;
    for (std::size_t i = 1; i < samples_.size(); ++i) {
      auto& a = samples_[i - 1];
      auto& b = samples_[i];
      auto dt = std::chrono::duration<double>(b.at - a.at).count();
      r.in.push_back(rate(a.in, b.in, dt));
      r.out.push_back(rate(a.out, b.out, dt));
    }
    return r;
  }

private:
  struct point {
    clock::time_point at;
    std::uint64_t in;
    std::uint64_t out;
  };

  static std::uint64_t rate(std::uint64_t a, std::uint64_t b, double dt) {
    if (b <= a || dt <= 0)
      return 0;
    return static_cast<std::uint64_t>(static_cast<double>(b - a) / dt);
  }

  std::mutex mtx_;
  std::deque<point> samples_;
};

} // namespace streamerd
