#include "sources.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include <spdlog/spdlog.h>

#include "asyncstream/error.hpp"
#include "download_actor.hpp"

namespace streamerd {

namespace {

/// Starts `/bin/sh -c command` with its standard output on a pipe; returns
/// the read end (-1 on failure) and the child's pid.
int spawn_command(const std::string& command, pid_t& pid) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      ::dup2(devnull, STDIN_FILENO);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  return fds[0];
}

/// The demo stream: one numbered line every 100 ms, forever. The read
/// function runs on the stream's own source thread, where sleeping is fine.
asyncstream::source demo_source() {
  auto n = std::make_shared<std::uint64_t>(0);
  return asyncstream::source::from_function(
    [n](std::byte* buf, std::size_t max) -> asyncstream::read_outcome {
      if (*n > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
      auto now = std::time(nullptr);
      char when[32];
      std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
                    std::gmtime(&now));
      std::string line = "streamerd demo line " + std::to_string(++*n) + " at "
                         + when + "\n";
      auto k = std::min(max, line.size());
      std::memcpy(buf, line.data(), k);
      return {k, false, {}};
    });
}

registry::entry_ptr make_entry(const std::string& name, const char* origin,
                               asyncstream::stream s) {
  auto e = std::make_shared<stream_entry>();
  e->name = name;
  e->origin = origin;
  e->stream = std::move(s);
  e->created = std::chrono::system_clock::now();
  return e;
}

} // namespace

caf::expected<asyncstream::stream>
make_stream(caf::actor_system& sys, const config& cfg,
            asyncstream::source src) {
  asyncstream::stream_options opts;
  opts.max_readers = cfg.max_readers;
  // Thousands of streams share CAF's scheduler threads: no thread of its
  // own per stream (docs/benchmarks.md measures the wake-up cost).
  opts.transfer_thread = false;
  if (cfg.retention) {
    opts.retention = cfg.retention;
    opts.policy = asyncstream::retention_policy::untethered;
  }
  if (cfg.storage == "file") {
    asyncstream::file_storage fs;
    fs.directory = cfg.file_dir;
    opts.file = fs;
  }
  return asyncstream::stream::make(sys, std::move(src), opts);
}

void log_when_final(caf::actor_system& sys, const registry::entry_ptr& e) {
  std::weak_ptr<stream_entry> weak = e;
  auto name = e->name;
  on_stream_final(sys, e->stream,
                  [weak, name](asyncstream::stream_status st) {
                    if (asyncstream::is(st.error,
                                        asyncstream::errc::stream_gone)
                        || asyncstream::is(st.error,
                                           asyncstream::errc::canceled)) {
                      // The daemon is shutting down (it aborts its streams),
                      // or the stream was deleted and its last reader left:
                      // not a failure.
                      spdlog::debug("stream {} closed after {} bytes", name,
                                    st.size);
                    } else if (st.error) {
                      if (auto e = weak.lock())
                        e->failed = true;
                      spdlog::warn("stream {} failed after {} bytes: {}", name,
                                   st.size, asyncstream::render(st.error));
                    } else {
                      spdlog::info("stream {} ended: {} bytes", name, st.size);
                    }
                  });
}

std::string start_sources(caf::actor_system& sys, const config& cfg,
                          registry& reg) {
  auto add = [&](const std::string& name, const char* origin,
                 asyncstream::source src) -> std::string {
    auto s = make_stream(sys, cfg, std::move(src));
    if (!s)
      return "stream " + name + ": " + asyncstream::render(s.error());
    auto e = make_entry(name, origin, std::move(*s));
    if (!reg.add(e))
      return "stream " + name + ": the name is given twice";
    log_when_final(sys, e);
    spdlog::info("stream {} serves {}", name, origin);
    return {};
  };
  for (auto& spec : cfg.sources) {
    std::string err;
    switch (spec.what) {
      case source_spec::kind::file: {
        auto src = asyncstream::source::from_path(spec.arg);
        if (!src)
          return "--source " + spec.name + "=" + spec.arg + ": "
                 + asyncstream::render(src.error());
        err = add(spec.name, "file", std::move(*src));
        break;
      }
      case source_spec::kind::stdin_fd:
        err = add(spec.name, "stdin", asyncstream::source::from_fd(0));
        break;
      case source_spec::kind::command: {
        pid_t pid = 0;
        int fd = spawn_command(spec.arg, pid);
        if (fd < 0)
          return "--exec " + spec.name + ": cannot start the command: "
                 + std::strerror(errno);
        err = add(spec.name, "exec",
                  asyncstream::source::from_fd(fd, true));
        // Reap the child and say how it ended; the stream ends at its EOF.
        std::thread{[pid, name = spec.name, command = spec.arg] {
          int status = 0;
          while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
          if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            spdlog::info("command of stream {} exited with status 0", name);
          else if (WIFEXITED(status))
            spdlog::warn("command of stream {} exited with status {}: {}",
                         name, WEXITSTATUS(status), command);
          else if (WIFSIGNALED(status))
            spdlog::warn("command of stream {} was killed by signal {}", name,
                         WTERMSIG(status));
        }}.detach();
        break;
      }
    }
    if (!err.empty())
      return err;
  }
  if (cfg.demo) {
    if (auto err = add("demo", "demo", demo_source()); !err.empty())
      return err;
  }
  return {};
}

} // namespace streamerd
