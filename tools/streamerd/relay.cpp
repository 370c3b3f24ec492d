#include "relay.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/stream_writer.hpp"
#include "relay_policy.hpp"
#include "relay_status.hpp"
#include "sources.hpp"
#include "transport.hpp"
#include "version.hpp"

namespace streamerd {

namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using asyncstream::errc;
using steady = std::chrono::steady_clock;

namespace {

/// The first and the largest chunk a relay fills (as an upload's).
constexpr std::size_t first_chunk = 16 * 1024;
constexpr std::size_t max_chunk = 1024 * 1024;

/// Bytes asked of one read(2) from the upstream.
constexpr std::size_t read_size = 64 * 1024;

/// How often the watchdog looks at the deadlines.
constexpr auto watchdog_period = std::chrono::milliseconds{50};

/// How often the upstream's size is polled (for the lag), and how long
/// one poll may take.
constexpr auto poll_period = std::chrono::seconds{1};
constexpr auto poll_timeout = std::chrono::seconds{3};

/// The longest /status.json a poll reads.
constexpr std::uint64_t max_status_bytes = 64ull << 20;

std::optional<std::string> field(const http::response_header<>& h,
                                 std::string_view name) {
  auto i = h.find(name);
  if (i == h.end())
    return std::nullopt;
  return std::string{i->value()};
}

/// One relay: its connection to the upstream and its local stream's writer.
/// Runs on the relay thread only.
class relay_worker : public std::enable_shared_from_this<relay_worker> {
public:
  relay_worker(net::io_context& ioc, relay_spec spec, relay_limits lim,
               asyncstream::stream_writer w,
               std::shared_ptr<relay_status> status)
    : ioc_(ioc)
    , spec_(std::move(spec))
    , lim_(lim)
    , writer_(std::move(w))
    , status_(std::move(status))
    , resolver_(ioc)
    , socket_(ioc)
    , watchdog_(ioc)
    , backoff_timer_(ioc)
    , poll_timer_(ioc)
    , poll_socket_(ioc) {
    // nop
  }

  void start() {
    spdlog::info("relay {}: following {}", spec_.name, spec_.url);
    arm_watchdog();
    attempt();
    schedule_poll();
  }

  /// Ends the relay (at shutdown): its stream fails with `why`.
  void stop(const std::string& why) {
    if (!done_)
      finish(relay_phase::failed, why, false);
  }

private:
  // -- one attempt: resolve, connect, request, head, body -------------------

  void attempt() {
    auto g = ++gen_;
    if (attempts_++ > 0)
      status_->reconnects.fetch_add(1, std::memory_order_relaxed);
    set_phase(relay_phase::connecting);
    head_accepted_ = false;
    timed_out_ = false;
    error_code ec;
    socket_.close(ec);
    socket_ = tcp::socket{ioc_};
    in_.clear();
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    asked_from_ = resume_offset(have_);
    request_ = "GET " + spec_.target + " HTTP/1.1\r\nHost: " + spec_.host_header
               + "\r\nUser-Agent: streamerd-relay/" STREAMERD_VERSION
                 "\r\nAccept: */*\r\n";
    if (have_ > 0)
      request_ += "Range: bytes=" + std::to_string(asked_from_) + "-\r\n";
    request_ += "\r\n";
    touch();
    resolver_.async_resolve(spec_.host, std::to_string(spec_.port),
                            [self = shared_from_this(), g](
                              error_code ec, tcp::resolver::results_type res) {
                              if (self->stale(g))
                                return;
                              if (ec)
                                return self->broke("cannot resolve "
                                                   + self->spec_.host + ": "
                                                   + self->reason(ec));
                              self->endpoints_ = res;
                              self->connect(g);
                            });
  }

  void connect(std::uint64_t g) {
    net::async_connect(
      socket_, endpoints_,
      [self = shared_from_this(), g](error_code ec, const tcp::endpoint&) {
        if (self->stale(g))
          return;
        if (ec)
          return self->broke("cannot connect: " + self->reason(ec));
        self->send_request(g);
      });
  }

  void send_request(std::uint64_t g) {
    error_code ec;
    socket_.set_option(tcp::no_delay{true}, ec);
    socket_.set_option(net::socket_base::keep_alive{true}, ec);
    net::async_write(
      socket_, net::buffer(request_),
      [self = shared_from_this(), g](error_code ec, std::size_t) {
        if (self->stale(g))
          return;
        if (ec)
          return self->broke("cannot send the request: " + self->reason(ec));
        self->read_more(g);
      });
  }

  void read_more(std::uint64_t g) {
    socket_.async_read_some(in_.prepare(read_size),
                            [self = shared_from_this(), g](error_code ec,
                                                           std::size_t n) {
                              if (self->stale(g))
                                return;
                              self->in_.commit(n);
                              if (n > 0)
                                self->touch();
                              if (!self->feed())
                                return; // the attempt is over
                              if (ec)
                                return self->read_failed(ec);
                              self->read_more(g);
                            });
  }

  /// Parses what is in the input buffer: the head, then body bytes straight
  /// into the chunk. False once the attempt is over (a verdict was acted on).
  bool feed() {
    for (;;) {
      error_code ec;
      if (!parser_->is_header_done()) {
        auto used = parser_->put(in_.data(), ec);
        in_.consume(used);
        if (ec == http::error::need_more)
          return true;
        if (ec) {
          broke("a malformed response head: " + ec.message());
          return false;
        }
        if (parser_->is_header_done()) {
          if (!on_head())
            return false;
          continue;
        }
        if (used == 0)
          return true;
        continue;
      }
      if (parser_->is_done()) {
        on_end(true, {});
        return false;
      }
      if (!ensure_room())
        return false;
      auto room = chunk_->capacity() - filled_;
      auto& body = parser_->get().body();
      body.data = chunk_->mutable_data() + filled_;
      body.size = room;
      body.more = true;
      auto used = parser_->put(in_.data(), ec);
      in_.consume(used);
      auto produced = room - body.size;
      if (produced > 0 && !deliver(produced))
        return false;
      if (ec == http::error::need_buffer)
        continue; // the chunk is full
      if (ec && ec != http::error::need_more) {
        on_end(false, "a malformed response body: " + ec.message());
        return false;
      }
      if (parser_->is_done()) {
        on_end(true, {});
        return false;
      }
      if (ec == http::error::need_more || (used == 0 && produced == 0))
        return true;
    }
  }

  bool on_head() {
    auto& h = parser_->get();
    upstream_head uh;
    uh.status = h.result_int();
    uh.state = field(h, "X-Stream-State");
    uh.failed_at = field(h, "X-Stream-Failed-At");
    uh.error = field(h, "X-Stream-Error");
    uh.content_range = field(h, "Content-Range");
    uh.content_length = field(h, "Content-Length");
    auto v = judge_head(uh, asked_from_, have_);
    if (v.total)
      status_->upstream_bytes.store(*v.total, std::memory_order_relaxed);
    switch (v.step) {
      case relay_step::body:
        accepted_ = v;
        skip_ = v.skip;
        head_accepted_ = true;
        failures_ = 0;
        set_phase(relay_phase::receiving);
        if (attempts_ > 1)
          spdlog::info("relay {}: resumed at byte {} ({} {})", spec_.name,
                       have_, uh.status, uh.state.value_or("?"));
        return true;
      case relay_step::end:
        finish(relay_phase::ended, v.reason, true);
        return false;
      case relay_step::fail:
        finish(relay_phase::failed, v.reason, true);
        return false;
      case relay_step::retry:
        break;
    }
    broke(v.reason);
    return false;
  }

  /// Takes `n` new body bytes at the chunk's fill mark into the stream.
  bool deliver(std::size_t n) {
    auto at = filled_;
    filled_ += n;
    if (skip_ > 0) {
      auto k = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, n));
      skip_ -= k;
      if (skip_ == 0 && have_ > 0) {
        // The overlap byte: the last one relayed, sent again.
        auto b = static_cast<unsigned char>(chunk_->data()[at + k - 1]);
        if (b != last_byte_) {
          finish(relay_phase::failed,
                 "the upstream's byte " + std::to_string(have_ - 1)
                   + " differs from the one relayed: not the same stream",
                 true);
          return false;
        }
      }
      at += k;
      n -= k;
    }
    if (n == 0)
      return true;
    if (accepted_.failed_at && have_ + n > *accepted_.failed_at)
      n = static_cast<std::size_t>(*accepted_.failed_at - have_);
    if (n > 0) {
      if (auto err = writer_->write(asyncstream::slice{chunk_, at, n})) {
        finish(relay_phase::failed,
               "the local stream refused bytes: " + asyncstream::render(err),
               true);
        return false;
      }
      have_ += n;
      last_byte_ = static_cast<unsigned char>(chunk_->data()[at + n - 1]);
      status_->offset.store(have_, std::memory_order_relaxed);
    }
    if (accepted_.failed_at && have_ >= *accepted_.failed_at) {
      on_end(false, {});
      return false;
    }
    return true;
  }

  bool ensure_room() {
    if (chunk_ && filled_ < chunk_->capacity())
      return true;
    try {
      chunk_ = asyncstream::chunk_pool::shared(next_chunk_)->acquire();
    } catch (const std::bad_alloc&) {
      finish(relay_phase::failed, "out of memory", true);
      return false;
    }
    filled_ = 0;
    next_chunk_ = std::min(next_chunk_ * 4, max_chunk);
    return true;
  }

  void read_failed(error_code ec) {
    if (ec == net::error::eof && parser_->is_header_done()
        && parser_->need_eof()) {
      error_code ec2;
      parser_->put_eof(ec2);
      if (!ec2)
        return on_end(true, {});
    }
    on_end(false, reason(ec));
  }

  /// The body ended (`complete`: as its framing says) or broke off.
  void on_end(bool complete, std::string why) {
    if (!head_accepted_)
      return broke(why.empty() ? "the connection ended before the head" : why);
    auto v = judge_end(complete, accepted_, have_);
    switch (v.step) {
      case relay_step::end:
        return finish(relay_phase::ended, v.reason, true);
      case relay_step::fail:
        return finish(relay_phase::failed, v.reason, true);
      default:
        return broke((why.empty() ? v.reason : why) + " after "
                     + std::to_string(have_) + " bytes");
    }
  }

  // -- retries, the end ----------------------------------------------------

  /// This attempt is over without a verdict: retry after the backoff, or
  /// give up at the bound.
  void broke(const std::string& why) {
    ++gen_; // late completions of this attempt are ignored
    close_connection();
    if (!head_accepted_)
      ++failures_;
    if (gives_up(failures_, lim_))
      return finish(relay_phase::failed,
                    "gave up after " + std::to_string(failures_)
                      + " failed attempt(s) in a row (--relay-retries "
                      + std::to_string(lim_.retries) + "); last: " + why,
                    true);
    auto d = backoff_delay(failures_, lim_);
    spdlog::warn("relay {}: {}: {}; resuming at byte {} in {} ms ({} "
                 "failed attempt(s) in a row, at most {})",
                 spec_.name, spec_.url, why, have_, d.count(), failures_,
                 lim_.retries);
    set_phase(relay_phase::backoff);
    auto g = gen_;
    backoff_timer_.expires_after(d);
    backoff_timer_.async_wait([self = shared_from_this(), g](error_code ec) {
      if (!ec && !self->stale(g))
        self->attempt();
    });
  }

  void finish(relay_phase how, const std::string& why, bool log) {
    done_ = true;
    ++gen_;
    set_phase(how);
    close_connection();
    error_code ec;
    watchdog_.cancel();
    backoff_timer_.cancel();
    poll_timer_.cancel();
    poll_socket_.close(ec);
    if (!writer_)
      return;
    if (how == relay_phase::ended) {
      status_->upstream_bytes.store(have_, std::memory_order_relaxed);
      writer_->close();
      spdlog::info("relay {}: {}; stream {} ended with {} bytes", spec_.name,
                   why, spec_.name, have_);
    } else {
      auto text = "relay of " + spec_.url + ": " + why;
      if (log)
        spdlog::error("relay {}: stream {} fails at byte {}: {}", spec_.name,
                      spec_.name, have_, why);
      writer_->close_with_error(
        asyncstream::make_error(errc::io_error, std::move(text)));
    }
    writer_.reset();
    chunk_.reset();
  }

  void close_connection() {
    error_code ec;
    resolver_.cancel();
    socket_.close(ec);
  }

  // -- timeouts --------------------------------------------------------------

  void touch() {
    deadline_ = steady::now() + lim_.idle_timeout;
  }

  void arm_watchdog() {
    watchdog_.expires_after(watchdog_period);
    watchdog_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->done_)
        return;
      auto now = steady::now();
      auto ph = self->status_->current();
      if ((ph == relay_phase::connecting || ph == relay_phase::receiving)
          && now > self->deadline_ && !self->timed_out_) {
        self->timed_out_ = true;
        self->close_connection(); // the pending operation fails
      }
      if (self->polling_ && now - self->poll_started_ > poll_timeout) {
        error_code ec2;
        self->poll_socket_.close(ec2);
      }
      self->arm_watchdog();
    });
  }

  std::string reason(const error_code& ec) const {
    if (timed_out_)
      return "no byte from the upstream for "
             + std::to_string(lim_.idle_timeout.count()) + " ms";
    if (ec == net::error::eof)
      return "the upstream closed the connection";
    return ec.message();
  }

  bool stale(std::uint64_t g) const {
    return done_ || g != gen_;
  }

  void set_phase(relay_phase x) {
    status_->phase.store(static_cast<int>(x), std::memory_order_relaxed);
  }

  // -- the upstream's size, for the lag ---------------------------------------

  void schedule_poll() {
    poll_timer_.expires_after(poll_period);
    poll_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->done_)
        return;
      self->poll();
      self->schedule_poll();
    });
  }

  void poll() {
    if (polling_ || endpoints_.empty())
      return;
    polling_ = true;
    poll_started_ = steady::now();
    error_code ec;
    poll_socket_.close(ec);
    poll_socket_ = tcp::socket{ioc_};
    poll_request_ = "GET /status.json HTTP/1.1\r\nHost: " + spec_.host_header
                    + "\r\nUser-Agent: streamerd-relay/" STREAMERD_VERSION
                      "\r\nConnection: close\r\n\r\n";
    net::async_connect(
      poll_socket_, endpoints_,
      [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
        if (ec || self->done_)
          return self->poll_done();
        net::async_write(self->poll_socket_, net::buffer(self->poll_request_),
                         [self](error_code ec, std::size_t) {
                           if (ec || self->done_)
                             return self->poll_done();
                           self->poll_buffer_.clear();
                           self->poll_parser_.emplace();
                           self->poll_parser_->body_limit(max_status_bytes);
                           http::async_read(self->poll_socket_,
                                            self->poll_buffer_,
                                            *self->poll_parser_,
                                            [self](error_code ec, std::size_t) {
                                              if (!ec && !self->done_)
                                                self->polled();
                                              self->poll_done();
                                            });
                         });
      });
  }

  void polled() {
    auto& res = poll_parser_->get();
    if (res.result_int() != 200)
      return;
    if (auto n = stream_bytes_in_status(res.body(), spec_.upstream_name))
      status_->upstream_bytes.store(*n, std::memory_order_relaxed);
  }

  void poll_done() {
    polling_ = false;
    poll_parser_.reset();
    error_code ec;
    poll_socket_.close(ec);
  }

  net::io_context& ioc_;
  relay_spec spec_;
  relay_limits lim_;
  std::optional<asyncstream::stream_writer> writer_;
  std::shared_ptr<relay_status> status_;
  tcp::resolver resolver_;
  tcp::resolver::results_type endpoints_;
  tcp::socket socket_;
  net::steady_timer watchdog_;
  net::steady_timer backoff_timer_;
  steady::time_point deadline_{};
  bool timed_out_ = false;
  bool done_ = false;
  std::uint64_t gen_ = 0;
  std::uint64_t attempts_ = 0;
  unsigned failures_ = 0;
  bool head_accepted_ = false;
  std::string request_;
  boost::beast::flat_buffer in_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  head_verdict accepted_;
  std::uint64_t asked_from_ = 0;
  std::uint64_t skip_ = 0;
  std::uint64_t have_ = 0;
  unsigned char last_byte_ = 0;
  asyncstream::mutable_chunk_ptr chunk_;
  std::size_t filled_ = 0;
  std::size_t next_chunk_ = first_chunk;
  // The size poll.
  net::steady_timer poll_timer_;
  tcp::socket poll_socket_;
  bool polling_ = false;
  steady::time_point poll_started_{};
  std::string poll_request_;
  boost::beast::flat_buffer poll_buffer_;
  std::optional<http::response_parser<http::string_body>> poll_parser_;
};

} // namespace

/// Starts a relay once, on the first demand, unless the service stopped.
struct demand_gate {
  std::mutex mtx;
  net::io_context* ioc = nullptr;
  std::shared_ptr<relay_worker> worker;
  bool started = false;

  void open() {
    std::lock_guard<std::mutex> guard{mtx};
    if (started || ioc == nullptr)
      return;
    started = true;
    net::post(*ioc, [w = worker] { w->start(); });
  }

  void close() {
    std::lock_guard<std::mutex> guard{mtx};
    ioc = nullptr;
    worker.reset();
  }
};

struct relay_service::state {
  state(caf::actor_system& sys, const config& cfg, registry& reg)
    : sys(sys), cfg(cfg), reg(reg), work(net::make_work_guard(ioc)) {
    // nop
  }

  caf::actor_system& sys;
  const config& cfg;
  registry& reg;
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work;
  std::vector<std::shared_ptr<relay_worker>> workers;
  std::vector<std::shared_ptr<demand_gate>> gates;
  std::thread thread;
};

relay_service::relay_service(caf::actor_system& sys, const config& cfg,
                             registry& reg)
  : state_(std::make_unique<state>(sys, cfg, reg)) {
  // nop
}

relay_service::~relay_service() {
  stop();
}

std::string relay_service::start() {
  auto& st = *state_;
  for (auto& spec : st.cfg.relays) {
    auto s = make_stream(st.sys, st.cfg, asyncstream::source::push());
    if (!s)
      return "relay " + spec.name + ": " + asyncstream::render(s.error());
    auto w = s->writer();
    if (!w)
      return "relay " + spec.name + ": " + asyncstream::render(w.error());
    auto status = std::make_shared<relay_status>();
    status->upstream = spec.url;
    status->on_demand = st.cfg.relay_on_demand;
    if (status->on_demand)
      status->phase = static_cast<int>(relay_phase::idle);
    auto e = std::make_shared<stream_entry>();
    e->name = spec.name;
    e->origin = "relay of " + spec.url;
    e->stream = *s;
    e->created = std::chrono::system_clock::now();
    e->relay = status;
    if (!st.reg.add(e)) {
      w->close();
      return "relay " + spec.name + ": the name is given twice";
    }
    log_when_final(st.sys, e);
    auto worker = std::make_shared<relay_worker>(
      st.ioc, spec, st.cfg.relay, std::move(*w), std::move(status));
    st.workers.push_back(worker);
    if (st.cfg.relay_on_demand) {
      auto gate = std::make_shared<demand_gate>();
      gate->ioc = &st.ioc;
      gate->worker = worker;
      st.gates.push_back(gate);
      // The entry may outlive the service (a response in progress keeps
      // it): the gate is closed at stop.
      e->on_demand = [gate] { gate->open(); };
      spdlog::info("relay {}: starts on the first GET of it", spec.name);
    }
  }
  if (st.workers.empty())
    return {};
  if (!st.cfg.relay_on_demand)
    for (auto& w : st.workers)
      net::post(st.ioc, [w] { w->start(); });
  st.thread = std::thread{[&st] {
    for (;;) {
      try {
        st.ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("relay thread: a handler failed: {}", e.what());
      }
    }
  }};
  return {};
}

void relay_service::stop() {
  auto& st = *state_;
  for (auto& g : st.gates)
    g->close();
  if (!st.thread.joinable())
    return;
  net::post(st.ioc, [&st] {
    for (auto& w : st.workers)
      w->stop("streamerd shut down during the relay");
    // Every operation was cancelled: run() returns once their handlers
    // ran, and with them the last references to the workers.
    st.work.reset();
  });
  st.thread.join();
  st.workers.clear();
}

} // namespace streamerd
