#include "common.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

namespace asyncstream::bench {

source_data make_source_data(std::size_t n) {
  source_data result;
  result.bytes.resize(n);
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  auto* out = result.bytes.data();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    auto word = state * 0x2545F4914F6CDD1Dull;
    std::memcpy(out + i, &word, 8);
  }
  for (; i < n; ++i) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    out[i] = static_cast<std::byte>(state * 0x2545F4914F6CDD1Dull >> 56);
  }
  reader_tally tally;
  tally.touch(result.bytes.data(), n);
  result.checksum = tally.sum;
  return result;
}

double proc_status_mib(const char* name) {
  auto* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr)
    return -1;
  char line[256];
  auto len = std::strlen(name);
  double result = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, name, len) == 0 && line[len] == ':') {
      unsigned long long kb = 0;
      if (std::sscanf(line + len + 1, "%llu", &kb) == 1)
        result = static_cast<double>(kb) / 1024.0;
      break;
    }
  }
  std::fclose(f);
  return result;
}

cpu_times read_cpu_times() {
  cpu_times result;
  auto* f = std::fopen("/proc/stat", "r");
  if (f == nullptr)
    return result;
  unsigned long long v[10] = {};
  auto n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                       &v[8], &v[9]);
  std::fclose(f);
  if (n < 8)
    return result;
  static const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  // user nice system idle iowait irq softirq steal (guest is in user).
  auto idle = v[3] + v[4];
  auto busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  result.busy = static_cast<double>(busy) / hz;
  result.total = static_cast<double>(busy + idle) / hz;
  return result;
}

double own_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec)
           + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

unsigned cpu_count() {
  auto n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

bool wait_until_idle(double max_busy, double limit_s) {
  auto deadline = clock::now() + std::chrono::duration<double>(limit_s);
  for (;;) {
    auto a = read_cpu_times();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto b = read_cpu_times();
    auto total = b.total - a.total;
    if (total <= 0 || (b.busy - a.busy) / total < max_busy)
      return true;
    if (clock::now() >= deadline)
      return false;
  }
}

double median(std::vector<double> xs) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  if (n % 2 == 1)
    return xs[n / 2];
  return (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

bool parse_size(const std::string& text, std::uint64_t& out) {
  std::size_t i = 0;
  std::uint64_t value = 0;
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])))
    return false;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));
       ++i) {
    auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
      return false;
    value = value * 10 + digit;
  }
  std::string suffix;
  for (; i < text.size(); ++i)
    suffix += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
  std::uint64_t unit = 1;
  if (suffix.empty() || suffix == "B")
    unit = 1;
  else if (suffix == "K" || suffix == "KB" || suffix == "KIB")
    unit = std::uint64_t{1} << 10;
  else if (suffix == "M" || suffix == "MB" || suffix == "MIB")
    unit = std::uint64_t{1} << 20;
  else if (suffix == "G" || suffix == "GB" || suffix == "GIB")
    unit = std::uint64_t{1} << 30;
  else
    return false;
  if (value > std::numeric_limits<std::uint64_t>::max() / unit)
    return false;
  out = value * unit;
  return true;
}

std::string format_size(std::uint64_t n) {
  char buf[64];
  if (n != 0 && n % (std::uint64_t{1} << 30) == 0)
    std::snprintf(buf, sizeof(buf), "%llu GiB",
                  static_cast<unsigned long long>(n >> 30));
  else if (n != 0 && n % (std::uint64_t{1} << 20) == 0)
    std::snprintf(buf, sizeof(buf), "%llu MiB",
                  static_cast<unsigned long long>(n >> 20));
  else if (n != 0 && n % (std::uint64_t{1} << 10) == 0)
    std::snprintf(buf, sizeof(buf), "%llu KiB",
                  static_cast<unsigned long long>(n >> 10));
  else
    std::snprintf(buf, sizeof(buf), "%llu B",
                  static_cast<unsigned long long>(n));
  return buf;
}

void set_error(char (&field)[512], const std::string& msg) {
  auto n = std::min(msg.size(), sizeof(field) - 1);
  std::memcpy(field, msg.data(), n);
  field[n] = '\0';
}

} // namespace asyncstream::bench
