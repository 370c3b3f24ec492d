#include "asyncstream/testing/fixture.hpp"

#include <algorithm>
#include <cstring>
#include <system_error>

#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/file_store.hpp"
#include "asyncstream/readers_monitor_actor.hpp"
#include "asyncstream/transfer_actor.hpp"

namespace asyncstream::testing {

namespace {

using read_atom = caf::atom_constant<caf::atom("as_pread")>;
using read_all_atom = caf::atom_constant<caf::atom("as_preadal")>;

struct probe_state {
  std::shared_ptr<probe_log> log;
  std::shared_ptr<std::uint64_t> clock;
  transfer_actor transfer;
  std::uint64_t id = 0;
};

using probe_actor = caf::stateful_actor<probe_state>;

/// Sends one request; with `follow`, asks for the next bytes after each
/// answer until the end or an error.
void probe_ask(probe_actor* self, std::uint64_t offset, std::uint64_t max,
               bool follow) {
  auto& st = self->state;
  ++st.log->outstanding;
  self
    ->request(st.transfer, caf::infinite, slice_request{st.id, offset, max})
    .then([self, max, follow](slice_result& res) {
      auto& st = self->state;
      --st.log->outstanding;
      st.log->arrival.push_back(++*st.clock);
      auto next = res.offset + res.size;
      bool more = follow && !res.end && !res.error;
      st.log->answers.push_back(std::move(res));
      if (more)
        probe_ask(self, next, max, true);
    });
}

caf::behavior probe_fun(probe_actor* self, std::shared_ptr<probe_log> log,
                        std::shared_ptr<std::uint64_t> clock,
                        transfer_actor transfer, std::uint64_t id) {
  self->state.log = std::move(log);
  self->state.clock = std::move(clock);
  self->state.transfer = std::move(transfer);
  self->state.id = id;
  return {
    [self](read_atom, std::uint64_t offset, std::uint64_t max) {
      probe_ask(self, offset, max, false);
    },
    [self](read_all_atom, std::uint64_t offset, std::uint64_t max) {
      probe_ask(self, offset, max, true);
    },
  };
}

} // namespace

void probe::request(std::uint64_t offset, std::uint64_t max_size) {
  caf::anon_send(handle_, read_atom::value, offset, max_size);
}

void probe::read_all(std::uint64_t offset, std::uint64_t max_size) {
  caf::anon_send(handle_, read_all_atom::value, offset, max_size);
}

void probe::cancel() {
  caf::anon_send(transfer_, cancel_atom::value, id_);
}

std::string probe::received() const {
  std::string out;
  for (auto& res : log_->answers)
    for (auto& s : res.slices)
      out += s.as_string_view();
  return out;
}

bool probe::ended() const {
  for (auto& res : log_->answers)
    if (res.end)
      return true;
  return false;
}

caf::error probe::error() const {
  for (auto& res : log_->answers)
    if (res.error)
      return res.error;
  return {};
}

fixture::fixture(stream_options opts) {
  configure(cfg_);
  cfg_.set("scheduler.policy", caf::atom("testing"));
  cfg_.set("logger.file-verbosity", caf::atom("quiet"));
  sys_ = std::make_unique<caf::actor_system>(cfg_);
  sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
  pool_ = opts.pool ? opts.pool : chunk_pool::make(opts.chunk_size);
  auto core = std::make_shared<detail::stream_core>();
  core->sys = sys_.get();
  core->options = opts;
  core->control = std::make_shared<detail::source_control>();
  core->counters = std::make_shared<detail::stream_counters>();
  transfer_config tcfg;
  tcfg.options = opts;
  tcfg.options.transfer_thread = false; // the test coordinator runs it
  tcfg.control = core->control;
  tcfg.counters = core->counters;
  if (opts.file) {
    std::error_code ec;
    file_ = file_store::create(opts.file->path, opts.file->directory, ec,
                               opts.file->map_window,
                               opts.file->cached_windows);
    if (!file_)
      throw std::system_error{ec, "testing::fixture: the stream file"};
    core->file = file_;
    tcfg.file = file_;
  }
  core->transfer = spawn_transfer(*sys_, std::move(tcfg));
  // The monitor tells the transfer actor when an owner's death closes a
  // reader (as in `stream::make`).
  core->monitor = spawn_readers_monitor(*sys_, opts.max_readers,
                                        core->counters, core->transfer);
  stream_ = asyncstream::stream::adopt(std::move(core));
  run();
}

fixture::~fixture() {
  for (auto& p : probes_)
    caf::anon_send_exit(p->handle(), caf::exit_reason::user_shutdown);
  probes_.clear();
  // Shut the actors down even if a test leaked a reader (which would keep
  // the stream core, and with it the actors, alive forever).
  caf::anon_send(transfer(), shutdown_atom::value);
  caf::anon_send(monitor(), shutdown_atom::value);
  stream_ = asyncstream::stream{};
  run();
}

void fixture::emit(std::string_view bytes) {
  while (!bytes.empty()) {
    if (!current_ || filled_ == current_->capacity()) {
      current_ = pool_->acquire();
      filled_ = 0;
    }
    auto n = std::min(bytes.size(), current_->capacity() - filled_);
    std::memcpy(current_->mutable_data() + filled_, bytes.data(), n);
    if (file_) {
      // Like the source reader: in the file before it is published.
      if (auto ec = file_->append(current_->data() + filled_, n))
        throw std::system_error{ec, "testing::fixture: appending"};
    }
    caf::anon_send(transfer(), next_slice{slice{current_, filled_, n}});
    filled_ += n;
    emitted_ += n;
    bytes.remove_prefix(n);
  }
}

void fixture::end() {
  caf::anon_send(transfer(), source_end{});
}

void fixture::fail(caf::error err) {
  caf::anon_send(transfer(), source_end{std::move(err)});
}

std::size_t fixture::run() {
  return sched_->run();
}

bool fixture::run_once() {
  return sched_->try_run_once();
}

std::size_t fixture::jobs() const noexcept {
  return sched_->jobs.size();
}

caf::actor_addr fixture::job(std::size_t i) const {
  if (i >= sched_->jobs.size())
    return {};
  auto* ptr = dynamic_cast<caf::abstract_actor*>(sched_->jobs[i]);
  return ptr != nullptr ? ptr->address() : caf::actor_addr{};
}

bool fixture::run_job(std::size_t i) {
  auto& q = sched_->jobs;
  if (i >= q.size())
    return false;
  if (i != 0) {
    auto it = q.begin() + static_cast<std::ptrdiff_t>(i);
    std::rotate(q.begin(), it, it + 1);
  }
  sched_->run_once();
  return true;
}

caf::expected<stream_writer> fixture::writer() {
  if (!writer_offered_) {
    writer_offered_ = true;
    stream_.core()->writer_available = true;
  }
  return stream_.writer();
}

probe& fixture::add_probe() {
  auto log = std::make_shared<probe_log>();
  auto id = detail::stream_core::next_reader_id();
  auto handle = sys_->spawn(probe_fun, log, clock_, transfer(), id);
  probes_.emplace_back(std::make_unique<probe>(handle, transfer(), id, log));
  return *probes_.back();
}

std::uint64_t fixture::credit() const {
  return stream_.core()->control->allowed();
}

bool fixture::stopped() const {
  return stream_.core()->control->stopped();
}

stream_status fixture::status() {
  auto log = std::make_shared<stream_status>();
  auto asker = sys_->spawn([log, t = transfer()](caf::event_based_actor* self) {
    self->request(t, caf::infinite, status_atom::value)
      .then([self, log](stream_status& st) {
        *log = std::move(st);
        self->quit();
      });
  });
  run();
  return *log;
}

} // namespace asyncstream::testing
