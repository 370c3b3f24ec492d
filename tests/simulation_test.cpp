// Regression tests found by the seeded kernel simulation
// (asyncstream-simulation, tests/simulation.cpp; docs/design.md,
// "Simulation"): each is the minimal schedule of a seed that broke an
// invariant, replayed by hand on the deterministic harness. A case marked
// `doctest::skip()` is a bug in code the simulation's owner does not own;
// its comment names the seed, the bug and where the fix belongs. Seeds name
// a schedule of the simulation as it was then: the schedule below is what
// stays.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/error.hpp"
#include "asyncstream/testing/fixture.hpp"

using namespace asyncstream;
using asyncstream::testing::fixture;

TEST_SUITE("simulation") {
  // Found at seeds 6 and 324 of the first version of the simulation (an open
  // from an owner that had died while its first open still waited). The
  // readers monitor queued a second `open_atom` of an id that was already
  // waiting as a second waiting entry; the reader's `close_atom` (or its
  // owner's death) dropped only the first, and the second took the next
  // free slot: a reader nobody held kept a slot for good, `stream::close()`
  // waited forever. Fixed in actors/src/readers_monitor_actor.cpp: an open
  // of a waiting id is refused with `invalid_argument`.
  TEST_CASE("readers monitor: an id that opens twice while waiting takes no "
            "slot once closed") {
    stream_options opts;
    opts.max_readers = 1;
    fixture f{opts};
    std::vector<std::string> events;
    auto client = f.sys().spawn([&](caf::event_based_actor* self) {
      for (std::uint64_t id : {1, 2, 2})
        self->request(f.monitor(), caf::infinite, open_atom::value, id)
          .then(
            [&, id](std::uint64_t) {
              events.push_back("granted " + std::to_string(id));
            },
            [&, id](caf::error& err) {
              events.push_back("refused " + std::to_string(id) + " "
                               + render(err));
            });
    });
    f.run();
    CHECK(f.stream().stats().readers == 1); // reader 1
    CHECK(f.stream().stats().waiting == 1); // reader 2 waits (once)
    REQUIRE(events.size() == 2);
    CHECK(events[0] == "granted 1");
    CHECK(events[1].find("refused 2") == 0);
    CHECK(events[1].find("already waits for a slot") != std::string::npos);
    caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{2});
    f.run();
    caf::anon_send(f.monitor(), close_atom::value, std::uint64_t{1});
    f.run();
    auto st = f.stream().stats();
    CHECK(st.readers == 0); // reader 2 was closed: it must not hold a slot
    CHECK(st.waiting == 0);
    caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
  }

} // TEST_SUITE
