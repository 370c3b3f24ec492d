// Actors on a thread of their own, and `send_or_run` (detail/own_thread.hpp):
// a sender that finds the actor idle runs its message on its own thread.
// These are the properties the kernel's wake-up path relies on: one thread
// at a time runs the actor, every sender's messages arrive once and in the
// order it sent them however they travel, an actor that ends inside a
// sender's run answers later requests, and runs never nest.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/own_thread.hpp"

#include "test_support.hpp"

using namespace asyncstream;
using namespace asyncstream::test;

namespace {

using probe_atom = caf::atom_constant<caf::atom("probe")>;
using quit_atom = caf::atom_constant<caf::atom("quit")>;
using relay_atom = caf::atom_constant<caf::atom("relay")>;

/// What the counting actor saw (touched only inside the actor).
struct tally {
  std::thread::id host;
  std::map<std::uint64_t, std::uint64_t> next_seq;
  std::uint64_t total = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t ran_elsewhere = 0;
  /// Set while a handler runs: a second one at the same time is a breach.
  std::atomic<bool> busy{false};
  std::atomic<std::uint64_t> overlaps{0};
  /// `total`, readable from outside.
  std::atomic<std::uint64_t> seen{0};
};

struct hosted {
  caf::actor hdl;
  std::shared_ptr<detail::own_thread_inbox> inbox;
};

hosted spawn_counter(caf::actor_system& sys, std::shared_ptr<tally> t) {
  hosted h;
  auto hdl = detail::spawn_on_own_thread(
    sys, "as.test",
    [t](caf::actor_companion* self) -> caf::behavior {
      t->host = std::this_thread::get_id();
      return {
        [t](std::uint64_t sender, std::uint64_t seq) {
          if (t->busy.exchange(true))
            ++t->overlaps;
          auto& want = t->next_seq[sender];
          if (seq != want)
            ++t->out_of_order;
          want = seq + 1;
          ++t->total;
          ++t->seen;
          if (std::this_thread::get_id() != t->host)
            ++t->ran_elsewhere;
          t->busy = false;
        },
        [t](probe_atom) {
          return std::make_tuple(t->total, t->out_of_order, t->ran_elsewhere,
                                 t->overlaps.load());
        },
        [self](quit_atom) { self->quit(); },
      };
    },
    &h.inbox);
  REQUIRE(hdl);
  REQUIRE(h.inbox);
  h.hdl = std::move(*hdl);
  return h;
}

} // namespace

TEST_SUITE("own_thread") {
  TEST_CASE_FIXTURE(system_fixture,
                    "send_or_run: every sender's messages arrive once and in "
                    "order, one handler at a time, whichever thread runs "
                    "them") {
    auto t = std::make_shared<tally>();
    auto a = spawn_counter(sys, t);
    constexpr std::uint64_t senders = 4;
    constexpr std::uint64_t per_sender = 20000;
    std::vector<std::thread> threads;
    for (std::uint64_t id = 0; id < senders; ++id)
      threads.emplace_back([&, id] {
        for (std::uint64_t seq = 0; seq < per_sender; ++seq) {
          // Half through the inbox (run here when idle), half as plain
          // sends through the companion's hook, interleaved.
          if (seq % 2 == 0)
            detail::send_or_run(*a.inbox, caf::make_message(id, seq));
          else
            caf::anon_send(a.hdl, id, seq);
        }
      });
    for (auto& th : threads)
      th.join();
    caf::scoped_actor self{sys};
    self->request(a.hdl, caf::infinite, probe_atom::value)
      .receive(
        [&](std::uint64_t total, std::uint64_t out_of_order,
            std::uint64_t ran_elsewhere, std::uint64_t overlaps) {
          CHECK(total == senders * per_sender);
          CHECK(out_of_order == 0);
          CHECK(overlaps == 0);
          MESSAGE(ran_elsewhere << " of " << total
                                << " messages ran on their sender's thread");
        },
        [&](caf::error& err) { FAIL("probe failed: " << sys.render(err)); });
    caf::anon_send(a.hdl, quit_atom::value);
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "send_or_run: an idle actor runs on the sender's thread, "
                    "a busy one is only queued") {
    auto t = std::make_shared<tally>();
    auto a = spawn_counter(sys, t);
    caf::scoped_actor self{sys};
    // Each round waits for the answer, so the actor goes idle between
    // rounds: at least one send must find it asleep (bounded: 1000 rounds).
    std::uint64_t ran_here = 0;
    std::uint64_t rounds = 0;
    for (; rounds < 1000 && ran_here == 0; ++rounds) {
      detail::send_or_run(*a.inbox,
                          caf::make_message(std::uint64_t{0}, rounds));
      self->request(a.hdl, caf::infinite, probe_atom::value)
        .receive(
          [&](std::uint64_t total, std::uint64_t out_of_order,
              std::uint64_t ran_elsewhere, std::uint64_t) {
            CHECK(total == rounds + 1);
            CHECK(out_of_order == 0);
            ran_here = ran_elsewhere;
          },
          [&](caf::error& err) { FAIL("probe failed: " << sys.render(err)); });
    }
    CHECK(ran_here > 0);
    MESSAGE("the first run on the sender's thread came in round " << rounds);
    caf::anon_send(a.hdl, quit_atom::value);
  }

  TEST_CASE_FIXTURE(system_fixture,
                    "send_or_run: an actor that ends in a sender's run answers "
                    "later requests with request_receiver_down and its "
                    "thread ends") {
    // The quit must run on this thread for the test to mean something:
    // try fresh actors until one does (bounded: 200).
    bool ended_here = false;
    for (int i = 0; i < 200 && !ended_here; ++i) {
      auto where = std::make_shared<std::atomic<bool>>(false);
      std::shared_ptr<detail::own_thread_inbox> inbox;
      auto me = std::this_thread::get_id();
      auto hdl = detail::spawn_on_own_thread(
        sys, "as.test",
        [where, me](caf::actor_companion* self) -> caf::behavior {
          return {
            [self, where, me](quit_atom) {
              *where = std::this_thread::get_id() == me;
              self->quit();
            },
            [](probe_atom) { return std::uint64_t{1}; },
          };
        },
        &inbox);
      REQUIRE(hdl);
      // Let the actor go idle first: a request it answers.
      caf::scoped_actor self{sys};
      self->request(*hdl, caf::infinite, probe_atom::value)
        .receive([](std::uint64_t) {},
                 [&](caf::error& err) { FAIL(sys.render(err)); });
      detail::send_or_run(*inbox, caf::make_message(quit_atom::value));
      if (!where->load())
        continue; // ended on its own thread: not this test's case
      ended_here = true;
      // Sent after the run that ended it: answered, never dropped.
      self->request(*hdl, caf::infinite, probe_atom::value)
        .receive([](std::uint64_t) { FAIL("a dead actor answered"); },
                 [&](caf::error& err) {
                   CHECK(err == caf::sec::request_receiver_down);
                 });
      // And through the inbox too.
      detail::send_or_run(*inbox, caf::make_message(quit_atom::value));
    }
    CHECK(ended_here);
  } // ~actor_system waits for every hosting thread: hangs if one stayed

  TEST_CASE_FIXTURE(system_fixture,
                    "send_or_run: runs never nest: an actor running on a "
                    "sender's thread only queues for another one") {
    auto t = std::make_shared<tally>();
    auto b = spawn_counter(sys, t);
    std::shared_ptr<detail::own_thread_inbox> a_inbox;
    auto relay_thread = std::make_shared<std::thread::id>();
    auto a = detail::spawn_on_own_thread(
      sys, "as.test",
      [b, relay_thread](caf::actor_companion* self) -> caf::behavior {
        return {
          [b, relay_thread](relay_atom, std::uint64_t seq) {
            *relay_thread = std::this_thread::get_id();
            detail::send_or_run(*b.inbox,
                                caf::make_message(std::uint64_t{7}, seq));
          },
          [](probe_atom) { return std::uint64_t{1}; },
          [self](quit_atom) { self->quit(); },
        };
      },
      &a_inbox);
    REQUIRE(a);
    caf::scoped_actor self{sys};
    for (std::uint64_t seq = 0; seq < 200; ++seq) {
      detail::send_or_run(*a_inbox, caf::make_message(relay_atom::value, seq));
      // A answered: its relay to B was queued at B (never run inside A).
      self->request(*a, caf::infinite, probe_atom::value)
        .receive([](std::uint64_t) {},
                 [&](caf::error& err) { FAIL(sys.render(err)); });
    }
    self->request(b.hdl, caf::infinite, probe_atom::value)
      .receive(
        [&](std::uint64_t total, std::uint64_t out_of_order,
            std::uint64_t ran_elsewhere, std::uint64_t overlaps) {
          CHECK(total == 200);
          CHECK(out_of_order == 0);
          CHECK(overlaps == 0);
          // Every message to B ran on B's own thread.
          CHECK(ran_elsewhere == 0);
        },
        [&](caf::error& err) { FAIL(sys.render(err)); });
    caf::anon_send(*a, quit_atom::value);
    caf::anon_send(b.hdl, quit_atom::value);
  }
}

TEST_SUITE("own_thread") {
  TEST_CASE_FIXTURE(system_fixture,
                    "try_enter: the caller acts as an idle actor until leave; "
                    "what is sent meanwhile waits, then runs in order") {
    auto t = std::make_shared<tally>();
    auto a = spawn_counter(sys, t);
    auto b = spawn_counter(sys, std::make_shared<tally>());
    caf::scoped_actor self{sys};
    auto probe = [&](const hosted& h, std::uint64_t want_total) {
      self->request(h.hdl, caf::infinite, probe_atom::value)
        .receive(
          [&](std::uint64_t total, std::uint64_t out_of_order, std::uint64_t,
              std::uint64_t overlaps) {
            CHECK(total == want_total);
            CHECK(out_of_order == 0);
            CHECK(overlaps == 0);
          },
          [&](caf::error& err) { FAIL(sys.render(err)); });
    };
    // The actor goes idle after each answer: one of 1000 tries must enter.
    bool entered = false;
    for (int i = 0; i < 1000 && !entered; ++i) {
      probe(a, 0);
      entered = detail::try_enter(*a.inbox);
    }
    REQUIRE(entered);
    // Holding the token: no second entry, not even into another actor
    // (runs never nest), and sends are only queued.
    CHECK_FALSE(detail::try_enter(*a.inbox));
    CHECK_FALSE(detail::try_enter(*b.inbox));
    for (std::uint64_t seq = 0; seq < 100; ++seq) {
      if (seq % 2 == 0)
        detail::send_or_run(*a.inbox, caf::make_message(std::uint64_t{1}, seq));
      else
        caf::anon_send(a.hdl, std::uint64_t{1}, seq);
    }
    CHECK(t->seen.load() == 0); // nothing ran: this thread holds the token
    detail::leave(*a.inbox);
    // After leave the actor's thread takes what was queued, in order.
    probe(a, 100);
    caf::anon_send(a.hdl, quit_atom::value);
    caf::anon_send(b.hdl, quit_atom::value);
  }
}
