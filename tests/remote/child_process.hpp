// A child process of the remote tests: this very binary run in a role
// (`--read ...`, `--serve ...`), with its standard input and output piped
// to the test. Every wait is bounded.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace asyncstream::test {

class child_process {
public:
  /// Starts `/proc/self/exe args...`, or `wrapper... SELF args...` (e.g.
  /// `ip netns exec NS`), where SELF is this binary's path.
  explicit child_process(std::vector<std::string> args,
                         std::vector<std::string> wrapper = {}) {
    char self[4096] = {0};
    auto len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
      return;
    self[len] = '\0';
    int in[2];
    int out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
      return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> argv;
      for (auto& w : wrapper)
        argv.push_back(w.data());
      argv.push_back(self);
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }

  ~child_process() {
    kill();
    if (in_ >= 0)
      close(in_);
    if (out_ >= 0)
      close(out_);
  }

  bool started() const {
    return pid_ > 0;
  }

  /// Returns the next line the child printed, or none at the deadline or
  /// at the end of its output.
  std::optional<std::string>
  read_line(std::chrono::milliseconds limit = std::chrono::seconds{60}) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return std::nullopt;
      pollfd pfd{out_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
        continue;
      char tmp[4096];
      auto n = ::read(out_, tmp, sizeof(tmp));
      if (n <= 0)
        return std::nullopt;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

  /// Reads lines until one starts with `prefix`; returns the rest of it.
  std::optional<std::string>
  expect(const std::string& prefix,
         std::chrono::milliseconds limit = std::chrono::seconds{60}) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return std::nullopt;
      auto line = read_line(left);
      if (!line)
        return std::nullopt;
      if (line->compare(0, prefix.size(), prefix) == 0)
        return line->substr(prefix.size());
    }
  }

  /// Writes a line to the child's standard input.
  void say(const std::string& line) {
    auto text = line + "\n";
    [[maybe_unused]] auto n = ::write(in_, text.data(), text.size());
  }

  /// Kills the child (SIGKILL) and reaps it.
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  /// Waits (bounded) for the child to exit; returns its exit status, or -1
  /// if it had to be killed.
  int wait(std::chrono::milliseconds limit = std::chrono::seconds{60}) {
    if (pid_ <= 0)
      return -1;
    if (in_ >= 0) {
      close(in_);
      in_ = -1;
    }
    auto deadline = std::chrono::steady_clock::now() + limit;
    // Bounded: its output is drained so it never blocks on a full pipe.
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      auto r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      pollfd pfd{out_, POLLIN, 0};
      if (poll(&pfd, 1, 20) > 0) {
        char tmp[4096];
        auto n = ::read(out_, tmp, sizeof(tmp));
        if (n > 0)
          buf_.append(tmp, static_cast<std::size_t>(n));
      }
    }
    kill();
    return -1;
  }

private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string buf_;
};

} // namespace asyncstream::test
