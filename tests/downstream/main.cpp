// A tiny CAF service that embeds asyncstream: it fills a stream from a
// buffer, reads it back through a blocking reader and checks every byte.
// Prints OK and exits 0 on success, exits 1 otherwise.
#include <cstdio>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <asyncstream/blocking_reader.hpp>
#include <asyncstream/error.hpp>
#include <asyncstream/source.hpp>
#include <asyncstream/stream.hpp>

namespace {

int fail(const char* what, const caf::error& err) {
  std::fprintf(stderr, "%s: %s\n", what, asyncstream::render(err).c_str());
  return 1;
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  asyncstream::configure(cfg); // registers the renderer of asyncstream errors
  caf::actor_system sys{cfg};
  // Streams and readers must go before their actor system: declared after
  // `sys`, they are destroyed first.
  std::string expected;
  for (int i = 0; i < 100000; ++i)
    expected += "line " + std::to_string(i) + '\n';
  // The stream adopts the string (moved, not copied) and ends at its size.
  auto str = asyncstream::stream::make(
    sys, asyncstream::source::from_bytes(std::string{expected}));
  if (!str)
    return fail("stream::make", str.error());
  auto reader = str->open_reader();
  if (!reader)
    return fail("open_reader", reader.error());
  std::string got;
  char buf[64 * 1024];
  for (;;) {
    auto n = reader->read(buf, sizeof(buf)); // short reads, 0 at the end
    if (!n)
      return fail("read", n.error());
    if (*n == 0)
      break;
    got.append(buf, *n);
  }
  if (got != expected) {
    std::fprintf(stderr, "mismatch: read %zu bytes, expected %zu\n", got.size(),
                 expected.size());
    return 1;
  }
  std::puts("OK");
  return 0;
}
