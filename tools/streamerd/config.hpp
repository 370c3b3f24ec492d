// config: streamerd's settings, as parsed from its command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace streamerd {

/// A stream given on the command line.
struct source_spec {
  enum class kind { file, stdin_fd, command };
  std::string name;
  kind what = kind::file;
  /// The file's path, or the command for `/bin/sh -c`.
  std::string arg;
};

struct config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::vector<source_spec> sources;
  bool demo = true;
  std::size_t max_readers = 100;
  std::uint64_t queue_timeout_s = 10;
  std::uint64_t retry_after_s = 5;
  std::uint64_t max_wait_s = 60;
  /// "file" (stream files: bounded memory, sendfile(2) to clients) or
  /// "memory".
  std::string storage = "file";
  std::string file_dir;
  std::optional<std::uint64_t> retention;
  std::uint64_t drain_timeout_s = 10;
  /// Network threads; 0: one per core (set in main).
  std::size_t threads = 0;
  std::string log_level = "info";
};

} // namespace streamerd
