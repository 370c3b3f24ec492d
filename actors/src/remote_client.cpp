// The reading node: a local proxy actor that speaks the local protocol to
// the readers of a remote stream (it stands in for the transfer actor and
// the readers monitor) and the remote protocol to the stream's node.
#include <deque>
#include <unordered_map>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

#include "asyncstream/detail/blocking_client.hpp"
#include "asyncstream/detail/source_control.hpp"
#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/detail/stream_counters.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/remote.hpp"
#include "asyncstream/remote_protocol.hpp"

namespace asyncstream::remote {

namespace {

/// The window bounds (the session clamps to the same).
constexpr std::uint64_t min_window = 64u << 10;
constexpr std::uint64_t max_window = 64u << 20;

/// A read of an open reader that waits for pushed bytes.
struct parked_read {
  caf::response_promise rp;
  std::uint64_t max = 0;
};

/// One remote reader: what its session pushed and its user did not take.
struct reader_entry {
  session_actor session;
  caf::actor_addr owner;
  std::uint64_t gen = 1;
  /// The reader's next ordinary offset: the first held byte.
  std::uint64_t pos = 0;
  std::deque<slice> held;
  std::uint64_t held_bytes = 0;
  /// The stream's end or error right after the held bytes.
  bool final = false;
  bool end = false;
  caf::error error;
  /// The session is gone (or broke the protocol): nothing more comes.
  bool broken = false;
  /// The allowance sent to the session (an absolute offset).
  std::uint64_t allowed = 0;
  std::deque<parked_read> parked;
  /// Positional reads in flight (answered with the error if the session
  /// goes away: a lost node never answers).
  std::vector<caf::response_promise> positional;
};

/// An open waiting for the node's answer.
struct pending_open {
  caf::response_promise rp;
  std::uint64_t token = 0;
  caf::actor_addr owner;
};

caf::error lost(const std::string& node, const std::string& what) {
  return make_error(errc::disconnected,
                    "the connection to " + node + " broke (" + what + ")");
}

slice_result error_result(std::uint64_t offset, caf::error err) {
  slice_result res;
  res.offset = offset;
  res.error = std::move(err);
  return res;
}

class proxy_actor : public caf::event_based_actor {
public:
  proxy_actor(caf::actor_config& cfg, directory_actor dir, std::string name,
              std::string node, std::uint64_t window,
              std::shared_ptr<detail::stream_counters> counters)
    : caf::event_based_actor(cfg)
    , dir_(std::move(dir))
    , name_(std::move(name))
    , node_(std::move(node))
    , window_(std::clamp(window, min_window, max_window))
    , counters_(std::move(counters)) {
    // nop
  }

  const char* name() const override {
    return "asyncstream.remote_proxy";
  }

  void on_exit() override {
    readers_.clear();
    by_session_.clear();
    opens_.clear();
    zero_waiters_.clear();
    dir_ = nullptr;
  }

  caf::behavior make_behavior() override {
    monitor(dir_);
    set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
    return {
      // -- as the readers monitor -------------------------------------------
      [this](open_atom, std::uint64_t id) { return open(id, {}); },
      [this](open_atom, std::uint64_t id, const caf::actor_addr& owner) {
        return open(id, owner);
      },
      [this](close_atom, std::uint64_t id) {
        close_reader(id, make_error(errc::closed, "reader closed"));
      },
      [this](wait_zero_atom) -> caf::result<std::uint64_t> {
        if (readers_.empty() && opens_.empty())
          return std::uint64_t{0};
        zero_waiters_.push_back(make_response_promise());
        return zero_waiters_.back();
      },
      [this](refuse_atom, caf::error& err) {
        if (!refusal_)
          refusal_ = err;
        auto opens = std::move(opens_);
        opens_.clear();
        for (auto& [id, op] : opens) {
          send(dir_, cancel_atom::value, op.token);
          op.rp.deliver(refusal_);
        }
        publish_counts();
        check_zero();
      },
      [this](count_atom) {
        return caf::make_message(std::uint64_t{readers_.size()},
                                 std::uint64_t{opens_.size()});
      },
      // -- as the transfer actor ----------------------------------------------
      [this](slice_request& req) -> caf::result<slice_result> {
        return read(req);
      },
      [](tether_atom, std::uint64_t, std::uint64_t offset) -> std::uint64_t {
        // The session's position is the tether on the stream's node.
        return offset;
      },
      [this](cancel_atom, std::uint64_t id) {
        close_reader(id, make_error(errc::closed, "reader closed"));
      },
      [this](withdraw_atom, std::uint64_t id) {
        auto i = readers_.find(id);
        if (i == readers_.end())
          return;
        auto& r = i->second;
        auto parked = std::move(r.parked);
        r.parked.clear();
        for (auto& p : parked)
          p.rp.deliver(error_result(r.pos, make_error(errc::timeout)));
        if (!r.positional.empty())
          send(r.session, withdraw_atom::value);
      },
      [this](status_atom) { return ask(status_atom::value); },
      [this](wait_atom) { return ask(wait_atom::value); },
      [this](abort_atom) {
        aborted_ = true;
        if (!refusal_)
          refusal_ = make_error(errc::canceled);
        close_all(make_error(errc::canceled));
      },
      [](close_atom) {
        // A graceful close of this handle: nothing to stop here (the
        // stream on its node is not ours); open readers read on.
      },
      [](release_atom) {},
      [](lag_atom, std::uint64_t) {},
      [](next_slice&) {},
      [](source_end&) {},
      [this](shutdown_atom) {
        close_all(make_error(errc::stream_gone));
        quit();
      },
      // -- from the stream's node ---------------------------------------------
      [this](remote_chunk& c) { on_chunk(c); },
    };
  }

private:
  caf::result<std::uint64_t> open(std::uint64_t id, caf::actor_addr owner) {
    if (refusal_)
      return refusal_;
    if (dir_down_)
      return dir_down_;
    if (readers_.count(id) != 0)
      return id;
    if (opens_.count(id) != 0)
      return make_error(errc::invalid_argument,
                        "reader " + std::to_string(id)
                          + " already waits for a slot");
    auto rp = make_response_promise();
    auto token = ++tokens_;
    opens_.emplace(id, pending_open{rp, token, owner});
    if (owner)
      watch_owner(owner);
    publish_counts();
    open_request req;
    req.name = name_;
    req.offset = 0;
    req.window = window_;
    req.token = token;
    request(dir_, caf::infinite, open_atom::value, std::move(req))
      .then(
        [this, id, token](open_reply& rep) {
          auto i = opens_.find(id);
          if (i == opens_.end() || i->second.token != token) {
            // Withdrawn meanwhile: end the session we no longer want.
            send(rep.session, close_atom::value);
            return;
          }
          auto op = std::move(i->second);
          opens_.erase(i);
          reader_entry r;
          r.session = rep.session;
          r.owner = op.owner;
          r.allowed = window_;
          monitor(r.session);
          by_session_[r.session.address()] = id;
          readers_.emplace(id, std::move(r));
          note_status(rep.status);
          publish_counts();
          op.rp.deliver(id);
        },
        [this, id, token](caf::error& err) {
          auto i = opens_.find(id);
          if (i == opens_.end() || i->second.token != token)
            return;
          auto op = std::move(i->second);
          opens_.erase(i);
          publish_counts();
          op.rp.deliver(std::move(err));
          check_zero();
        });
    return caf::delegated<std::uint64_t>{}; // answered through `rp`
  }

  caf::result<slice_result> read(slice_request& req) {
    auto i = readers_.find(req.reader);
    if (i == readers_.end())
      return error_result(req.offset,
                          aborted_ ? make_error(errc::canceled)
                                   : make_error(errc::closed, "reader closed"));
    auto& r = i->second;
    if (req.positional)
      return read_positional(r, req);
    if (req.offset != r.pos) {
      if (r.broken)
        return error_result(req.offset, r.error);
      reposition(r, req.offset);
    }
    if (auto res = serve(r, req.max_size))
      return std::move(*res);
    auto rp = make_response_promise();
    r.parked.push_back(parked_read{rp, req.max_size});
    return caf::delegated<slice_result>{};
  }

  caf::result<slice_result> read_positional(reader_entry& r,
                                            slice_request& req) {
    if (r.broken)
      return error_result(req.offset, r.error);
    auto rp = make_response_promise();
    r.positional.push_back(rp);
    auto session = r.session.address();
    request(r.session, caf::infinite, read_atom::value, req.offset,
            req.max_size)
      .then(
        [this, rp, session](remote_chunk& c) mutable {
          forget_positional(session, rp);
          note_status(c.status);
          slice_result res;
          res.offset = c.offset;
          res.slices = std::move(c.bytes.slices);
          res.size = c.bytes.size;
          res.end = c.end;
          res.error = from_wire(c.error);
          rp.deliver(std::move(res));
        },
        [this, rp, session, off = req.offset](caf::error& err) mutable {
          forget_positional(session, rp);
          rp.deliver(error_result(off, std::move(err)));
        });
    return caf::delegated<slice_result>{};
  }

  void forget_positional(const caf::actor_addr& session,
                         const caf::response_promise& rp) {
    auto i = by_session_.find(session);
    if (i == by_session_.end())
      return;
    auto& v = readers_[i->second].positional;
    for (auto j = v.begin(); j != v.end(); ++j)
      if (j->id() == rp.id() && j->source() == rp.source()) {
        v.erase(j);
        return;
      }
  }

  /// Answers a read of up to `max` bytes at `r.pos` from what is held, if
  /// anything can be said there yet.
  std::optional<slice_result> serve(reader_entry& r, std::uint64_t max) {
    slice_result res;
    res.offset = r.pos;
    if (r.held_bytes > 0 && max > 0) {
      while (!r.held.empty() && res.size < max) {
        auto& front = r.held.front();
        auto n = std::min<std::uint64_t>(front.size(), max - res.size);
        res.slices.push_back(front.subslice(0, n));
        res.size += n;
        if (n == front.size())
          r.held.pop_front();
        else
          front.remove_prefix(n);
      }
      r.held_bytes -= res.size;
      r.pos += res.size;
      maybe_allow(r);
    }
    if (r.held_bytes == 0 && r.final) {
      res.end = r.end;
      res.error = r.error;
    }
    if (res.size == 0 && !res.end && !res.error)
      return std::nullopt;
    return res;
  }

  void maybe_allow(reader_entry& r) {
    auto want = add_offsets(r.pos, window_);
    if (r.final || want < add_offsets(r.allowed, window_ / 4))
      return;
    r.allowed = want;
    send(r.session, allow_atom::value, r.gen, want);
  }

  void reposition(reader_entry& r, std::uint64_t offset) {
    r.gen += 1;
    r.held.clear();
    r.held_bytes = 0;
    r.pos = offset;
    r.final = false;
    r.end = false;
    r.error = caf::error{};
    r.allowed = add_offsets(offset, window_);
    send(r.session, seek_atom::value, r.gen, offset, r.allowed);
  }

  void serve_parked(reader_entry& r) {
    while (!r.parked.empty()) {
      auto res = serve(r, r.parked.front().max);
      if (!res)
        return;
      auto rp = std::move(r.parked.front().rp);
      r.parked.pop_front();
      rp.deliver(std::move(*res));
    }
  }

  void on_chunk(remote_chunk& c) {
    auto sender = caf::actor_cast<caf::actor_addr>(current_sender());
    auto i = by_session_.find(sender);
    if (i == by_session_.end())
      return; // a closed reader's last chunks
    auto& r = readers_[i->second];
    note_status(c.status);
    if (c.generation != r.gen || r.final)
      return; // pushed before a reposition
    if (c.offset != r.pos + r.held_bytes) {
      fail(r, make_error(errc::protocol_error,
                         "a chunk at offset " + std::to_string(c.offset)
                           + ", expected "
                           + std::to_string(r.pos + r.held_bytes)));
      return;
    }
    for (auto& s : c.bytes.slices)
      if (!s.empty())
        r.held.push_back(std::move(s));
    r.held_bytes += c.bytes.size;
    if (c.end || c.error.code != 0) {
      r.final = true;
      r.end = c.end;
      r.error = from_wire(c.error);
    }
    serve_parked(r);
  }

  /// Fails `r` right after its held bytes (they stay readable).
  void fail(reader_entry& r, caf::error err) {
    r.broken = true;
    if (!r.final) {
      r.final = true;
      r.end = false;
      r.error = std::move(err);
    }
    serve_parked(r);
    auto positional = std::move(r.positional);
    r.positional.clear();
    for (auto& rp : positional)
      rp.deliver(error_result(r.pos, r.error));
  }

  void on_down(caf::down_msg& dm) {
    if (dm.source == dir_.address()) {
      dir_down_ = lost(node_,
                       "its directory is gone: " + system().render(dm.reason));
      auto opens = std::move(opens_);
      opens_.clear();
      for (auto& [id, op] : opens)
        op.rp.deliver(dir_down_);
      publish_counts();
      check_zero();
    }
    auto i = by_session_.find(dm.source);
    if (i != by_session_.end()) {
      auto& r = readers_[i->second];
      fail(r, lost(node_, "the session ended at offset "
                            + std::to_string(r.pos + r.held_bytes) + ": "
                            + system().render(dm.reason)));
    }
    // An owner actor of readers here terminated: close them.
    std::vector<std::uint64_t> ids;
    for (auto& [id, r] : readers_)
      if (r.owner && r.owner == dm.source)
        ids.push_back(id);
    for (auto& [id, op] : opens_)
      if (op.owner && op.owner == dm.source)
        ids.push_back(id);
    for (auto id : ids)
      close_reader(id,
                   make_error(errc::closed, "the reader's owner terminated"));
  }

  void watch_owner(const caf::actor_addr& owner) {
    if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(owner))
      monitor(strong);
  }

  void close_reader(std::uint64_t id, caf::error why) {
    if (auto j = opens_.find(id); j != opens_.end()) {
      auto op = std::move(j->second);
      opens_.erase(j);
      send(dir_, cancel_atom::value, op.token);
      op.rp.deliver(why);
    }
    if (auto i = readers_.find(id); i != readers_.end()) {
      auto r = std::move(i->second);
      readers_.erase(i);
      by_session_.erase(r.session.address());
      demonitor(r.session.address());
      send(r.session, close_atom::value);
      publish_counts(); // before the answers: a woken reader sees them
      for (auto& p : r.parked)
        p.rp.deliver(error_result(r.pos, why));
      for (auto& rp : r.positional)
        rp.deliver(error_result(r.pos, why));
    }
    publish_counts();
    check_zero();
  }

  void close_all(caf::error why) {
    std::vector<std::uint64_t> ids;
    for (auto& kvp : readers_)
      ids.push_back(kvp.first);
    for (auto& kvp : opens_)
      ids.push_back(kvp.first);
    for (auto id : ids)
      close_reader(id, why);
  }

  void check_zero() {
    if (!readers_.empty() || !opens_.empty())
      return;
    auto waiters = std::move(zero_waiters_);
    zero_waiters_.clear();
    for (auto& rp : waiters)
      rp.deliver(std::uint64_t{0});
  }

  void publish_counts() {
    counters_->readers.store(readers_.size(), std::memory_order_relaxed);
    counters_->waiting.store(opens_.size(), std::memory_order_relaxed);
  }

  void note_status(const remote_status& st) {
    if (st.size > counters_->size.load(std::memory_order_relaxed))
      counters_->size.store(st.size, std::memory_order_relaxed);
    counters_->oldest.store(st.oldest, std::memory_order_relaxed);
    counters_->parked.store(st.parked, std::memory_order_relaxed);
    if (st.final)
      counters_->publish_final(from_wire(st.error));
  }

  template <class Atom>
  caf::result<stream_status> ask(Atom what) {
    if (dir_down_)
      return dir_down_;
    auto rp = make_response_promise();
    request(dir_, caf::infinite, what, name_)
      .then(
        [this, rp](remote_status& st) mutable {
          note_status(st);
          rp.deliver(from_wire(st));
        },
        [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
    return caf::delegated<stream_status>{};
  }

  directory_actor dir_;
  std::string name_;
  std::string node_;
  std::uint64_t window_;
  std::shared_ptr<detail::stream_counters> counters_;
  std::unordered_map<std::uint64_t, reader_entry> readers_;
  std::unordered_map<caf::actor_addr, std::uint64_t> by_session_;
  std::unordered_map<std::uint64_t, pending_open> opens_;
  std::vector<caf::response_promise> zero_waiters_;
  std::uint64_t tokens_ = 0;
  caf::error refusal_;
  caf::error dir_down_;
  bool aborted_ = false;
};

} // namespace

caf::expected<stream> open(caf::actor_system& sys, const std::string& host,
                           std::uint16_t port, const std::string& name,
                           open_options opts) {
  auto node = host + ":" + std::to_string(port);
  auto dir = sys.middleman().remote_actor<directory_actor>(host, port);
  if (!dir)
    return make_error(errc::disconnected,
                      "cannot reach " + node + ": " + sys.render(dir.error()));
  // The stream's shape, and whether it exists at all.
  detail::blocking_client client{sys};
  auto id = client.send(caf::actor_cast<caf::strong_actor_ptr>(*dir),
                        caf::make_message(open_atom::value, name));
  auto answer = client.await(id, detail::blocking_client::clock::now()
                                   + opts.connect_timeout);
  if (!answer) {
    if (is(answer.error(), errc::timeout))
      return make_error(errc::disconnected, node + " did not answer in time");
    return std::move(answer.error());
  }
  if (!answer->match_elements<stream_shape, remote_status>())
    return make_error(errc::protocol_error,
                      node + " answered an open with something else");
  auto shape = answer->get_as<stream_shape>(0);
  auto status = answer->get_as<remote_status>(1);
  auto core = std::make_shared<detail::stream_core>();
  core->sys = &sys;
  core->control = std::make_shared<detail::source_control>();
  core->counters = std::make_shared<detail::stream_counters>();
  if (shape.retention > 0) {
    core->options.retention = shape.retention;
    core->options.policy = shape.tethered ? retention_policy::tethered
                                          : retention_policy::untethered;
  }
  core->options.max_readers = shape.max_readers;
  if (status.has_declared_length)
    core->options.declared_length = status.declared_length;
  auto proxy = sys.spawn<proxy_actor, caf::hidden>(*dir, name, node,
                                                   opts.window, core->counters);
  core->transfer = caf::actor_cast<transfer_actor>(proxy);
  core->monitor = caf::actor_cast<monitor_actor>(proxy);
  return stream::adopt(std::move(core));
}

} // namespace asyncstream::remote
