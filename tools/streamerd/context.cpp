#include "context.hpp"

namespace streamerd {

const char* to_string(timeout_phase x) noexcept {
  switch (x) {
    case timeout_phase::header:
      return "header";
    case timeout_phase::idle:
      return "idle";
    case timeout_phase::send:
      return "send";
    case timeout_phase::body:
      return "body";
  }
  return "?";
}

void server_context::add(connection* key, std::weak_ptr<connection> conn) {
  std::lock_guard<std::mutex> guard{mtx_};
  connections_.emplace(key, std::move(conn));
}

void server_context::remove(connection* key) {
  std::lock_guard<std::mutex> guard{mtx_};
  connections_.erase(key);
}

std::vector<std::shared_ptr<connection>> server_context::open_connections() {
  std::vector<std::shared_ptr<connection>> out;
  std::lock_guard<std::mutex> guard{mtx_};
  out.reserve(connections_.size());
  for (auto& [key, weak] : connections_)
    if (auto c = weak.lock())
      out.push_back(std::move(c));
  return out;
}

std::size_t server_context::connection_count() {
  std::lock_guard<std::mutex> guard{mtx_};
  return connections_.size();
}

} // namespace streamerd
