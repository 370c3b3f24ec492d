// The node that serves streams: its directory (the published actor), one
// session per remote reader, and the `publisher` handle.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "asyncstream/detail/stream_core.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/remote.hpp"
#include "asyncstream/remote_protocol.hpp"

namespace asyncstream::remote {

namespace {

/// Bytes a session asks its stream for at once (and pushes in one chunk).
constexpr std::uint64_t push_unit = 1u << 20;

/// The largest positional read a session answers at once.
constexpr std::uint64_t max_read = 4u << 20;

/// The window bounds a session enforces, whatever the client asks.
constexpr std::uint64_t min_window = 64u << 10;
constexpr std::uint64_t max_window = 64u << 20;

std::uint64_t clamp_window(std::uint64_t w) {
  return std::clamp(w, min_window, max_window);
}

/// What the publisher and its actors share (guarded by `mtx`).
struct directory_shared {
  std::mutex mtx;
  std::unordered_map<std::string, stream> streams;
  /// The running sessions of each stream name.
  std::unordered_map<std::string, std::unordered_set<caf::actor_addr>>
    sessions_of;
  std::size_t sessions = 0;
  std::size_t max_sessions = 1024;
  bool closed = false;

  /// Returns the stream `name`, or an invalid handle.
  stream find(const std::string& name) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = streams.find(name);
    return i == streams.end() ? stream{} : i->second;
  }
};

using shared_ptr = std::shared_ptr<directory_shared>;

remote_status status_of(const stream& s) {
  return to_wire(s.stats());
}

stream_shape shape_of(const stream& s) {
  stream_shape res;
  auto& opts = s.core()->options;
  res.retention = opts.retention.value_or(0);
  res.tethered = opts.retention && opts.policy == retention_policy::tethered;
  res.max_readers = opts.max_readers;
  return res;
}

// -- the session: one remote reader
// --------------------------------------------

/// The local-only start message of a session (the directory delegates the
/// client's open to it).
using start_atom = caf::atom_constant<caf::atom("as_start")>;

using session_impl_actor
  = session_actor::extend<caf::replies_to<start_atom>::with<open_reply>>;

class session_impl : public session_impl_actor::base {
public:
  session_impl(caf::actor_config& cfg, shared_ptr shared, std::string name,
               stream s, caf::actor client, open_request req)
    : session_impl_actor::base(cfg)
    , shared_(std::move(shared))
    , name_(std::move(name))
    , stream_(std::move(s))
    , client_(std::move(client))
    , id_(detail::stream_core::next_reader_id())
    , pos_(req.offset)
    , window_(clamp_window(req.window))
    , limit_(add_offsets(req.offset, window_)) {
    // nop
  }

  const char* name() const override {
    return "asyncstream.remote_session";
  }

  void on_exit() override {
    // The readers monitor watches this actor as the reader's owner: the
    // slot, the parked requests and the tether go with it. Here only the
    // bookkeeping of the directory.
    {
      std::lock_guard<std::mutex> guard{shared_->mtx};
      shared_->sessions -= 1;
      auto i = shared_->sessions_of.find(name_);
      if (i != shared_->sessions_of.end()) {
        i->second.erase(address());
        if (i->second.empty())
          shared_->sessions_of.erase(i);
      }
    }
    if (open_rp_.pending())
      open_rp_.deliver(make_error(errc::closed, "the session ended"));
    stream_ = stream{};
    client_ = nullptr;
  }

  behavior_type make_behavior() override {
    // Listed here, before anything can end it (`on_exit` unlists it): a
    // listing by the directory after the spawn could come after the end.
    {
      std::lock_guard<std::mutex> guard{shared_->mtx};
      shared_->sessions_of[name_].insert(address());
      // Removed (or the publisher closed) between the spawn and now: the
      // remover did not see this session; it must not serve.
      gone_ = shared_->closed || shared_->streams.count(name_) == 0;
    }
    // The client's node going away (or the client actor) ends the session.
    monitor(client_);
    set_down_handler([this](caf::down_msg& dm) {
      if (dm.source == client_.address())
        quit(dm.reason);
    });
    return {
      [this](start_atom) -> caf::result<open_reply> {
        if (gone_) {
          quit();
          return make_error(errc::not_found,
                            "stream '" + name_ + "' is no longer published");
        }
        open_rp_ = make_response_promise<open_reply>();
        auto core = stream_.core();
        request(core->monitor, caf::infinite, open_atom::value, id_, address())
          .then(
            [this](std::uint64_t) {
              open_ = true;
              auto core = stream_.core();
              auto shape = shape_of(stream_);
              // Tethered from the moment it opens (an anonymous send: the
              // answer is of no use; it still precedes our reads).
              if (shape.tethered)
                caf::anon_send(core->transfer, tether_atom::value, id_, pos_);
              open_reply rep;
              rep.session = caf::actor_cast<session_actor>(this);
              rep.shape = shape;
              rep.status = status_of(stream_);
              open_rp_.deliver(std::move(rep));
              push();
            },
            [this](caf::error& err) {
              open_rp_.deliver(std::move(err));
              quit();
            });
        return open_rp_;
      },
      [this](allow_atom, std::uint64_t gen, std::uint64_t limit) {
        if (!from_client() || gen != gen_)
          return;
        limit_ = std::max(limit_, std::min(limit, add_offsets(pos_, window_)));
        push();
      },
      [this](seek_atom, std::uint64_t gen, std::uint64_t offset,
             std::uint64_t limit) {
        if (!from_client())
          return;
        gen_ = gen;
        pos_ = offset;
        limit_ = std::min(limit, add_offsets(offset, window_));
        done_ = false;
        push();
      },
      [this](read_atom, std::uint64_t offset,
             std::uint64_t max) -> caf::result<remote_chunk> {
        if (!from_client())
          return make_error(errc::protocol_error, "not this session's client");
        if (!open_)
          return make_error(errc::closed, "the reader is not open");
        auto rp = make_response_promise<remote_chunk>();
        slice_request req;
        req.reader = id_;
        req.offset = offset;
        req.max_size = std::min(max, max_read);
        req.positional = true;
        request(stream_.core()->transfer, caf::infinite, std::move(req))
          .then([this, rp](
                  slice_result& res) mutable { rp.deliver(to_chunk(0, res)); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [this](withdraw_atom) {
        if (from_client() && open_)
          send(stream_.core()->transfer, withdraw_atom::value, id_);
      },
      [this](close_atom) {
        if (from_client())
          quit();
      },
    };
  }

private:
  bool from_client() {
    return current_sender() == caf::actor_cast<caf::strong_actor_ptr>(client_);
  }

  /// Sends to the (dynamically typed) client with this session as the
  /// sender: the client tells its readers' chunks apart by it.
  void to_client(remote_chunk c) {
    caf::send_as(caf::actor_cast<caf::actor>(this), client_, std::move(c));
  }

  remote_chunk to_chunk(std::uint64_t gen, slice_result& res) {
    remote_chunk c;
    c.generation = gen;
    c.offset = res.offset;
    c.bytes.slices = std::move(res.slices);
    c.bytes.size = res.size;
    c.end = res.end;
    c.error = to_wire(res.error);
    c.status = status_of(stream_);
    return c;
  }

  /// Reads on while the client allows it, one request at a time (the
  /// stream is local: the round trip is short; the network sees a steady
  /// flow of chunks up to the window).
  void push() {
    if (!open_ || in_flight_ || done_ || pos_ >= limit_)
      return;
    in_flight_ = true;
    auto gen = gen_;
    slice_request req;
    req.reader = id_;
    req.offset = pos_;
    req.max_size = std::min(limit_ - pos_, push_unit);
    request(stream_.core()->transfer, caf::infinite, std::move(req))
      .then(
        [this, gen](slice_result& res) {
          in_flight_ = false;
          if (gen != gen_) { // repositioned meanwhile
            push();
            return;
          }
          if (res.size == 0 && is(res.error, errc::timeout)) {
            // A withdraw of positional reads answered this one too.
            push();
            return;
          }
          pos_ = res.offset + res.size;
          if (res.end || res.error)
            done_ = true;
          to_client(to_chunk(gen, res));
          push();
        },
        [this, gen](caf::error& err) {
          in_flight_ = false;
          remote_chunk c;
          c.generation = gen;
          c.offset = pos_;
          c.error = to_wire(err);
          c.status = status_of(stream_);
          done_ = true;
          to_client(std::move(c));
        });
  }

  shared_ptr shared_;
  std::string name_;
  stream stream_;
  caf::actor client_;
  std::uint64_t id_;
  bool open_ = false;
  std::uint64_t gen_ = 1;
  std::uint64_t pos_;
  std::uint64_t window_;
  std::uint64_t limit_;
  bool in_flight_ = false;
  bool done_ = false;
  bool gone_ = false;
  caf::typed_response_promise<open_reply> open_rp_;
};

// -- the directory
// ---------------------------------------------------------------

class directory_impl : public directory_actor::base {
public:
  directory_impl(caf::actor_config& cfg, shared_ptr shared)
    : directory_actor::base(cfg), shared_(std::move(shared)) {
    // nop
  }

  const char* name() const override {
    return "asyncstream.remote_directory";
  }

  void on_exit() override {
    waiting_.clear();
    shared_ = nullptr;
  }

  behavior_type make_behavior() override {
    set_down_handler([this](caf::down_msg& dm) {
      for (auto i = waiting_.begin(); i != waiting_.end();) {
        if (i->second.address() == dm.source)
          i = waiting_.erase(i);
        else
          ++i;
      }
    });
    return {
      [this](open_atom, open_request& req) -> caf::result<open_reply> {
        if (req.version != protocol_version)
          return make_error(errc::protocol_error,
                            "protocol version " + std::to_string(req.version)
                              + " (this node speaks "
                              + std::to_string(protocol_version) + ")");
        auto client = caf::actor_cast<caf::actor>(current_sender());
        if (!client)
          return make_error(errc::invalid_argument, "an open without sender");
        stream s;
        {
          std::lock_guard<std::mutex> guard{shared_->mtx};
          if (shared_->closed)
            return make_error(errc::closed, "the publisher is closed");
          auto i = shared_->streams.find(req.name);
          if (i == shared_->streams.end())
            return make_error(errc::not_found, "no stream '" + req.name + "'");
          if (shared_->sessions >= shared_->max_sessions)
            return make_error(errc::resource_exhausted,
                              "the node runs "
                                + std::to_string(shared_->sessions)
                                + " remote readers (its limit)");
          s = i->second;
          shared_->sessions += 1;
        }
        auto name = req.name;
        auto token = req.token;
        auto session = spawn<session_impl, caf::hidden>(
          shared_, name, std::move(s), client, std::move(req));
        // A cancel with the open's token (from the same client) ends the
        // session, while it waits for a slot or later.
        waiting_.emplace(key(client.address(), token),
                         caf::actor_cast<caf::actor>(session));
        monitor(session);
        return delegate(session, start_atom::value);
      },
      [this](cancel_atom, std::uint64_t token) {
        auto k = key(caf::actor_cast<caf::actor_addr>(current_sender()), token);
        auto i = waiting_.find(k);
        if (i == waiting_.end())
          return;
        anon_send_exit(i->second, caf::exit_reason::user_shutdown);
        waiting_.erase(i);
      },
      [this](list_atom) -> std::vector<std::string> {
        std::vector<std::string> names;
        std::lock_guard<std::mutex> guard{shared_->mtx};
        for (auto& kvp : shared_->streams)
          names.push_back(kvp.first);
        std::sort(names.begin(), names.end());
        return names;
      },
      [this](status_atom, const std::string& name)
        -> caf::result<remote_status> { return ask(status_atom::value, name); },
      [this](wait_atom, const std::string& name) -> caf::result<remote_status> {
        return ask(wait_atom::value, name);
      },
      [this](open_atom, const std::string& name)
        -> caf::result<stream_shape, remote_status> {
        auto s = shared_->find(name);
        if (!s.valid())
          return make_error(errc::not_found, "no stream '" + name + "'");
        return {shape_of(s), status_of(s)};
      },
    };
  }

private:
  using key_type = std::pair<caf::actor_addr, std::uint64_t>;

  struct key_hash {
    std::size_t operator()(const key_type& k) const noexcept {
      return std::hash<caf::actor_addr>{}(k.first) ^ (k.second * 0x9e3779b9);
    }
  };

  static key_type key(caf::actor_addr addr, std::uint64_t token) {
    return {std::move(addr), token};
  }

  template <class Atom>
  caf::result<remote_status> ask(Atom what, const std::string& name) {
    auto s = shared_->find(name);
    if (!s.valid())
      return make_error(errc::not_found, "no stream '" + name + "'");
    auto rp = make_response_promise<remote_status>();
    request(s.core()->transfer, caf::infinite, what)
      .then([rp](stream_status& st) mutable { rp.deliver(to_wire(st)); },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
    return rp;
  }

  shared_ptr shared_;
  std::unordered_map<key_type, caf::actor, key_hash> waiting_;
};

} // namespace

// -- publisher
// ---------------------------------------------------------------------

struct publisher::impl {
  caf::actor_system* sys = nullptr;
  shared_ptr shared;
  directory_actor directory;
  std::uint16_t port = 0;
  bool closed = false;

  void close() {
    if (closed)
      return;
    closed = true;
    sys->middleman().unpublish(directory, port);
    std::vector<caf::actor_addr> sessions;
    {
      std::lock_guard<std::mutex> guard{shared->mtx};
      shared->closed = true;
      for (auto& kvp : shared->sessions_of)
        for (auto& addr : kvp.second)
          sessions.push_back(addr);
      shared->streams.clear();
    }
    for (auto& addr : sessions)
      if (auto hdl = caf::actor_cast<caf::actor>(addr))
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    directory = nullptr;
  }
};

publisher::publisher() noexcept = default;
publisher::publisher(publisher&&) noexcept = default;
publisher& publisher::operator=(publisher&&) noexcept = default;

publisher::~publisher() {
  close();
}

caf::expected<publisher> publisher::publish(caf::actor_system& sys,
                                            std::uint16_t port,
                                            publish_options opts) {
  auto ptr = std::make_unique<impl>();
  ptr->sys = &sys;
  ptr->shared = std::make_shared<directory_shared>();
  ptr->shared->max_sessions = opts.max_sessions == 0 ? 1 : opts.max_sessions;
  ptr->directory = sys.spawn<directory_impl, caf::hidden>(ptr->shared);
  const char* in = opts.address.empty() ? nullptr : opts.address.c_str();
  auto bound = sys.middleman().publish(ptr->directory, port, in, true);
  if (!bound) {
    caf::anon_send_exit(ptr->directory, caf::exit_reason::user_shutdown);
    return make_error(errc::io_error, "publishing on port "
                                        + std::to_string(port) + ": "
                                        + sys.render(bound.error()));
  }
  ptr->port = *bound;
  publisher res;
  res.impl_ = std::move(ptr);
  return res;
}

caf::error publisher::add(const std::string& name, stream s) {
  if (!impl_ || impl_->closed)
    return make_error(errc::invalid_argument, "publisher is closed");
  if (name.empty())
    return make_error(errc::invalid_argument, "an empty stream name");
  if (!s.valid())
    return make_error(errc::invalid_argument, "an invalid stream");
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  if (!impl_->shared->streams.emplace(name, std::move(s)).second)
    return make_error(errc::invalid_argument,
                      "stream name '" + name + "' is taken");
  return caf::none;
}

bool publisher::remove(const std::string& name) {
  if (!impl_ || impl_->closed)
    return false;
  std::vector<caf::actor_addr> sessions;
  {
    std::lock_guard<std::mutex> guard{impl_->shared->mtx};
    if (impl_->shared->streams.erase(name) == 0)
      return false;
    auto i = impl_->shared->sessions_of.find(name);
    if (i != impl_->shared->sessions_of.end())
      sessions.assign(i->second.begin(), i->second.end());
  }
  for (auto& addr : sessions)
    if (auto hdl = caf::actor_cast<caf::actor>(addr))
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  return true;
}

std::uint16_t publisher::port() const noexcept {
  return impl_ ? impl_->port : 0;
}

std::size_t publisher::sessions() const {
  if (!impl_)
    return 0;
  std::lock_guard<std::mutex> guard{impl_->shared->mtx};
  return impl_->shared->sessions;
}

void publisher::close() {
  if (impl_)
    impl_->close();
}

} // namespace asyncstream::remote
