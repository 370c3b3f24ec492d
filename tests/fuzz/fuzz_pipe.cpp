// libFuzzer target: the backed pipe's wire formats (pipe_frames.hpp and
// pipe_handshake.hpp).
//
// Every input is used three ways:
// 1. fed to a frame_parser whole, and again in pieces whose sizes come from
//    the input's first byte: both runs must report the same frames, the
//    same payload bytes at the same sequence numbers, and the same error
//    (or none); payload pieces never exceed the frame's length, and a
//    frame's pieces have consecutive sequence numbers;
// 2. read by `read_hello` from a transport that serves the input: a hello
//    comes back only if the input starts with the magic, and then with the
//    numbers at their places;
// 3. read by `client_handshake` as the server's answer: a welcome only
//    after "ASPIPEOK", a refusal's reason never longer than 1024 bytes.
// Any disagreement traps (FUZZ_CHECK).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "asyncstream/error.hpp"
#include "asyncstream/pipe_frames.hpp"
#include "asyncstream/pipe_handshake.hpp"
#include "fuzz_check.hpp"

using namespace asyncstream;

namespace {

/// Collects the payload bytes and control events independently of splits.
struct flat_recorder : frame_handler {
  std::vector<std::pair<std::uint64_t, std::string>> data; // merged runs
  std::string controls;
  std::string order; // 'd' per run start, control letters, in order

  caf::error on_data(std::uint64_t seq, const std::byte* p,
                     std::size_t n) override {
    FUZZ_CHECK(n > 0 && n <= max_frame_payload);
    if (!data.empty() && order.back() == 'd'
        && data.back().first + data.back().second.size() == seq) {
      data.back().second.append(reinterpret_cast<const char*>(p), n);
    } else {
      data.emplace_back(seq, std::string(reinterpret_cast<const char*>(p), n));
      order += 'd';
    }
    return {};
  }

  caf::error on_control(frame_type t, std::uint64_t v) override {
    order += static_cast<char>(t);
    controls += static_cast<char>(t);
    controls += std::to_string(v) + ";";
    if (t == frame_type::ack && v == 7)
      return make_error(errc::protocol_error, "handler refuses 7");
    return {};
  }
};

/// Serves a fixed byte string, in pieces of `step`, then an orderly end.
class input_transport final : public pipe_transport {
public:
  input_transport(const std::uint8_t* p, std::size_t n, std::size_t step)
    : p_(p), n_(n), step_(step == 0 ? 1 : step) {
    // nop
  }

  caf::expected<std::size_t> read(void* buf, std::size_t n) override {
    auto k = std::min({n, n_ - pos_, step_});
    std::memcpy(buf, p_ + pos_, k);
    pos_ += k;
    return k;
  }

  caf::error write(const void*, std::size_t n) override {
    written_ += n;
    return {};
  }

  void close() noexcept override {
    // nop
  }

  std::string describe() const override {
    return "fuzz input";
  }

private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t step_;
  std::size_t pos_ = 0;
  std::size_t written_ = 0;
};

std::uint64_t be64(const std::uint8_t* p) {
  std::uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | p[i];
  return x;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0)
    return 0;
  auto step = static_cast<std::size_t>(data[0] % 17) + 1;
  auto* bytes = reinterpret_cast<const std::byte*>(data + 1);
  auto n = size - 1;
  // 1. Frames, whole and in pieces.
  flat_recorder whole;
  frame_parser p1;
  auto e1 = p1.feed(bytes, n, whole);
  flat_recorder split;
  frame_parser p2;
  caf::error e2;
  for (std::size_t i = 0; i < n && !e2; i += step)
    e2 = p2.feed(bytes + i, std::min(step, n - i), split);
  FUZZ_CHECK(static_cast<bool>(e1) == static_cast<bool>(e2));
  FUZZ_CHECK(!e1 || is(e1, errc::protocol_error));
  FUZZ_CHECK(whole.controls == split.controls);
  FUZZ_CHECK(whole.data == split.data);
  if (!e1)
    FUZZ_CHECK(p1.at_boundary() == p2.at_boundary());
  if (e1) // a failed parser takes nothing more
    FUZZ_CHECK(p1.feed(bytes, n, whole) == e1);
  // 2. A hello.
  {
    input_transport t{data, size, step};
    auto hello = read_hello(t);
    if (hello) {
      FUZZ_CHECK(size >= 32);
      FUZZ_CHECK(std::memcmp(data, "ASPIPE\x01\x00", 8) == 0);
      FUZZ_CHECK(hello->session == be64(data + 8));
      FUZZ_CHECK(hello->position == be64(data + 24));
    }
  }
  // 3. The server's answer.
  {
    input_transport t{data, size, step};
    auto welcome = client_handshake(t, 1, 2);
    if (welcome) {
      FUZZ_CHECK(size >= 24);
      FUZZ_CHECK(std::memcmp(data, "ASPIPEOK", 8) == 0);
      FUZZ_CHECK(welcome->session == be64(data + 8));
      FUZZ_CHECK(welcome->position == be64(data + 16));
    } else {
      auto text = render(welcome.error());
      FUZZ_CHECK(text.size() < 4096);
    }
  }
  return 0;
}
