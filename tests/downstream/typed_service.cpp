// A typed CAF service that embeds asyncstream: `digest_actor` answers
// `sum_atom` with the FNV-1a hash and the length of a stream, reading it
// with an async_reader into a std::byte buffer (no blocking call inside the
// actor). Its reader lives in the actor's state, so it closes when the
// actor terminates, however that happens. Prints OK and exits 0 on success.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <asyncstream/async_reader.hpp>
#include <asyncstream/error.hpp>
#include <asyncstream/source.hpp>
#include <asyncstream/stream.hpp>

using sum_atom = caf::atom_constant<caf::atom("sum")>;

/// Answers with (hash, length) of the stream it was spawned for.
using digest_actor = caf::typed_actor<
  caf::replies_to<sum_atom>::with<std::uint64_t, std::uint64_t>>;

namespace {

constexpr std::uint64_t fnv_basis = 14695981039346656037ull;

std::uint64_t fnv1a(std::uint64_t h, const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    h = (h ^ static_cast<std::uint64_t>(p[i])) * 1099511628211ull;
  return h;
}

struct digest_state {
  asyncstream::async_reader reader;
  std::vector<std::byte> buf = std::vector<std::byte>(16 * 1024);
  std::uint64_t hash = fnv_basis;
  std::uint64_t size = 0;
  static inline const char* name = "digest";
};

using digest_ptr = digest_actor::stateful_pointer<digest_state>;
using digest_promise
  = caf::typed_response_promise<std::uint64_t, std::uint64_t>;

/// Reads on until the end, then delivers the result.
void read_next(digest_ptr self, digest_promise rp) {
  auto& st = self->state;
  st.reader.read(caf::span<std::byte>{st.buf},
                 [self, rp](caf::expected<std::size_t> n) mutable {
                   auto& st = self->state;
                   if (!n) {
                     rp.deliver(std::move(n.error()));
                     return;
                   }
                   if (*n == 0) { // the end of the stream
                     rp.deliver(st.hash, st.size);
                     st.reader.close();
                     return;
                   }
                   st.hash = fnv1a(st.hash, st.buf.data(), *n);
                   st.size += *n;
                   read_next(self, rp); // queued: no recursion
                 });
}

digest_actor::behavior_type digest(digest_ptr self, asyncstream::stream s) {
  return {
    [self, s](sum_atom) -> caf::result<std::uint64_t, std::uint64_t> {
      auto rp = self->make_response_promise<std::uint64_t, std::uint64_t>();
      asyncstream::async_reader::open(self, s, [self, rp](auto r) mutable {
        if (!r) {
          rp.deliver(std::move(r.error()));
          return;
        }
        self->state.reader = std::move(*r);
        read_next(self, rp);
      });
      return rp;
    },
  };
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  asyncstream::configure(cfg);
  caf::actor_system sys{cfg};
  std::string data;
  for (int i = 0; i < 50000; ++i)
    data += std::to_string(i * 7919) + ' ';
  auto want = fnv1a(fnv_basis, reinterpret_cast<const std::byte*>(data.data()),
                    data.size());
  auto str = asyncstream::stream::make(
    sys, asyncstream::source::from_bytes(std::string{data}));
  if (!str) {
    std::fprintf(stderr, "stream::make: %s\n",
                 asyncstream::render(str.error()).c_str());
    return 1;
  }
  auto service = sys.spawn(digest, *str);
  int rc = 1;
  {
    caf::scoped_actor self{sys};
    self->request(service, caf::infinite, sum_atom::value)
      .receive(
        [&](std::uint64_t hash, std::uint64_t size) {
          if (hash == want && size == data.size())
            rc = 0;
          else
            std::fprintf(stderr, "wrong digest or size (%llu bytes)\n",
                         static_cast<unsigned long long>(size));
        },
        [&](caf::error& err) {
          std::fprintf(stderr, "sum: %s\n", asyncstream::render(err).c_str());
        });
    self->send_exit(service, caf::exit_reason::user_shutdown);
  }
  if (rc == 0)
    std::puts("OK");
  return rc;
}
