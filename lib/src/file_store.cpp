#include "asyncstream/file_store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>

namespace asyncstream {

namespace {

std::error_code last_error() {
  return {errno, std::generic_category()};
}

std::size_t page_round_up(std::size_t x) {
  auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (x == 0)
    x = file_store::default_window;
  return (x + page - 1) / page * page;
}

/// Opens an unnamed temporary file in `dir`: `O_TMPFILE` where the file
/// system has it, else a unique name that is unlinked at once.
int open_unnamed(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
    return fd;
  std::string tmpl = dir + "/asyncstream-XXXXXX";
  fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd >= 0)
    ::unlink(tmpl.c_str());
  return fd;
}

} // namespace

file_store::file_store(int fd, std::string path, bool read_only,
                       std::uint64_t size, std::size_t window,
                       std::size_t cached_windows) noexcept
  : fd_(fd),
    path_(std::move(path)),
    read_only_(read_only),
    size_(size),
    window_(window),
    cached_windows_(cached_windows) {
  // nop
}

std::shared_ptr<file_store>
file_store::create(const std::string& path, const std::string& directory,
                   std::error_code& ec, std::size_t window,
                   std::size_t cached_windows) {
  ec.clear();
  int fd;
  if (path.empty()) {
    auto dir = directory;
    if (dir.empty()) {
      auto* env = std::getenv("TMPDIR");
      dir = env != nullptr && *env != '\0' ? env : "/tmp";
    }
    fd = open_unnamed(dir);
  } else {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  return std::make_shared<file_store>(fd, path, false, 0,
                                      page_round_up(window), cached_windows);
}

std::shared_ptr<file_store>
file_store::open_readonly(const std::string& path, std::error_code& ec,
                          std::size_t window, std::size_t cached_windows) {
  ec.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ec = last_error();
    return nullptr;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ec = last_error();
    ::close(fd);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    ::close(fd);
    return nullptr;
  }
  return std::make_shared<file_store>(fd, path, true,
                                      static_cast<std::uint64_t>(st.st_size),
                                      page_round_up(window), cached_windows);
}

file_store::~file_store() {
  ::close(fd_);
}

std::error_code file_store::append(const std::byte* data, std::size_t n) {
  if (read_only_)
    return std::make_error_code(std::errc::bad_file_descriptor);
  auto pos = size_.load(std::memory_order_relaxed);
  // Offsets must fit off_t (and never wrap): a file past 2^63 bytes is
  // "too large", not a negative offset.
  constexpr auto max_off
    = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
  if (pos > max_off || n > max_off - pos)
    return std::make_error_code(std::errc::file_too_large);
  std::size_t done = 0;
  while (done < n) {
    auto res = ::pwrite(fd_, data + done, n - done,
                         static_cast<off_t>(pos + done));
    if (res < 0) {
      if (errno == EINTR)
        continue;
      return last_error();
    }
    if (res == 0)
      return std::make_error_code(std::errc::no_space_on_device);
    done += static_cast<std::size_t>(res);
  }
  size_.store(pos + n, std::memory_order_release);
  return {};
}

chunk_ptr file_store::window(std::uint64_t index, std::error_code& ec) {
  auto i = windows_.find(index);
  chunk_ptr result;
  if (i != windows_.end())
    result = i->second.lock();
  if (!result) {
    // A shared mapping sees what the producer appends later, so a window
    // mapped while the file was shorter serves the rest of it too.
    void* addr = ::mmap(nullptr, window_, PROT_READ, MAP_SHARED, fd_,
                        static_cast<off_t>(index * window_));
    if (addr == MAP_FAILED) {
      ec = last_error();
      return nullptr;
    }
    result = adopt_chunk(static_cast<std::byte*>(addr), window_,
                         [](std::byte* ptr, std::size_t len) {
                           ::munmap(ptr, len);
                         });
    if (windows_.size() >= 4 * cached_windows_ + 64) {
      // Forget windows nobody maps any more.
      for (auto j = windows_.begin(); j != windows_.end();)
        j = j->second.expired() ? windows_.erase(j) : std::next(j);
    }
    windows_[index] = result;
  }
  // Most recently used last; the oldest falls out when the cache is full.
  auto j = std::find(recent_.begin(), recent_.end(), result);
  if (j != recent_.end())
    recent_.erase(j);
  recent_.push_back(result);
  while (recent_.size() > cached_windows_)
    recent_.pop_front();
  return result;
}

std::size_t file_store::collect(std::uint64_t offset, std::size_t n,
                                std::vector<slice>& out, std::error_code& ec) {
  ec.clear();
  // [offset, offset + n) clipped to the file, without `offset + n` wrapping.
  auto file_size = size();
  auto end = offset >= file_size
               ? offset
               : offset + std::min<std::uint64_t>(n, file_size - offset);
  auto first = out.size();
  std::size_t total = 0;
  for (auto pos = offset; pos < end;) {
    auto index = pos / window_;
    auto in_window = static_cast<std::size_t>(pos - index * window_);
    auto take = static_cast<std::size_t>(
      std::min<std::uint64_t>(window_ - in_window, end - pos));
    auto w = window(index, ec);
    if (!w) {
      out.resize(first);
      return 0;
    }
    out.emplace_back(std::move(w), in_window, take);
    total += take;
    pos += take;
  }
  return total;
}

std::error_code file_store::remove() {
  if (path_.empty() || removed_)
    return {};
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
    return last_error();
  removed_ = true;
  return {};
}

std::size_t file_store::mapped_windows() const noexcept {
  return static_cast<std::size_t>(
    std::count_if(windows_.begin(), windows_.end(),
                  [](const auto& kvp) { return !kvp.second.expired(); }));
}

} // namespace asyncstream
