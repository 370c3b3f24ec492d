// libFuzzer target: the remote protocol's wire types (remote_protocol.hpp)
// as a peer's middleman would hand them to us.
//
// The first input byte picks the type (a remote_chunk, an open_request or
// a remote_status); the rest is loaded with CAF's binary_deserializer, as
// BASP does. A load may fail, but must never crash, and must never make
// more stream bytes than the input holds. A value that loads is saved and
// loaded again: both loads must agree field by field and byte by byte.
// Any disagreement traps (FUZZ_CHECK). A converted error must convert
// back to the same wire form (`from_wire` then `to_wire`).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "asyncstream/remote.hpp"
#include "asyncstream/remote_protocol.hpp"
#include "fuzz_check.hpp"

using namespace asyncstream;
using namespace asyncstream::remote;

namespace {

struct fuzz_config : caf::actor_system_config {
  fuzz_config() {
    remote::configure(*this);
    set("scheduler.max-threads", 1);
  }
};

/// Never destroyed (as fuzz_request's world): tearing a system with the
/// middleman down at exit, after libFuzzer's own teardown, crashes.
caf::actor_system& sys() {
  static auto* cfg = new fuzz_config;
  static auto* instance = new caf::actor_system{*cfg};
  return *instance;
}

std::string bytes_of(const wire_bytes& x) {
  std::string res;
  for (auto& s : x.slices)
    res.append(s.as_string_view());
  return res;
}

/// Loads a T from `data`; on success saves and reloads it and compares.
template <class T, class Same>
void round_trip(const char* data, std::size_t size, Same same) {
  T x;
  caf::binary_deserializer src{sys(), data, size};
  if (src(x))
    return; // refused: fine, as long as nothing crashed
  std::vector<char> buf;
  caf::binary_serializer sink{sys(), buf};
  FUZZ_CHECK(!sink(x));
  T y;
  caf::binary_deserializer again{sys(), buf};
  FUZZ_CHECK(!again(y));
  FUZZ_CHECK(same(x, y));
}

bool same_error(const wire_error& a, const wire_error& b) {
  return a.code == b.code && a.category == b.category && a.text == b.text
         && a.has_range == b.has_range && a.offset == b.offset
         && a.oldest == b.oldest;
}

/// A loaded error converts to a caf::error and back unchanged (when it is
/// one at all and its text is within the bound).
/// (A range without `has_range` means nothing and is not kept.)
void check_converts(const wire_error& e) {
  if (e.code == 0 || e.text.size() > max_error_text)
    return;
  auto expected = e;
  if (!expected.has_range)
    expected.offset = expected.oldest = 0;
  FUZZ_CHECK(same_error(to_wire(from_wire(e)), expected));
}

bool same_status(const remote_status& a, const remote_status& b) {
  check_converts(a.error);
  return a.size == b.size && a.oldest == b.oldest && a.final == b.final
         && same_error(a.error, b.error)
         && a.has_declared_length == b.has_declared_length
         && a.declared_length == b.declared_length && a.parked == b.parked;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0)
    return 0;
  auto* p = reinterpret_cast<const char*>(data + 1);
  auto n = size - 1;
  switch (data[0] % 3) {
    case 0:
      round_trip<remote_chunk>(
        p, n, [n](const remote_chunk& a, const remote_chunk& b) {
          // Never more stream bytes than the input carried.
          FUZZ_CHECK(a.bytes.size <= n);
          std::uint64_t sum = 0;
          for (auto& s : a.bytes.slices)
            sum += s.size();
          FUZZ_CHECK(sum == a.bytes.size);
          check_converts(a.error);
          return a.generation == b.generation && a.offset == b.offset
                 && a.bytes.size == b.bytes.size
                 && bytes_of(a.bytes) == bytes_of(b.bytes) && a.end == b.end
                 && same_error(a.error, b.error)
                 && same_status(a.status, b.status);
        });
      break;
    case 1:
      round_trip<open_request>(
        p, n, [](const open_request& a, const open_request& b) {
          return a.version == b.version && a.name == b.name
                 && a.offset == b.offset && a.window == b.window
                 && a.token == b.token;
        });
      break;
    default:
      round_trip<remote_status>(p, n, same_status);
      break;
  }
  return 0;
}
