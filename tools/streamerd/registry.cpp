#include "registry.hpp"

#include <algorithm>
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
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!entries_.emplace(e->name, e).second)
      return false;
    auto [first, last] = waiters_.equal_range(e->name);
    for (auto i = first; i != last; ++i)
      ready.push_back(std::move(i->second.second));
    waiters_.erase(first, last);
  }
  for (auto& f : ready)
    f();
  return true;
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
  std::vector<stream_report> out;
  for (auto& e : list()) {
    stream_report r;
    r.name = e->name;
    r.origin = e->origin;
    if (auto st = e->stream.status()) {
      r.status = std::move(*st);
      r.status_ok = true;
    }
    auto [n, slowest] = e->consumers();
    r.readers = n;
    if (slowest && r.status.size > *slowest)
      r.lag = r.status.size - *slowest;
    r.bytes_out = e->bytes_out.load();
    r.age_seconds = std::chrono::duration<double>(now - e->created).count();
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
    in += r.status.size;
    out += r.bytes_out;
  }
  return {in, out};
}

namespace {

/// Escapes a label value or a JSON string (names are safe tokens already;
/// origins and errors may hold anything).
std::string escape(const std::string& x) {
  std::string out;
  for (auto c : x) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

const char* state_of(const stream_report& r) {
  if (!r.status.final)
    return "live";
  return r.status.error ? "failed" : "ended";
}

} // namespace

std::string render_metrics(const registry& reg,
                           const std::vector<stream_report>& reports) {
  std::ostringstream out;
  auto [in, sent] = reg.totals(reports);
  std::uint64_t parked = 0;
  for (auto& r : reports)
    parked += r.status.parked;
  out << "# HELP streamerd_streams Streams listed.\n"
         "# TYPE streamerd_streams gauge\n"
      << "streamerd_streams " << reports.size() << "\n"
      << "# HELP streamerd_bytes_in_total Bytes received by all streams.\n"
         "# TYPE streamerd_bytes_in_total counter\n"
      << "streamerd_bytes_in_total " << in << "\n"
      << "# HELP streamerd_bytes_out_total Body bytes sent to consumers.\n"
         "# TYPE streamerd_bytes_out_total counter\n"
      << "streamerd_bytes_out_total " << sent << "\n"
      << "# HELP streamerd_readers Consumer responses open.\n"
         "# TYPE streamerd_readers gauge\n"
      << "streamerd_readers " << reg.open_readers.load() << "\n"
      << "# HELP streamerd_parked_requests Read requests waiting for bytes.\n"
         "# TYPE streamerd_parked_requests gauge\n"
      << "streamerd_parked_requests " << parked << "\n"
      << "# HELP streamerd_requests_total Answered requests by status code.\n"
         "# TYPE streamerd_requests_total counter\n";
  for (auto& [code, n] : reg.request_counts())
    out << "streamerd_requests_total{code=\"" << code << "\"} " << n << "\n";
  out << "# HELP streamerd_stream_bytes Bytes in the stream so far.\n"
         "# TYPE streamerd_stream_bytes gauge\n";
  for (auto& r : reports)
    out << "streamerd_stream_bytes{stream=\"" << escape(r.name) << "\"} "
        << r.status.size << "\n";
  out << "# HELP streamerd_stream_readers Open consumer responses.\n"
         "# TYPE streamerd_stream_readers gauge\n";
  for (auto& r : reports)
    out << "streamerd_stream_readers{stream=\"" << escape(r.name) << "\"} "
        << r.readers << "\n";
  out << "# HELP streamerd_stream_lag_bytes Stream size minus the offset of "
         "its slowest consumer.\n"
         "# TYPE streamerd_stream_lag_bytes gauge\n";
  for (auto& r : reports)
    out << "streamerd_stream_lag_bytes{stream=\"" << escape(r.name) << "\"} "
        << r.lag << "\n";
  return out.str();
}

std::string render_status_json(const registry& reg,
                               const std::vector<stream_report>& reports) {
  std::ostringstream out;
  auto [in, sent] = reg.totals(reports);
  out << "{\"bytes_in_total\":" << in << ",\"bytes_out_total\":" << sent
      << ",\"readers\":" << reg.open_readers.load() << ",\"streams\":[";
  bool first = true;
  for (auto& r : reports) {
    if (!first)
      out << ",";
    first = false;
    out << "{\"name\":\"" << escape(r.name) << "\",\"origin\":\""
        << escape(r.origin) << "\",\"state\":\"" << state_of(r)
        << "\",\"bytes\":" << r.status.size << ",\"readers\":" << r.readers
        << ",\"lag_bytes\":" << r.lag << ",\"bytes_out\":" << r.bytes_out
        << ",\"parked\":" << r.status.parked << ",\"age_seconds\":"
        << static_cast<std::uint64_t>(r.age_seconds);
    if (r.status.declared_length)
      out << ",\"length\":" << *r.status.declared_length;
    if (r.status.error)
      out << ",\"error\":\"" << escape(asyncstream::render(r.status.error))
          << "\"";
    out << "}";
  }
  out << "]}";
  return out.str();
}

} // namespace streamerd
