#include "asyncstream/pipe_frames.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "asyncstream/error.hpp"

namespace asyncstream {

namespace {

std::uint64_t get_u64(const std::byte* in) {
  std::uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<std::uint64_t>(in[i]);
  return x;
}

std::uint32_t get_u32(const std::byte* in) {
  std::uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x = (x << 8) | static_cast<std::uint32_t>(in[i]);
  return x;
}

std::string type_name(std::byte b) {
  auto c = static_cast<unsigned char>(b);
  if (c >= 0x20 && c < 0x7f)
    return std::string{"'"} + static_cast<char>(c) + "'";
  static constexpr char hex[] = "0123456789abcdef";
  return std::string{"0x"} + hex[c >> 4] + hex[c & 0xf];
}

} // namespace

void write_frame_header(std::byte* out, frame_type type, std::uint64_t value,
                        std::uint32_t length) {
  out[0] = static_cast<std::byte>(type);
  for (int i = 8; i >= 1; --i) {
    out[i] = static_cast<std::byte>(value & 0xff);
    value >>= 8;
  }
  for (int i = 12; i >= 9; --i) {
    out[i] = static_cast<std::byte>(length & 0xff);
    length >>= 8;
  }
}

frame_handler::~frame_handler() {
  // nop
}

caf::error frame_parser::on_header(frame_handler& h) {
  auto value = get_u64(header_.data() + 1);
  auto length = get_u32(header_.data() + 9);
  auto type = static_cast<frame_type>(header_[0]);
  switch (type) {
    case frame_type::data:
      if (length == 0 || length > max_frame_payload)
        return make_error(errc::protocol_error,
                          "data frame at sequence " + std::to_string(value)
                            + " with a payload of " + std::to_string(length)
                            + " bytes (1 to "
                            + std::to_string(max_frame_payload) + " allowed)");
      if (value > UINT64_MAX - length)
        return make_error(errc::protocol_error, "data frame at sequence "
                                                  + std::to_string(value)
                                                  + " runs past 2^64");
      payload_seq_ = value;
      payload_left_ = length;
      return {};
    case frame_type::ack:
    case frame_type::window:
    case frame_type::fin:
    case frame_type::fin_ack:
    case frame_type::bye:
      if (length != 0)
        return make_error(errc::protocol_error,
                          "control frame " + type_name(header_[0])
                            + " with a payload of " + std::to_string(length)
                            + " bytes");
      if (type == frame_type::bye && value != 0)
        return make_error(errc::protocol_error,
                          "goodbye frame with value " + std::to_string(value));
      if (type == frame_type::window && value == 0)
        return make_error(errc::protocol_error, "a receive window of 0");
      return h.on_control(type, value);
    default:
      return make_error(errc::protocol_error,
                        "unknown frame type " + type_name(header_[0]));
  }
}

caf::error frame_parser::feed(const std::byte* data, std::size_t n,
                              frame_handler& h) {
  if (failed_)
    return failed_;
  auto fail = [this](caf::error err) {
    failed_ = err;
    return err;
  };
  while (n > 0) {
    if (payload_left_ > 0) {
      auto k = std::min(n, payload_left_);
      auto seq = payload_seq_;
      payload_seq_ += k;
      payload_left_ -= k;
      if (auto err = h.on_data(seq, data, k))
        return fail(std::move(err));
      data += k;
      n -= k;
      continue;
    }
    auto k = std::min(n, frame_header_size - header_fill_);
    std::memcpy(header_.data() + header_fill_, data, k);
    header_fill_ += k;
    data += k;
    n -= k;
    if (header_fill_ < frame_header_size)
      break;
    header_fill_ = 0;
    if (auto err = on_header(h))
      return fail(std::move(err));
  }
  return {};
}

} // namespace asyncstream
