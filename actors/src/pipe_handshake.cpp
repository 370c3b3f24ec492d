#include "asyncstream/pipe_handshake.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "asyncstream/error.hpp"

namespace asyncstream {

namespace {

constexpr char hello_magic[8] = {'A', 'S', 'P', 'I', 'P', 'E', '\x01', '\x00'};
constexpr char accept_magic[8] = {'A', 'S', 'P', 'I', 'P', 'E', 'O', 'K'};
constexpr char refuse_magic[8] = {'A', 'S', 'P', 'I', 'P', 'E', 'N', 'O'};
constexpr std::size_t max_reason = 1024;

void put_u64(std::byte* out, std::uint64_t x) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<std::byte>(x & 0xff);
    x >>= 8;
  }
}

std::uint64_t get_u64(const std::byte* in) {
  std::uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<std::uint64_t>(in[i]);
  return x;
}

/// Reads exactly `n` bytes; `closed` if the connection ends first.
caf::error read_full(pipe_transport& t, std::byte* buf, std::size_t n,
                     const char* what) {
  std::size_t got = 0;
  while (got < n) {
    auto k = t.read(buf + got, n - got);
    if (!k)
      return std::move(k.error());
    if (*k == 0)
      return make_error(errc::closed, t.describe() + ": the connection ended "
                                        + "in the middle of the " + what);
    got += *k;
  }
  return {};
}

/// Renders the first bytes of what came instead of a magic, for errors.
std::string show(const std::byte* p, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

} // namespace

caf::expected<pipe_welcome> client_handshake(pipe_transport& t,
                                             std::uint64_t session,
                                             std::uint64_t position) {
  std::array<std::byte, 32> hello;
  std::memcpy(hello.data(), hello_magic, 8);
  put_u64(hello.data() + 8, session);
  put_u64(hello.data() + 16, 0);
  put_u64(hello.data() + 24, position);
  if (auto err = t.write(hello.data(), hello.size()))
    return err;
  std::array<std::byte, 24> answer;
  if (auto err = read_full(t, answer.data(), 8, "handshake answer"))
    return err;
  if (std::memcmp(answer.data(), accept_magic, 8) == 0) {
    if (auto err = read_full(t, answer.data() + 8, 16, "handshake answer"))
      return err;
    return pipe_welcome{get_u64(answer.data() + 8),
                        get_u64(answer.data() + 16)};
  }
  if (std::memcmp(answer.data(), refuse_magic, 8) == 0) {
    std::array<std::byte, 2> len;
    if (auto err = read_full(t, len.data(), 2, "handshake refusal"))
      return err;
    auto n = (static_cast<std::size_t>(len[0]) << 8)
             | static_cast<std::size_t>(len[1]);
    if (n > max_reason)
      return make_error(errc::protocol_error, t.describe() + ": a refusal of "
                                                + std::to_string(n)
                                                + " bytes (at most 1024)");
    std::string reason(n, '\0');
    if (auto err = read_full(t, reinterpret_cast<std::byte*>(reason.data()), n,
                             "handshake refusal"))
      return err;
    return make_error(errc::closed,
                      t.describe() + ": refused by the peer: " + reason);
  }
  return make_error(errc::protocol_error,
                    t.describe() + ": expected a handshake answer, got \""
                      + show(answer.data(), 8) + "\"");
}

caf::expected<pipe_hello> read_hello(pipe_transport& t) {
  std::array<std::byte, 32> hello;
  if (auto err = read_full(t, hello.data(), 8, "hello"))
    return err;
  if (std::memcmp(hello.data(), hello_magic, 6) != 0)
    return make_error(errc::protocol_error,
                      t.describe() + ": expected a pipe hello, got \""
                        + show(hello.data(), 8) + "\"");
  if (std::memcmp(hello.data(), hello_magic, 8) != 0)
    return make_error(errc::protocol_error,
                      t.describe() + ": unsupported pipe version \""
                        + show(hello.data() + 6, 2) + "\" (this side: 1)");
  if (auto err = read_full(t, hello.data() + 8, 24, "hello"))
    return err;
  if (auto flags = get_u64(hello.data() + 16); flags != 0)
    return make_error(errc::protocol_error, t.describe()
                                              + ": unknown hello flags "
                                              + std::to_string(flags));
  return pipe_hello{get_u64(hello.data() + 8), get_u64(hello.data() + 24)};
}

caf::error send_welcome(pipe_transport& t, std::uint64_t session,
                        std::uint64_t position) {
  std::array<std::byte, 24> out;
  std::memcpy(out.data(), accept_magic, 8);
  put_u64(out.data() + 8, session);
  put_u64(out.data() + 16, position);
  return t.write(out.data(), out.size());
}

caf::error send_refusal(pipe_transport& t, const std::string& reason) {
  auto n = std::min(reason.size(), max_reason);
  std::string out(refuse_magic, 8);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(reason, 0, n);
  return t.write(out.data(), out.size());
}

} // namespace asyncstream
