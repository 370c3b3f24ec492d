#include "registry.hpp"

#include <algorithm>
#include <limits>
#include <cstdio>
#include <sstream>

#include "asyncstream/error.hpp"

namespace streamerd {

void stream_entry::track(std::uint64_t id, std::uint64_t offset) {
  std::lock_guard<std::mutex> guard{mtx_};
  positions_[id] = offset;
}

void stream_entry::untrack(std::uint64_t id) {
  std::lock_guard<std::mutex> guard{mtx_};
  positions_.erase(id);
}

std::pair<std::size_t, std::optional<std::uint64_t>>
stream_entry::consumers() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::optional<std::uint64_t> slowest;
  for (auto& [id, pos] : positions_)
    if (!slowest || pos < *slowest)
      slowest = pos;
  return {positions_.size(), slowest};
}

bool registry::add(entry_ptr e) {
  return add(std::move(e), std::numeric_limits<std::size_t>::max())
         == add_result::added;
}

std::size_t registry::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return entries_.size();
}

registry::add_result registry::add(entry_ptr e, std::size_t max) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (entries_.count(e->name) != 0)
      return add_result::exists;
    if (entries_.size() >= max)
      return add_result::full;
    entries_.emplace(e->name, e);
    auto [first, last] = waiters_.equal_range(e->name);
    for (auto i = first; i != last; ++i)
      ready.push_back(std::move(i->second.second));
    waiters_.erase(first, last);
  }
  for (auto& f : ready)
    f();
  return add_result::added;
}

registry::entry_ptr registry::find(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(name);
  return i == entries_.end() ? nullptr : i->second;
}

registry::entry_ptr registry::remove(const std::string& name) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(name);
  if (i == entries_.end())
    return nullptr;
  auto e = std::move(i->second);
  entries_.erase(i);
  return e;
}

std::vector<registry::entry_ptr> registry::list() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<entry_ptr> out;
  for (auto& [name, e] : entries_)
    out.push_back(e);
  return out;
}

std::vector<registry::entry_ptr> registry::clear() {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<entry_ptr> out;
  for (auto& [name, e] : entries_)
    out.push_back(std::move(e));
  entries_.clear();
  waiters_.clear();
  return out;
}

std::uint64_t registry::await(const std::string& name,
                              std::function<void()> f) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (entries_.count(name) == 0) {
      auto token = ++next_token_;
      waiters_.emplace(name, std::make_pair(token, std::move(f)));
      return token;
    }
  }
  f();
  return 0;
}

void registry::cancel_await(std::uint64_t token) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto i = waiters_.begin(); i != waiters_.end(); ++i) {
    if (i->second.first == token) {
      waiters_.erase(i);
      return;
    }
  }
}

std::vector<stream_report> registry::snapshot() const {
  auto now = std::chrono::system_clock::now();
  auto tick = traffic_history::clock::now();
  std::vector<stream_report> out;
  for (auto& e : list()) {
    stream_report r;
    r.name = e->name;
    r.origin = e->origin;
    r.stats = e->stream.stats();
    auto [n, slowest] = e->consumers();
    r.readers = n;
    if (slowest && r.stats.size > *slowest)
      r.lag = r.stats.size - *slowest;
    r.bytes_out = e->bytes_out.load();
    r.age_seconds = std::chrono::duration<double>(now - e->created).count();
    r.rates = e->traffic.sample(tick, r.stats.size, r.bytes_out);
    r.relay = e->relay;
    out.push_back(std::move(r));
  }
  return out;
}

void registry::count_request(unsigned code) {
  std::lock_guard<std::mutex> guard{mtx_};
  ++requests_[code];
}

std::map<unsigned, std::uint64_t> registry::request_counts() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return requests_;
}

void registry::retire(std::uint64_t bytes_in, std::uint64_t bytes_out) {
  std::lock_guard<std::mutex> guard{mtx_};
  retired_in_ += bytes_in;
  retired_out_ += bytes_out;
}

std::pair<std::uint64_t, std::uint64_t>
registry::totals(const std::vector<stream_report>& now) const {
  std::uint64_t in = 0;
  std::uint64_t out = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    in = retired_in_;
    out = retired_out_;
  }
  for (auto& r : now) {
    in += r.stats.size;
    out += r.bytes_out;
  }
  return {in, out};
}

} // namespace streamerd
