// Deterministic tests of the kernel's actor contract (issue 9): tethers,
// positional requests, readers owned by actors, data_loss ranges, max lag,
// errors at their position. The actors run on CAF's test coordinator; time
// is the coordinator's clock. The harness here builds the transfer and
// monitor actors the way `stream::make` does (the monitor knows the
// transfer actor), without a source thread: the test is the source.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message_id.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "asyncstream/body_index.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/readers_monitor_actor.hpp"
#include "asyncstream/transfer_actor.hpp"

using namespace asyncstream;

namespace {

constexpr auto unlimited = std::numeric_limits<std::uint64_t>::max();

/// One stream's actors on the test coordinator; the test is the source.
struct kernel {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<detail::source_control> control
    = std::make_shared<detail::source_control>();
  std::shared_ptr<detail::stream_counters> counters
    = std::make_shared<detail::stream_counters>();
  transfer_actor transfer;
  monitor_actor monitor;
  std::shared_ptr<chunk_pool> pool = chunk_pool::make(4096);
  mutable_chunk_ptr current;
  std::size_t filled = 0;
  std::vector<caf::actor> clients;

  explicit kernel(stream_options opts = {}) {
    configure(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    transfer_config tcfg;
    tcfg.options = opts;
    tcfg.options.transfer_thread = false;
    tcfg.control = control;
    tcfg.counters = counters;
    transfer = spawn_transfer(*sys, std::move(tcfg));
    monitor = spawn_readers_monitor(*sys, opts.max_readers, counters, transfer);
    run();
  }

  ~kernel() {
    for (auto& c : clients)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
    caf::anon_send(transfer, shutdown_atom::value);
    caf::anon_send(monitor, shutdown_atom::value);
    run();
  }

  void run() {
    sched->run();
  }

  void emit(std::string_view bytes) {
    while (!bytes.empty()) {
      if (!current || filled == current->capacity()) {
        current = pool->acquire();
        filled = 0;
      }
      auto n = std::min(bytes.size(), current->capacity() - filled);
      std::memcpy(current->mutable_data() + filled, bytes.data(), n);
      caf::anon_send(transfer, next_slice{slice{current, filled, n}});
      filled += n;
      bytes.remove_prefix(n);
    }
  }

  void end(caf::error err = {}) {
    caf::anon_send(transfer, source_end{std::move(err)});
  }

  std::uint64_t credit() const {
    return control->allowed();
  }

  std::uint64_t open_readers() const {
    return counters->readers.load();
  }

  std::uint64_t parked() const {
    return counters->parked.load();
  }

  std::uint64_t oldest() const {
    return counters->oldest.load();
  }

  template <class F>
  caf::actor spawn(F fun) {
    auto hdl = sys->spawn(std::move(fun));
    clients.push_back(hdl);
    return hdl;
  }
};

/// What a scripted client saw.
struct client_log {
  std::vector<slice_result> answers;
  std::vector<caf::error> errors;
  std::vector<std::uint64_t> tethers;
  bool granted = false;
  caf::error open_error;

  std::string bytes() const {
    std::string out;
    for (auto& res : answers)
      for (auto& s : res.slices)
        out += s.as_string_view();
    return out;
  }
};

using req_atom = caf::atom_constant<caf::atom("t_req")>;
using quit_atom = caf::atom_constant<caf::atom("t_quit")>;
using throw_atom = caf::atom_constant<caf::atom("t_throw")>;

/// A reader as the reader side sends it: open with an owner (itself), then
/// `tether_atom` at `start`; `req_atom` sends a request.
caf::behavior scripted_reader(caf::event_based_actor* self, kernel* k,
                              std::uint64_t id, std::uint64_t start,
                              std::shared_ptr<client_log> log) {
  self
    ->request(k->monitor, caf::infinite, open_atom::value, id, self->address())
    .then(
      [=](std::uint64_t) {
        log->granted = true;
        self->request(k->transfer, caf::infinite, tether_atom::value, id, start)
          .then([=](std::uint64_t pos) { log->tethers.push_back(pos); },
                [=](caf::error& err) { log->errors.push_back(err); });
      },
      [=](caf::error& err) { log->open_error = std::move(err); });
  return {
    [=](req_atom, std::uint64_t offset, std::uint64_t max, bool positional) {
      slice_request req{id, offset, max, positional};
      self->request(k->transfer, caf::infinite, req)
        .then(
          [=](slice_result& res) { log->answers.push_back(std::move(res)); },
          [=](caf::error& err) { log->errors.push_back(err); });
    },
    [=](quit_atom) { self->quit(); },
    [=](throw_atom) { throw std::runtime_error("owner fails"); },
  };
}

stream_options tethered(std::uint64_t window) {
  stream_options opts;
  opts.retention = window;
  opts.policy = retention_policy::tethered;
  return opts;
}

} // namespace

TEST_SUITE("contract") {
  TEST_CASE("tether: a reader is tethered from the moment it opens") {
    kernel k{tethered(10)};
    auto log = std::make_shared<client_log>();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    REQUIRE(log->granted);
    REQUIRE(log->tethers == std::vector<std::uint64_t>{0});
    CHECK(k.credit() == 10);    // held at its position before any read
    k.emit("0123456789ABCDEF"); // the test source ignores the credit
    k.run();
    CHECK(k.oldest() == 0); // nothing the reader needs was dropped
    caf::anon_send(k.clients[0], req_atom::value, std::uint64_t{0},
                   std::uint64_t{100}, false);
    k.run();
    REQUIRE(log->answers.size() == 1);
    CHECK(log->bytes() == "0123456789ABCDEF");
  }

  TEST_CASE("tether: an open registers at the oldest kept byte, not below") {
    kernel k{tethered(10)};
    k.emit("0123456789ABCDEF"); // nobody reading: 6..15 kept
    k.run();
    CHECK(k.oldest() == 6);
    auto log = std::make_shared<client_log>();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    REQUIRE(log->tethers == std::vector<std::uint64_t>{6});
    CHECK(k.credit() == 16);
  }

  TEST_CASE("tether: without a tethered window it answers the offset") {
    stream_options opts;
    opts.retention = 10; // untethered
    kernel k{opts};
    auto log = std::make_shared<client_log>();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 42, log);
    });
    k.run();
    CHECK(log->tethers == std::vector<std::uint64_t>{42});
    CHECK(k.credit() == unlimited);
  }

  TEST_CASE("tether: positional and zero-length requests never move it") {
    kernel k{tethered(10)};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    CHECK(k.credit() == 10);
    // wait_for(12) and read_at(5): positional.
    caf::anon_send(r, req_atom::value, std::uint64_t{12}, std::uint64_t{1},
                   true);
    caf::anon_send(r, req_atom::value, std::uint64_t{5}, std::uint64_t{3},
                   true);
    // A zero-length question at 8 ("at the end? an error there?").
    caf::anon_send(r, req_atom::value, std::uint64_t{8}, std::uint64_t{0},
                   false);
    k.run();
    CHECK(k.credit() == 10);
    k.emit("0123456789ABCDEF");
    k.run();
    CHECK(k.oldest() == 0);
    CHECK(log->bytes() == "567C"); // read_at(5, 3), then wait_for(12)
  }

  TEST_CASE("tether: only ordinary reads move it") {
    kernel k{tethered(10)};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    caf::anon_send(r, req_atom::value, std::uint64_t{5}, std::uint64_t{3},
                   false);
    k.run();
    CHECK(k.credit() == 15);
  }

  TEST_CASE("tether: a closed reader's late tether and requests are refused") {
    kernel k{tethered(10)};
    caf::anon_send(k.transfer, cancel_atom::value, std::uint64_t{7});
    k.run();
    std::vector<std::string> events;
    k.spawn([&](caf::event_based_actor* self) {
      self
        ->request(k.transfer, caf::infinite, tether_atom::value,
                  std::uint64_t{7}, std::uint64_t{0})
        .then([&](std::uint64_t) { events.push_back("tethered"); },
              [&](caf::error& err) {
                events.push_back(is(err, errc::closed) ? "closed" : "other");
              });
      self->request(k.transfer, caf::infinite, slice_request{7, 0, 10, false})
        .then([&](slice_result& res) {
          events.push_back(is(res.error, errc::closed) ? "read closed"
                                                       : "read other");
        });
    });
    k.run();
    CHECK(events == std::vector<std::string>{"closed", "read closed"});
    CHECK(k.credit() == unlimited); // never tethered
    CHECK(k.parked() == 0);         // never parked
  }

  TEST_CASE("owner: a reader is closed when its owner quits") {
    kernel k{tethered(10)};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    caf::anon_send(r, req_atom::value, std::uint64_t{0}, std::uint64_t{10},
                   false);
    k.run();
    CHECK(k.open_readers() == 1);
    CHECK(k.parked() == 1);
    CHECK(k.credit() == 10);
    caf::anon_send(r, quit_atom::value);
    k.run();
    CHECK(k.open_readers() == 0);   // slot freed
    CHECK(k.parked() == 0);         // its parked request answered
    CHECK(k.credit() == unlimited); // tether released
  }

  TEST_CASE("owner: a reader is closed when its owner is killed") {
    kernel k{tethered(10)};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    caf::anon_send(r, req_atom::value, std::uint64_t{3}, std::uint64_t{10},
                   false);
    k.run();
    CHECK(k.credit() == 13);
    // Killed with an exit reason of its own (no exit handler: it dies).
    r->enqueue(nullptr, caf::make_message_id(),
               caf::make_message(
                 caf::exit_msg{r.address(), make_error(errc::io_error,
                                                       "killed by the test")}),
               nullptr);
    k.run();
    CHECK(k.open_readers() == 0);
    CHECK(k.parked() == 0);
    CHECK(k.credit() == unlimited);
  }

  TEST_CASE("owner: a reader is closed when its owner throws") {
    kernel k{tethered(10)};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    caf::anon_send(r, req_atom::value, std::uint64_t{0}, std::uint64_t{10},
                   false);
    k.run();
    CHECK(k.parked() == 1);
    caf::anon_send(r, throw_atom::value);
    k.run();
    CHECK(k.open_readers() == 0);
    CHECK(k.parked() == 0);
    CHECK(k.credit() == unlimited);
  }

  TEST_CASE("owner: an owner's death frees the slot for the next open") {
    stream_options opts;
    opts.max_readers = 1;
    kernel k{opts};
    auto first = std::make_shared<client_log>();
    auto second = std::make_shared<client_log>();
    auto a = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, first);
    });
    k.run();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 2, 0, second);
    });
    k.run();
    CHECK(first->granted);
    CHECK_FALSE(second->granted); // waits for the one slot
    caf::anon_send(a, quit_atom::value);
    k.run();
    CHECK(second->granted);
    CHECK(k.open_readers() == 1);
  }

  TEST_CASE("owner: an owner that dies while its open waits never takes a "
            "slot") {
    stream_options opts;
    opts.max_readers = 1;
    kernel k{opts};
    auto first = std::make_shared<client_log>();
    auto waiting = std::make_shared<client_log>();
    auto third = std::make_shared<client_log>();
    auto a = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, first);
    });
    k.run();
    auto b = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 2, 0, waiting);
    });
    k.run();
    CHECK(k.counters->waiting.load() == 1);
    caf::anon_send(b, quit_atom::value); // dies while its open waits
    k.run();
    CHECK(k.counters->waiting.load() == 0);
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 3, 0, third);
    });
    k.run();
    CHECK_FALSE(third->granted);
    caf::anon_send(a, quit_atom::value);
    k.run();
    CHECK(third->granted); // the slot went to the live waiter
    CHECK(k.open_readers() == 1);
  }

  TEST_CASE("owner: a closed reader's owner is no longer watched") {
    kernel k;
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    caf::anon_send(k.monitor, close_atom::value, std::uint64_t{1});
    k.run();
    CHECK(k.open_readers() == 0);
    // A second reader of another owner keeps its slot when the first owner
    // goes: only the dead owner's readers are closed.
    auto other = std::make_shared<client_log>();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 2, 0, other);
    });
    k.run();
    caf::anon_send(r, quit_atom::value);
    k.run();
    CHECK(k.open_readers() == 1);
  }

  TEST_CASE("owner: an open whose owner is already dead is closed at once") {
    kernel k{tethered(10)};
    auto dead = k.spawn([](caf::event_based_actor* self) -> caf::behavior {
      self->quit();
      return {};
    });
    k.run();
    bool granted = false;
    k.spawn([&, dead](caf::event_based_actor* self) {
      self
        ->request(k.monitor, caf::infinite, open_atom::value, std::uint64_t{5},
                  dead.address())
        .then([&](std::uint64_t) { granted = true; });
    });
    k.run();
    CHECK(granted); // granted, then closed by the down message
    CHECK(k.open_readers() == 0);
  }

  TEST_CASE("data_loss carries its range as numbers") {
    stream_options opts;
    opts.retention = 10;
    kernel k{opts};
    k.emit("0123456789ABCDEF");
    k.run();
    caf::error err;
    k.spawn([&](caf::event_based_actor* self) {
      self->request(k.transfer, caf::infinite, slice_request{1, 2, 10, false})
        .then([&](slice_result& res) { err = std::move(res.error); });
    });
    k.run();
    REQUIRE(is(err, errc::data_loss));
    auto range = data_loss_range(err);
    REQUIRE(range);
    CHECK(range->offset == 2);
    CHECK(range->oldest == 6);
    CHECK(render(err).find("4 bytes lost: offset 2, oldest kept 6")
          != std::string::npos);
    CHECK_FALSE(data_loss_range(make_error(errc::io_error)));
    CHECK_FALSE(data_loss_range(caf::error{}));
    CHECK_FALSE(data_loss_range(make_error(errc::data_loss, "no numbers")));
  }

  TEST_CASE("a zero-length request at a pending error's position answers it") {
    kernel k;
    k.emit("abc");
    k.end(make_error(errc::io_error, "disk on fire"));
    k.run();
    std::vector<slice_result> got;
    k.spawn([&](caf::event_based_actor* self) {
      for (std::uint64_t off : {1, 3, 5})
        self
          ->request(k.transfer, caf::infinite, slice_request{1, off, 0, false})
          .then([&](slice_result& res) { got.push_back(std::move(res)); });
    });
    k.run();
    REQUIRE(got.size() == 3);
    CHECK_FALSE(got[0].error); // below the error: 0 bytes, at once
    CHECK(got[0].size == 0);
    CHECK(is(got[1].error, errc::io_error)); // at its byte
    CHECK(is(got[2].error, errc::io_error)); // past it
    for (auto& res : got)
      CHECK(res.slices.empty());
  }

  TEST_CASE("a zero-length request never waits and tells the end") {
    kernel k;
    k.emit("abc");
    k.run();
    std::vector<slice_result> got;
    auto ask = [&](std::uint64_t off) {
      k.spawn([&, off](caf::event_based_actor* self) {
        self->request(k.transfer, caf::infinite, slice_request{1, off, 0, true})
          .then([&](slice_result& res) { got.push_back(std::move(res)); });
      });
      k.run();
    };
    ask(3); // the live end: 0 at once, no end yet
    REQUIRE(got.size() == 1);
    CHECK_FALSE(got[0].end);
    CHECK_FALSE(got[0].error);
    CHECK(k.parked() == 0);
    k.end();
    k.run();
    ask(3);
    REQUIRE(got.size() == 2);
    CHECK(got[1].end); // at the end of a finished stream
    ask(2);
    REQUIRE(got.size() == 3);
    CHECK_FALSE(got[2].end); // a byte remains
  }

  TEST_CASE("a zero-length request below the window answers data_loss") {
    stream_options opts;
    opts.retention = 4;
    kernel k{opts};
    k.emit("0123456789");
    k.run();
    caf::error err;
    k.spawn([&](caf::event_based_actor* self) {
      self->request(k.transfer, caf::infinite, slice_request{1, 2, 0, true})
        .then([&](slice_result& res) { err = std::move(res.error); });
    });
    k.run();
    REQUIRE(is(err, errc::data_loss));
    auto range = data_loss_range(err);
    REQUIRE(range);
    CHECK(range->offset == 2);
    CHECK(range->oldest == 6);
  }

  TEST_CASE("max lag: a stuck tethered reader is cut loose after max_lag") {
    using namespace std::chrono_literals;
    auto opts = tethered(10);
    opts.max_lag = caf::timespan{1s};
    kernel k{opts};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    k.emit("0123456789"); // the window is full: the producer is held
    k.run();
    CHECK(k.credit() == 10);
    k.sched->advance_time(999ms);
    k.run();
    CHECK(k.credit() == 10); // not yet
    k.sched->advance_time(1ms);
    k.run();
    CHECK(k.credit() == unlimited); // cut loose: nothing holds the producer
    k.emit("ABCDEF");
    k.run();
    CHECK(k.oldest() == 6); // the window moves on
    // Its later reads below the oldest kept byte get data_loss, with the
    // range; its requests no longer tether it.
    caf::anon_send(r, req_atom::value, std::uint64_t{0}, std::uint64_t{100},
                   false);
    k.run();
    REQUIRE(log->answers.size() == 1);
    CHECK(is(log->answers[0].error, errc::data_loss));
    caf::anon_send(r, req_atom::value, std::uint64_t{6}, std::uint64_t{100},
                   false);
    k.run();
    CHECK(k.credit() == unlimited);
  }

  TEST_CASE("max lag: a reader that moves is not cut: each move restarts the "
            "time") {
    using namespace std::chrono_literals;
    auto opts = tethered(10);
    opts.max_lag = caf::timespan{1s};
    kernel k{opts};
    auto log = std::make_shared<client_log>();
    auto r = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    k.emit("0123456789"); // held from t = 0
    k.run();
    k.sched->advance_time(600ms);
    k.run();
    caf::anon_send(r, req_atom::value, std::uint64_t{5}, std::uint64_t{5},
                   false); // reads on: tether 5, credit 15, not held
    k.run();
    CHECK(k.credit() == 15);
    k.emit("ABCDE"); // held again from t = 600 ms
    k.run();
    k.sched->advance_time(600ms); // 1.2 s since the first hold
    k.run();
    CHECK(k.credit() == 15);      // still tethered
    k.sched->advance_time(400ms); // 1 s since this hold
    k.run();
    CHECK(k.credit() == unlimited);
  }

  TEST_CASE("max lag: only the slowest readers are cut: the next one is timed "
            "anew") {
    using namespace std::chrono_literals;
    auto opts = tethered(10);
    opts.max_lag = caf::timespan{1s};
    kernel k{opts};
    auto slow = std::make_shared<client_log>();
    auto fast = std::make_shared<client_log>();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, slow);
    });
    auto f = k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 2, 0, fast);
    });
    k.run();
    caf::anon_send(f, req_atom::value, std::uint64_t{4}, std::uint64_t{1},
                   false); // parked until byte 4 comes
    k.run();
    k.emit("0123456789");
    k.run();
    CHECK(k.credit() == 10); // the slow reader at 0 holds it
    k.sched->advance_time(1s);
    k.run();
    CHECK(k.credit() == 14); // slow cut loose: the fast one at 4 holds now
    k.emit("ABCD");          // full again, held by the fast reader
    k.run();
    CHECK(k.oldest() == 4);
    k.sched->advance_time(999ms);
    k.run();
    CHECK(k.credit() == 14);
    k.sched->advance_time(1ms);
    k.run();
    CHECK(k.credit() == unlimited);
  }

  TEST_CASE("max lag: no timer without a hold, and none without max_lag") {
    using namespace std::chrono_literals;
    auto opts = tethered(10);
    opts.max_lag = caf::timespan{1s};
    kernel k{opts};
    auto log = std::make_shared<client_log>();
    k.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &k, 1, 0, log);
    });
    k.run();
    k.emit("01234"); // half the window: not held
    k.run();
    k.sched->advance_time(10s);
    k.run();
    CHECK(k.credit() == 10); // still tethered
    kernel plain{tethered(10)};
    auto log2 = std::make_shared<client_log>();
    plain.spawn([&](caf::event_based_actor* self) {
      return scripted_reader(self, &plain, 1, 0, log2);
    });
    plain.run();
    plain.emit("0123456789");
    plain.run();
    plain.sched->advance_time(3600s);
    plain.run();
    CHECK(plain.credit() == 10); // held forever, as asked
  }

  TEST_CASE("offsets near the top of the range neither overflow nor crash") {
    constexpr auto top = std::numeric_limits<std::uint64_t>::max();
    constexpr auto big
      = std::uint64_t{std::numeric_limits<std::int64_t>::max()};
    stream_options opts;
    opts.read_ahead = 100;
    kernel k{opts};
    k.emit("abc");
    k.run();
    std::vector<slice_result> got;
    k.spawn([&](caf::event_based_actor* self) {
      for (auto off : {top, top - 1, big, big + 1})
        for (auto n : {std::uint64_t{0}, std::uint64_t{1}, top})
          self
            ->request(k.transfer, caf::infinite, slice_request{1, off, n, true})
            .then([&](slice_result& res) { got.push_back(std::move(res)); });
    });
    k.run();
    CHECK(got.size() == 4); // the zero-length ones, at once; the rest park
    CHECK(k.credit() == unlimited); // the demand saturates
    k.end();
    k.run();
    CHECK(got.size() == 12); // all answered: the end
    for (auto& res : got) {
      CHECK(res.size == 0);
      CHECK_FALSE(res.error);
    }
    // The indexes on their own.
    body_index body;
    body.append(slice{k.pool->acquire(), 0, 3});
    std::vector<slice> out;
    CHECK(body.collect(top, 10, out) == 0);
    CHECK(body.collect(top - 1, std::numeric_limits<std::size_t>::max(), out)
          == 0);
    body.drop_front(top);
    CHECK(body.begin() == 3);
    std::error_code ec;
    auto file = file_store::create("", "", ec);
    REQUIRE(file);
    std::byte b[3] = {};
    REQUIRE_FALSE(file->append(b, 3));
    CHECK(file->collect(top, 10, out, ec) == 0);
    CHECK(file->collect(2, std::numeric_limits<std::size_t>::max(), out, ec)
          == 1);
    CHECK_FALSE(ec);
  }

} // TEST_SUITE
