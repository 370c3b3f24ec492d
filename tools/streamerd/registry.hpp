// registry: the streams a streamerd serves, by name, and the daemon's
// counters.
//
// Contract:
// - Thread-safe (one mutex): network threads and CAF threads use it.
// - An entry is shared: a response in progress keeps its entry (and so its
//   stream) alive after the name was deleted.
// - `add` fails when the name is taken; `await` registers a callback that
//   runs (on the thread that adds the stream) once the name exists.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "asyncstream/stream.hpp"
#include "relay_status.hpp"
#include "traffic_history.hpp"

namespace streamerd {

/// One served stream.
struct stream_entry {
  std::string name;
  /// Where the bytes come from: "upload", "file", "stdin", "exec", "demo".
  std::string origin;
  asyncstream::stream stream;
  std::chrono::system_clock::time_point created;
  /// Body bytes sent to consumers of this stream.
  std::atomic<std::uint64_t> bytes_out{0};
  /// Whether the producer failed (for logs and the status page).
  std::atomic<bool> failed{false};
  /// The relay that fills it (`--relay`), null for any other stream.
  std::shared_ptr<const relay_status> relay;
  /// Called by every GET and HEAD of this stream before it opens a reader:
  /// starts a relay on first demand (`--relay-on-demand`). Thread-safe and
  /// cheap after the first call; empty for other streams.
  std::function<void()> on_demand;
  /// Bytes in and out over the last minute (the status page's charts).
  traffic_history traffic;

  /// Records that consumer `id` is at `offset` (for the lag metric).
  void track(std::uint64_t id, std::uint64_t offset);

  /// Forgets consumer `id`.
  void untrack(std::uint64_t id);

  /// Returns (open consumers, offset of the slowest one or none).
  std::pair<std::size_t, std::optional<std::uint64_t>> consumers() const;

private:
  mutable std::mutex mtx_;
  std::map<std::uint64_t, std::uint64_t> positions_;
};

/// What `snapshot` reports of one stream.
struct stream_report {
  std::string name;
  std::string origin;
  asyncstream::stream_stats stats;
  std::size_t readers = 0;
  std::uint64_t lag = 0;
  std::uint64_t bytes_out = 0;
  double age_seconds = 0;
  /// Bytes per second in and out over the last minute, oldest first.
  traffic_rates rates;
  /// The relay that fills it, if any.
  std::shared_ptr<const relay_status> relay;
};

/// The named streams and the daemon-wide counters.
class registry {
public:
  using entry_ptr = std::shared_ptr<stream_entry>;

  /// What `add` did.
  enum class add_result { added, exists, full };

  /// Adds `e` under its name; false if the name is taken.
  bool add(entry_ptr e);

  /// Adds `e` under its name unless the name is taken or `max` streams are
  /// listed already.
  add_result add(entry_ptr e, std::size_t max);

  /// Returns how many streams are listed.
  std::size_t size() const;

  /// Returns the entry of `name`, or null.
  entry_ptr find(const std::string& name) const;

  /// Removes and returns the entry of `name` (null if none).
  entry_ptr remove(const std::string& name);

  /// Returns every entry.
  std::vector<entry_ptr> list() const;

  /// Removes every entry (at shutdown).
  std::vector<entry_ptr> clear();

  /// Calls `f` once `name` exists (at once if it does); returns a token for
  /// `cancel_await`.
  std::uint64_t await(const std::string& name, std::function<void()> f);

  /// Drops a callback registered with `await` (a no-op if it ran).
  void cancel_await(std::uint64_t token);

  /// Reads every stream's published counters (`stream::stats()`: no
  /// message, no wait).
  std::vector<stream_report> snapshot() const;

  /// Counts one answered request with status `code`.
  void count_request(unsigned code);

  /// Returns the request counts by status code.
  std::map<unsigned, std::uint64_t> request_counts() const;

  /// Adds the size of a stream that leaves the registry to the bytes-in
  /// total of streams no longer listed.
  void retire(std::uint64_t bytes_in, std::uint64_t bytes_out);

  /// Totals over every stream ever listed: bytes in, bytes out.
  std::pair<std::uint64_t, std::uint64_t>
  totals(const std::vector<stream_report>& now) const;

  /// Consumer responses open (all streams).
  std::atomic<std::int64_t> open_readers{0};

private:
  mutable std::mutex mtx_;
  std::map<std::string, entry_ptr> entries_;
  std::multimap<std::string, std::pair<std::uint64_t, std::function<void()>>>
    waiters_;
  std::uint64_t next_token_ = 0;
  std::map<unsigned, std::uint64_t> requests_;
  std::uint64_t retired_in_ = 0;
  std::uint64_t retired_out_ = 0;
};

} // namespace streamerd
