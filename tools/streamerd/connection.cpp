#include "connection.hpp"

#include <boost/beast/http/error.hpp>
#include <spdlog/spdlog.h>

#include "answer.hpp"
#include "http_rules.hpp"
#include "routes.hpp"

namespace streamerd {

namespace http = boost::beast::http;

namespace {

/// Bytes asked for per read of request headers.
constexpr std::size_t header_read_size = 4096;

} // namespace

const char* to_string(end_reason x) noexcept {
  switch (x) {
    case end_reason::complete:
      return "complete";
    case end_reason::client_gone:
      return "client gone";
    case end_reason::timeout:
      return "timeout";
    case end_reason::drained:
      return "shutting down";
    case end_reason::failed:
      return "failed";
  }
  return "?";
}

exchange::exchange(connection& conn)
  : conn_(conn), serial_(conn.next_serial()) {
  // nop
}

connection::connection(std::shared_ptr<server_context> ctx,
                       std::unique_ptr<transport> io)
  : ctx_(std::move(ctx)),
    io_(std::move(io)),
    peer_(io_->peer()),
    open_(ctx_->stats.connections),
    deadline_(io_->get_executor()) {
  ctx_->stats.connections_total.fetch_add(1, std::memory_order_relaxed);
}

connection::~connection() {
  // The exchange was released by `close_with` or `finish`; one still here
  // means the connection died without either (it cannot, but be safe).
  if (current_) {
    auto x = std::move(current_);
    x->release(end_reason::client_gone, "connection destroyed");
  }
  ctx_->remove(this);
}

void connection::start() {
  ctx_->add(this, weak_from_this());
  net::post(executor(), [self = shared_from_this()] { self->next_request(); });
}

void connection::drain(bool force) {
  net::post(executor(), [self = shared_from_this(), force] {
    if (self->closed_)
      return;
    if (self->state_ == state::exchanging && !force)
      return; // `finish` sees the drain and closes after the response
    self->close_with(end_reason::drained, "streamerd is shutting down");
  });
}

bool connection::may_keep_alive() const noexcept {
  return !ctx_->draining.load(std::memory_order_relaxed);
}

// -- reading requests ---------------------------------------------------------

void connection::next_request() {
  if (closed_)
    return;
  state_ = state::reading;
  want_watch_ = false;
  parser_.reset();
  header_started_ = false;
  if (ctx_->draining.load(std::memory_order_relaxed)) {
    close_with(end_reason::drained, "streamerd is shutting down");
    return;
  }
  auto& lim = ctx_->cfg.limits;
  if (input_.size() > 0 || first_request_) {
    // A pipelined request waits in the buffer, or this is the first
    // request: its header must arrive within the header timeout.
    header_started_ = true;
    arm(timeout_phase::header, lim.header_timeout_s);
  } else {
    arm(timeout_phase::idle, lim.keepalive_timeout_s);
  }
  first_request_ = false;
  if (input_.size() > 0)
    parse_header();
  else
    read_header();
}

void connection::read_header() {
  if (reading_ || closed_)
    return;
  auto limit = ctx_->cfg.limits.max_header_bytes;
  // Never hold more than one header's worth: past the limit the parser
  // reports `header_limit` (431).
  auto room = input_.size() <= limit ? limit + 1 - input_.size() : 1;
  auto want = std::min(room, header_read_size);
  reading_ = true;
  // A watch still pending from the last response reports on bytes this
  // read takes: its answer is stale.
  peer_sent_more_ = false;
  ++watch_epoch_;
  io_->async_read_some(input_.prepare(want),
                       [self = shared_from_this()](error_code ec,
                                                   std::size_t n) {
                         self->reading_ = false;
                         self->on_header_bytes(ec, n);
                       });
}

void connection::on_header_bytes(error_code ec, std::size_t n) {
  if (closed_)
    return;
  input_.commit(n);
  if (ec) {
    // The client closed (or reset) between requests or inside a header:
    // nothing to answer.
    close_with(end_reason::client_gone, ec.message());
    return;
  }
  if (!header_started_) {
    header_started_ = true;
    arm(timeout_phase::header, ctx_->cfg.limits.header_timeout_s);
  }
  parse_header();
}

void connection::parse_header() {
  if (!parser_) {
    parser_.emplace();
    parser_->header_limit(
      static_cast<std::uint32_t>(ctx_->cfg.limits.max_header_bytes));
    // Streams are unbounded; Beast 1.74 compares a Content-Length with the
    // optional limit, so "no limit" must be the largest value.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  }
  error_code ec;
  auto used = parser_->put(input_.data(), ec);
  input_.consume(used);
  if (ec == http::error::need_more) {
    read_header();
    return;
  }
  if (ec) {
    auto r = refusal_for(ec);
    spdlog::debug("{}: {} ({})", peer_, r.text, r.status);
    refuse(r.status, std::move(r.text));
    return;
  }
  if (!parser_->is_header_done()) {
    read_header();
    return;
  }
  disarm();
  if (auto r = check_request(parser_->get())) {
    spdlog::debug("{}: {} {}: {} ({})", peer_, parser_->get().method_string(),
                  parser_->get().target(), r->text, r->status);
    refuse(r->status, std::move(r->text));
    return;
  }
  // The exchange reads the header from the parser (an upload takes the
  // parser over for its body); the next request makes a new one.
  begin(route(*this, *parser_));
}

void connection::refuse(unsigned status, std::string text) {
  // The rest of the input cannot be trusted: answer, then close.
  parser_.reset();
  input_.consume(input_.size());
  begin(make_answer(*this, plain_answer(status, std::move(text) + "\n"),
                    false, false));
}

void connection::begin(std::shared_ptr<exchange> x) {
  state_ = state::exchanging;
  current_ = std::move(x);
  auto keep = current_;
  keep->start();
}

// -- for exchanges --------------------------------------------------------------

struct connection::send_op {
  std::vector<net::const_buffer> bufs;
  std::shared_ptr<const void> keep;
  std::function<void(error_code)> done;
  std::uint64_t serial = 0;
  // sendfile
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t left = 0;
};

void connection::send(std::vector<net::const_buffer> bufs,
                      std::shared_ptr<const void> keep,
                      std::function<void(error_code)> done) {
  auto op = std::make_shared<send_op>();
  op->bufs = std::move(bufs);
  op->keep = std::move(keep);
  op->done = std::move(done);
  op->serial = current_ ? current_->serial() : 0;
  send_some(std::move(op));
}

void connection::send_some(std::shared_ptr<send_op> op) {
  // Drop what is written already.
  auto& bufs = op->bufs;
  std::size_t skip = 0;
  while (skip < bufs.size() && bufs[skip].size() == 0)
    ++skip;
  bufs.erase(bufs.begin(), bufs.begin() + static_cast<std::ptrdiff_t>(skip));
  if (bufs.empty()) {
    disarm();
    if_current(op->serial, [&] { op->done({}); });
    return;
  }
  arm(timeout_phase::send, ctx_->cfg.limits.send_timeout_s);
  io_->async_write_some(bufs, [self = shared_from_this(),
                               op](error_code ec, std::size_t n) {
    if (self->closed_)
      return;
    if (ec) {
      self->disarm();
      self->if_current(op->serial, [&] { op->done(ec); });
      return;
    }
    for (auto& b : op->bufs) {
      auto k = std::min(n, b.size());
      b += k;
      n -= k;
      if (n == 0)
        break;
    }
    self->send_some(op);
  });
}

void connection::send_file(int fd, std::uint64_t offset, std::uint64_t n,
                           std::function<void(error_code)> done) {
  auto op = std::make_shared<send_op>();
  op->fd = fd;
  op->offset = offset;
  op->left = n;
  op->done = std::move(done);
  op->serial = current_ ? current_->serial() : 0;
  send_file_some(std::move(op));
}

void connection::send_file_some(std::shared_ptr<send_op> op) {
  if (op->left == 0) {
    disarm();
    if_current(op->serial, [&] { op->done({}); });
    return;
  }
  arm(timeout_phase::send, ctx_->cfg.limits.send_timeout_s);
  auto max = static_cast<std::size_t>(
    std::min<std::uint64_t>(op->left, std::uint64_t{1} << 30));
  io_->async_sendfile_some(op->fd, op->offset, max,
                           [self = shared_from_this(),
                            op](error_code ec, std::size_t n) {
                             if (self->closed_)
                               return;
                             if (ec) {
                               self->disarm();
                               self->if_current(op->serial,
                                                [&] { op->done(ec); });
                               return;
                             }
                             op->offset += n;
                             op->left -= n;
                             self->send_file_some(op);
                           });
}

void connection::read_some(net::mutable_buffer buf,
                           std::function<void(error_code, std::size_t)> done) {
  auto serial = current_ ? current_->serial() : 0;
  arm(timeout_phase::body, ctx_->cfg.limits.body_timeout_s);
  reading_ = true;
  io_->async_read_some(buf, [self = shared_from_this(), serial,
                             done = std::move(done)](error_code ec,
                                                     std::size_t n) {
    self->reading_ = false;
    if (self->closed_)
      return;
    self->disarm();
    self->if_current(serial, [&] { done(ec, n); });
  });
}

void connection::watch_peer() {
  want_watch_ = true;
  if (watching_ || peer_sent_more_ || closed_)
    return;
  watching_ = true;
  io_->async_watch_peer([self = shared_from_this(),
                         epoch = watch_epoch_](error_code ec, bool gone) {
    self->watching_ = false;
    if (self->closed_)
      return;
    if (epoch != self->watch_epoch_) {
      // Stale (it began before the last request was read): watch anew if
      // the current exchange asked for it meanwhile.
      if (self->want_watch_ && self->state_ == state::exchanging)
        self->watch_peer();
      return;
    }
    if (!gone && !ec) {
      // Bytes of a pipelined request: they stay unread until the response
      // is over. The send timeout still bounds a client that left.
      self->peer_sent_more_ = true;
      return;
    }
    if (self->state_ == state::exchanging)
      self->close_with(end_reason::client_gone,
                       ec ? ec.message() : "client closed the connection");
    // While reading a request, the read sees the same end and closes.
  });
}

void connection::finish(bool keep_alive) {
  if (closed_ || !current_)
    return;
  auto x = std::move(current_);
  x->release(end_reason::complete, {});
  if (keep_alive && may_keep_alive()) {
    next_request();
    return;
  }
  close_with(end_reason::complete, "not kept alive");
}

void connection::close_with(end_reason why, const std::string& detail) {
  if (closed_)
    return;
  closed_ = true;
  state_ = state::closed;
  if (current_) {
    auto x = std::move(current_);
    x->release(why, detail);
  }
  error_code ec;
  deadline_.cancel(ec);
  io_->close();
}

void connection::time_out(timeout_phase phase) {
  auto i = static_cast<std::size_t>(phase);
  ctx_->stats.timeouts[i].fetch_add(1, std::memory_order_relaxed);
  std::string what;
  switch (phase) {
    case timeout_phase::header:
      what = "no complete request header within "
             + std::to_string(ctx_->cfg.limits.header_timeout_s) + " s";
      break;
    case timeout_phase::idle:
      what = "idle for "
             + std::to_string(ctx_->cfg.limits.keepalive_timeout_s) + " s";
      break;
    case timeout_phase::send:
      what = "the client accepted no bytes for "
             + std::to_string(ctx_->cfg.limits.send_timeout_s) + " s";
      break;
    case timeout_phase::body:
      what = "no body bytes for "
             + std::to_string(ctx_->cfg.limits.body_timeout_s) + " s";
      break;
  }
  spdlog::debug("{}: {} timeout: {}", peer_, to_string(phase), what);
  close_with(end_reason::timeout, what);
}

void connection::arm(timeout_phase phase, std::uint64_t seconds) {
  if (seconds == 0) {
    disarm();
    return;
  }
  // Re-arming is cheap: it moves a time point. One wait is pending at a
  // time; when it fires early (the deadline moved) it waits again.
  auto at = std::chrono::steady_clock::now() + std::chrono::seconds{seconds};
  deadline_phase_ = phase;
  deadline_at_ = at;
  // The pending wait may end later than the new deadline (it was armed for
  // a longer phase): move it.
  if (!timer_pending_ || at < timer_at_)
    wait_deadline();
}

void connection::disarm() {
  deadline_phase_.reset();
}

void connection::wait_deadline() {
  timer_pending_ = true;
  timer_at_ = deadline_at_;
  deadline_.expires_at(deadline_at_);
  deadline_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec == net::error::operation_aborted)
      return; // moved sooner (a new wait is pending) or closed
    self->timer_pending_ = false;
    if (self->closed_ || !self->deadline_phase_)
      return;
    if (std::chrono::steady_clock::now() < self->deadline_at_) {
      self->wait_deadline();
      return;
    }
    self->time_out(*self->deadline_phase_);
  });
}

} // namespace streamerd
