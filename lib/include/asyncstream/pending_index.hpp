// pending_index: parked read requests ordered by the offset they wait for.
//
// Contract: owned by one actor, not thread-safe. `T` is whatever the owner
// needs to answer a request later (a response promise, a callback). When the
// body grows to `size`, `take_ready(size, f)` hands every request with
// `offset < size` to `f` in offset order and removes it: O(k log P) for k
// ready among P parked, never a scan of the requests that must keep waiting.
// Requests are grouped by reader id so one reader's requests can be dropped
// without waking anybody else.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

namespace asyncstream {

template <class T>
class pending_index {
public:
  /// A parked request.
  struct entry {
    std::uint64_t reader;
    std::uint64_t offset;
    std::uint64_t max_size;
    T payload;
  };

  /// Parks a request.
  void add(std::uint64_t reader, std::uint64_t offset, std::uint64_t max_size,
           T payload) {
    auto i = by_offset_.emplace(
      offset, entry{reader, offset, max_size, std::move(payload)});
    by_reader_[reader].push_back(i);
  }

  /// Returns the number of parked requests.
  std::size_t size() const noexcept {
    return by_offset_.size();
  }

  /// Returns whether no request is parked.
  bool empty() const noexcept {
    return by_offset_.empty();
  }

  /// Calls `f(entry&&)` for each request with `offset < limit`, lowest
  /// offset first, and removes it.
  template <class F>
  void take_ready(std::uint64_t limit, F&& f) {
    while (!by_offset_.empty() && by_offset_.begin()->first < limit)
      f(extract(by_offset_.begin()));
  }

  /// Calls `f(entry&&)` for every request and removes it.
  template <class F>
  void take_all(F&& f) {
    while (!by_offset_.empty())
      f(extract(by_offset_.begin()));
  }

  /// Calls `f(entry&&)` for each request of `reader` and removes it.
  template <class F>
  void take_reader(std::uint64_t reader, F&& f) {
    auto r = by_reader_.find(reader);
    if (r == by_reader_.end())
      return;
    auto its = std::move(r->second);
    by_reader_.erase(r);
    for (auto i : its) {
      auto e = std::move(i->second);
      by_offset_.erase(i);
      f(std::move(e));
    }
  }

private:
  using map_type = std::multimap<std::uint64_t, entry>;
  using iterator = typename map_type::iterator;

  entry extract(iterator i) {
    auto r = by_reader_.find(i->second.reader);
    if (r != by_reader_.end()) {
      auto& its = r->second;
      for (auto j = its.begin(); j != its.end(); ++j) {
        if (*j == i) {
          its.erase(j);
          break;
        }
      }
      if (its.empty())
        by_reader_.erase(r);
    }
    auto e = std::move(i->second);
    by_offset_.erase(i);
    return e;
  }

  map_type by_offset_;
  std::unordered_map<std::uint64_t, std::vector<iterator>> by_reader_;
};

} // namespace asyncstream
