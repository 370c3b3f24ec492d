#include "server.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/stream_writer.hpp"
#include "byte_range.hpp"
#include "download_actor.hpp"
#include "sources.hpp"
#include "status_page.hpp"
#include "version.hpp"

namespace streamerd {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using asyncstream::errc;

class session;

/// What every session shares.
struct server::state : std::enable_shared_from_this<server::state> {
  caf::actor_system& sys;
  const config& cfg;
  registry& reg;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer drain_timer;
  std::atomic<bool> draining{false};
  std::mutex sessions_mtx;
  std::map<session*, std::weak_ptr<session>> sessions;
  std::atomic<std::uint64_t> next_consumer{0};
  std::shared_ptr<asyncstream::chunk_pool> pool;

  state(caf::actor_system& sys, const config& cfg, registry& reg)
    : sys(sys),
      cfg(cfg),
      reg(reg),
      ioc(static_cast<int>(cfg.threads)),
      acceptor(net::make_strand(ioc)),
      signals(ioc, SIGINT, SIGTERM),
      drain_timer(ioc),
      pool(asyncstream::chunk_pool::shared()) {
    // nop
  }

  std::vector<std::shared_ptr<session>> live_sessions() {
    std::vector<std::shared_ptr<session>> out;
    std::lock_guard<std::mutex> guard{sessions_mtx};
    for (auto& [ptr, weak] : sessions)
      if (auto s = weak.lock())
        out.push_back(std::move(s));
    return out;
  }

  void accept();
  void drain(int signal_number);
  void maybe_stop();
};

namespace {

/// Bytes asked for per pull: large enough that one writev carries a lot.
constexpr std::size_t pull_size = 4 * 1024 * 1024;

/// "No limit" for request bodies (streams are unbounded). Not `boost::none`:
/// Boost 1.74's parser compares a Content-Length with the optional limit,
/// and any number is greater than an empty optional (every upload with a
/// Content-Length would fail with `body_limit`).
constexpr std::uint64_t no_body_limit = std::numeric_limits<std::uint64_t>::max();

/// Largest request header block accepted (then 431).
constexpr std::uint32_t header_limit = 16 * 1024;

std::string peer_of(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec)
    return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

} // namespace

/// One client connection: reads requests, answers them one at a time.
class session : public std::enable_shared_from_this<session>,
                public download_sink {
public:
  session(tcp::socket socket, std::shared_ptr<server::state> srv)
    : stream_(std::move(socket)), srv_(std::move(srv)) {
    peer_ = peer_of(stream_.socket());
  }

  ~session() override {
    dl_.stop();
    if (entry_)
      entry_->untrack(consumer_);
    if (writer_)
      writer_->close_with_error(asyncstream::make_error(
        errc::io_error, "upload connection ended before the body did"));
    std::lock_guard<std::mutex> guard{srv_->sessions_mtx};
    srv_->sessions.erase(this);
  }

  void start() {
    {
      std::lock_guard<std::mutex> guard{srv_->sessions_mtx};
      srv_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->read_request(); });
  }

  /// Draining: an idle connection closes now; a busy one finishes first
  /// (or is cut when `force`).
  void drain(bool force) {
    net::post(stream_.get_executor(), [self = shared_from_this(), force] {
      if (!force && self->busy_)
        return;
      if (self->timer_) {
        self->timer_.reset(); // a ?wait= for a name: over
        self->srv_->reg.cancel_await(self->await_token_);
      }
      if (self->writer_) {
        self->writer_->close_with_error(asyncstream::make_error(
          errc::io_error, "streamerd shut down during the upload"));
        self->writer_.reset();
      }
      self->end_download("streamerd shutting down", false);
      self->close_socket();
    });
  }

  // -- download_sink (called on CAF threads) ---------------------------------

  void on_ready(caf::error err, asyncstream::stream_status st,
                std::uint64_t offset) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), err = std::move(err),
               st = std::move(st), offset]() mutable {
                self->ready(std::move(err), std::move(st), offset);
              });
  }

  void on_data(std::vector<asyncstream::slice> bytes,
               caf::error err) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), bytes = std::move(bytes),
               err = std::move(err)]() mutable {
                self->data(std::move(bytes), std::move(err));
              });
  }

private:
  // -- reading requests ------------------------------------------------------

  void read_request() {
    busy_ = false;
    if (srv_->draining) {
      close_socket();
      return;
    }
    header_parser_.emplace();
    header_parser_->header_limit(header_limit);
    header_parser_->body_limit(no_body_limit);
    http::async_read_header(
      stream_, buffer_, *header_parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->on_header(ec);
      });
  }

  void on_header(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof
        || ec == net::error::operation_aborted
        || ec == net::error::connection_reset || ec == net::error::bad_descriptor) {
      close_socket();
      return;
    }
    busy_ = true;
    keep_alive_ = false;
    head_ = false;
    if (ec == http::error::header_limit) {
      spdlog::debug("{}: request header over {} bytes", peer_, header_limit);
      respond(http::status::request_header_fields_too_large,
              "request header fields too large\n");
      return;
    }
    if (ec) {
      spdlog::debug("{}: bad request: {}", peer_, ec.message());
      respond(http::status::bad_request, "bad request: " + ec.message() + "\n");
      return;
    }
    auto& req = header_parser_->get();
    keep_alive_ = req.keep_alive();
    if (srv_->draining) {
      keep_alive_ = false;
      respond(http::status::service_unavailable, "shutting down\n");
      return;
    }
    route(req);
  }

  void route(http::request<http::empty_body>& req) {
    std::string target{req.target()};
    method_ = std::string{req.method_string()};
    target_ = target;
    auto path = target.substr(0, target.find('?'));
    auto method = req.method();
    // A body we do not read makes the connection unusable afterwards.
    bool has_body = req.has_content_length() || req.chunked();
    if (has_body && method != http::verb::put && method != http::verb::post)
      keep_alive_ = false;
    static const std::string prefix = "/streams/";
    if (path.compare(0, prefix.size(), prefix) == 0) {
      auto name = path.substr(prefix.size());
      if (!valid_stream_name(name)) {
        keep_alive_ = keep_alive_ && !has_body;
        respond(http::status::bad_request,
                "invalid stream name: use 1-64 characters of A-Z a-z 0-9 . _ "
                "- (not starting with a dot)\n");
        return;
      }
      switch (method) {
        case http::verb::get:
          return start_get(name, target, false);
        case http::verb::head:
          return start_get(name, target, true);
        case http::verb::put:
        case http::verb::post:
          return start_upload(name);
        case http::verb::delete_:
          return remove_stream(name);
        default:
          keep_alive_ = false;
          return respond(http::status::method_not_allowed,
                         "method not allowed\n", "text/plain; charset=utf-8",
                         {{"Allow", "GET, HEAD, PUT, POST, DELETE"}});
      }
    }
    bool get = method == http::verb::get || method == http::verb::head;
    head_ = method == http::verb::head;
    if (path == "/" || path == "/index.html") {
      if (!get)
        return not_allowed();
      return respond(http::status::ok, status_page_html,
                     "text/html; charset=utf-8");
    }
    if (path == "/metrics") {
      if (!get)
        return not_allowed();
      auto reports = srv_->reg.snapshot();
      return respond(http::status::ok, render_metrics(srv_->reg, reports),
                     "text/plain; version=0.0.4; charset=utf-8");
    }
    if (path == "/status.json") {
      if (!get)
        return not_allowed();
      auto reports = srv_->reg.snapshot();
      return respond(http::status::ok, render_status_json(srv_->reg, reports),
                     "application/json");
    }
    respond(http::status::not_found, "not found\n");
  }

  void not_allowed() {
    keep_alive_ = false;
    respond(http::status::method_not_allowed, "method not allowed\n",
            "text/plain; charset=utf-8", {{"Allow", "GET, HEAD"}});
  }

  // -- small answers -----------------------------------------------------------

  using header_list = std::vector<std::pair<std::string, std::string>>;

  void respond(http::status status, std::string body,
               std::string content_type = "text/plain; charset=utf-8",
               header_list extra = {}) {
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    res->set(http::field::server, "streamerd/" STREAMERD_VERSION);
    res->set(http::field::content_type, content_type);
    res->set(http::field::cache_control, "no-store");
    for (auto& [k, v] : extra)
      res->set(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(body);
    res->prepare_payload();
    if (head_)
      res->body().clear(); // Content-Length stays that of the GET
    log_answer(static_cast<unsigned>(status));
    http::async_write(stream_, *res,
                      [self = shared_from_this(),
                       res](beast::error_code ec, std::size_t) {
                        self->after_answer(ec);
                      });
  }

  void log_answer(unsigned code) {
    srv_->reg.count_request(code);
    spdlog::debug("{} {} {} -> {}", peer_, method_, target_, code);
  }

  void after_answer(beast::error_code ec) {
    if (ec || !keep_alive_) {
      close_socket();
      return;
    }
    read_request();
  }

  void close_socket() {
    beast::error_code ec;
    auto& s = stream_.socket();
    if (!s.is_open())
      return;
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
  }

  // -- GET and HEAD of a stream ----------------------------------------------

  void start_get(const std::string& name, const std::string& target,
                 bool head) {
    head_ = head;
    range_.reset();
    if (auto value = header_parser_->get()[http::field::range];
        !value.empty()) {
      byte_range r;
      auto parsed = parse_range(std::string_view{value.data(), value.size()},
                                r);
      if (parsed != range_parse::ok) {
        return respond(http::status::range_not_satisfiable,
                       parsed == range_parse::multiple
                         ? "only a single byte range is supported\n"
                         : "malformed Range header\n");
      }
      range_ = r;
    }
    if (auto e = srv_->reg.find(name))
      return start_download(std::move(e));
    // Not there yet: wait for it if asked to, for a bounded time.
    std::uint64_t wait_s = 0;
    if (auto w = query_param(target, "wait"); w && !parse_seconds(*w, wait_s))
      return respond(http::status::bad_request,
                     "wait: expected whole seconds\n");
    wait_s = std::min(wait_s, srv_->cfg.max_wait_s);
    if (wait_s == 0)
      return respond(http::status::not_found, "no stream " + name + "\n");
    timer_.emplace(stream_.get_executor());
    timer_->expires_after(std::chrono::seconds{wait_s});
    std::weak_ptr<session> weak = shared_from_this();
    await_token_ = srv_->reg.await(name, [weak, name] {
      if (auto self = weak.lock())
        net::post(self->stream_.get_executor(), [self, name] {
          if (!self->timer_)
            return; // the wait is over already
          self->timer_.reset();
          if (auto e = self->srv_->reg.find(name))
            self->start_download(std::move(e));
          else
            self->respond(http::status::not_found, "no stream " + name + "\n");
        });
    });
    timer_->async_wait([self = shared_from_this(),
                        name](beast::error_code ec) {
      if (ec || !self->timer_)
        return;
      self->timer_.reset();
      self->srv_->reg.cancel_await(self->await_token_);
      self->respond(http::status::not_found,
                    "no stream " + name + " (waited)\n");
    });
  }

  void start_download(registry::entry_ptr e) {
    entry_ = std::move(e);
    // File-backed: the published bytes go out with sendfile(2) from the
    // stream file (no copy in user space, none into the socket either).
    file_fd_ = entry_->stream.file_descriptor();
    download_request req;
    req.stream = entry_->stream;
    req.open_reader = !head_;
    req.queue_timeout = std::chrono::seconds{srv_->cfg.queue_timeout_s};
    if (range_ && range_->form == byte_range::kind::suffix)
      req.suffix = range_->suffix;
    else if (range_)
      req.offset = range_->first;
    dl_ = download_handle::start(srv_->sys, std::move(req),
                                 shared_from_this());
    // A client that leaves while waiting for a reader slot or for its
    // first bytes frees them at once.
    watch_disconnect();
  }

  void ready(caf::error err, asyncstream::stream_status st,
             std::uint64_t offset) {
    if (err) {
      dl_.stop();
      auto name = entry_->name;
      entry_.reset();
      if (asyncstream::is(err, errc::timeout)) {
        spdlog::info("{}: stream {} has {} readers: 503", peer_, name,
                     srv_->cfg.max_readers);
        return respond(http::status::service_unavailable,
                       "too many readers of " + name + ", retry later\n",
                       "text/plain; charset=utf-8",
                       {{"Retry-After",
                         std::to_string(srv_->cfg.retry_after_s)}});
      }
      if (asyncstream::is(err, errc::closing)
          || asyncstream::is(err, errc::removing)
          || asyncstream::is(err, errc::canceled)
          || asyncstream::is(err, errc::stream_gone))
        return respond(http::status::not_found, "stream " + name + " is gone\n");
      spdlog::error("{}: opening stream {}: {}", peer_, name,
                    asyncstream::render(err));
      return respond(http::status::internal_server_error,
                     asyncstream::render(err) + "\n");
    }
    bool complete = st.final && !st.error;
    range_plan plan;
    plan.offset = offset;
    if (range_ && range_->form == byte_range::kind::suffix) {
      plan.length = st.size - offset;
    } else if (range_) {
      plan = plan_range(*range_, st.size, complete);
    } else if (complete) {
      plan.length = st.size;
    }
    if (plan.unsatisfiable) {
      dl_.stop();
      entry_.reset();
      return respond(http::status::range_not_satisfiable,
                     "range not satisfiable: the stream has "
                       + std::to_string(st.size) + " bytes\n",
                     "text/plain; charset=utf-8",
                     {{"Content-Range", "bytes */" + std::to_string(st.size)}});
    }
    auto res = std::make_shared<http::response<http::empty_body>>(
      range_ ? http::status::partial_content : http::status::ok, 11);
    res->set(http::field::server, "streamerd/" STREAMERD_VERSION);
    res->set(http::field::content_type, "application/octet-stream");
    res->set(http::field::accept_ranges, "bytes");
    res->set(http::field::cache_control, "no-store");
    res->set("X-Stream-State",
             !st.final ? "live" : (st.error ? "failed" : "ended"));
    if (range_)
      res->set(http::field::content_range,
               content_range(plan.offset, plan.length,
                             complete ? std::optional<std::uint64_t>{st.size}
                                      : std::nullopt));
    chunked_ = !complete;
    if (chunked_)
      res->chunked(true);
    else
      res->content_length(*plan.length);
    res->keep_alive(keep_alive_);
    remaining_ = plan.length;
    pos_ = plan.offset;
    log_answer(range_ ? 206 : 200);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(
      *res);
    http::async_write_header(
      stream_, *sr,
      [self = shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
        self->after_header(ec);
      });
  }

  void after_header(beast::error_code ec) {
    if (ec) {
      end_download("client gone before the header was sent", false);
      return;
    }
    if (head_) {
      dl_.stop();
      entry_.reset();
      after_answer({});
      return;
    }
    streaming_ = true;
    consumer_ = ++srv_->next_consumer;
    entry_->track(consumer_, pos_);
    ++srv_->reg.open_readers;
    pull();
  }

  /// Notices a client that goes away while we wait for bytes, so its reader
  /// is freed at once rather than at the next write.
  void watch_disconnect() {
    stream_.socket().async_wait(
      tcp::socket::wait_read,
      [self = shared_from_this(), gen = generation_](beast::error_code ec) {
        if (!self->entry_ || gen != self->generation_)
          return;
        if (ec) {
          self->end_download("connection closed: " + ec.message(), false);
          return;
        }
        char c;
        auto n = ::recv(self->stream_.socket().native_handle(), &c, 1,
                        MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
          self->end_download("client disconnected", false);
        // n > 0: a pipelined request waits in the socket; leave it there.
      });
  }

  void pull() {
    if (remaining_ && *remaining_ == 0) {
      finish_body();
      return;
    }
    auto max = remaining_ ? std::min<std::uint64_t>(*remaining_, pull_size)
                          : pull_size;
    dl_.pull(static_cast<std::size_t>(max));
  }

  void data(std::vector<asyncstream::slice> bytes, caf::error err) {
    if (!streaming_)
      return;
    if (!bytes.empty() && file_fd_ >= 0) {
      std::uint64_t n = 0;
      for (auto& x : bytes)
        n += x.size();
      // The slices only said how many bytes exist: they go out of the file.
      bytes.clear();
      send_file(n);
      return;
    }
    if (!bytes.empty()) {
      std::size_t n = 0;
      std::vector<net::const_buffer> bufs;
      bufs.reserve(bytes.size());
      for (auto& x : bytes) {
        bufs.emplace_back(x.data(), x.size());
        n += x.size();
      }
      in_flight_ = std::move(bytes);
      auto done = [self = shared_from_this(), n](beast::error_code ec,
                                                 std::size_t) {
        self->written(ec, n);
      };
      if (chunked_)
        net::async_write(stream_.socket(), http::make_chunk(bufs),
                         std::move(done));
      else
        net::async_write(stream_.socket(), bufs, std::move(done));
      return;
    }
    if (!err) {
      finish_body();
      return;
    }
    // The stream failed (or was aborted) here: the response ends truncated.
    spdlog::warn("{}: response of stream {} truncated at offset {}: {}", peer_,
                 entry_->name, pos_, asyncstream::render(err));
    end_download("stream failed", false);
  }

  /// Sends stream bytes [pos_, pos_ + n) from the stream file, framed as one
  /// chunk for a chunked body.
  void send_file(std::uint64_t n) {
    file_left_ = n;
    file_off_ = pos_;
    file_total_ = n;
    if (!chunked_)
      return send_file_some();
    char head[32];
    auto len = std::snprintf(head, sizeof(head), "%llx\r\n",
                             static_cast<unsigned long long>(n));
    chunk_head_.assign(head, static_cast<std::size_t>(len));
    net::async_write(stream_.socket(), net::buffer(chunk_head_),
                     [self = shared_from_this()](beast::error_code ec,
                                                 std::size_t) {
                       if (ec)
                         return self->written(ec, 0);
                       self->send_file_some();
                     });
  }

  void send_file_some() {
    auto& sock = stream_.socket();
    beast::error_code ec;
    sock.native_non_blocking(true, ec);
    while (!ec && file_left_ > 0) {
      auto off = static_cast<off_t>(file_off_);
      auto max = std::min<std::uint64_t>(file_left_, std::uint64_t{1} << 30);
      auto res = ::sendfile(sock.native_handle(), file_fd_, &off,
                            static_cast<std::size_t>(max));
      if (res > 0) {
        file_off_ += static_cast<std::uint64_t>(res);
        file_left_ -= static_cast<std::uint64_t>(res);
      } else if (res < 0 && errno == EINTR) {
        continue;
      } else if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        sock.async_wait(tcp::socket::wait_write,
                        [self = shared_from_this()](beast::error_code ec) {
                          if (ec)
                            return self->written(ec, 0);
                          self->send_file_some();
                        });
        return;
      } else {
        ec = res < 0 ? beast::error_code{errno, beast::system_category()}
                     : make_error_code(net::error::eof); // file too short
      }
    }
    if (ec)
      return written(ec, 0);
    if (!chunked_)
      return written({}, static_cast<std::size_t>(file_total_));
    static const std::string crlf = "\r\n";
    net::async_write(stream_.socket(), net::buffer(crlf),
                     [self = shared_from_this()](beast::error_code ec,
                                                 std::size_t) {
                       self->written(ec,
                                     static_cast<std::size_t>(
                                       self->file_total_));
                     });
  }

  void written(beast::error_code ec, std::size_t n) {
    in_flight_.clear();
    if (!streaming_)
      return;
    if (ec) {
      end_download("write failed: " + ec.message(), false);
      return;
    }
    pos_ += n;
    entry_->bytes_out += n;
    entry_->track(consumer_, pos_);
    if (remaining_)
      *remaining_ -= n;
    pull();
  }

  void finish_body() {
    if (!chunked_) {
      end_download({}, true);
      return;
    }
    net::async_write(stream_.socket(), http::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code ec,
                                                 std::size_t) {
                       self->end_download(ec ? "final chunk: " + ec.message()
                                             : std::string{},
                                          !ec);
                     });
  }

  /// Ends the response: complete (`ok`) or cut off, which closes the
  /// connection so the client sees a truncated transfer.
  void end_download(const std::string& why, bool ok) {
    if (!streaming_ && !entry_)
      return;
    bool was_streaming = streaming_;
    streaming_ = false;
    ++generation_;
    dl_.stop();
    if (entry_) {
      entry_->untrack(consumer_);
      if (!ok && !why.empty())
        spdlog::debug("{}: GET {} ended at offset {}: {}", peer_, entry_->name,
                      pos_, why);
      entry_.reset();
    }
    if (was_streaming)
      --srv_->reg.open_readers;
    if (!ok) {
      close_socket();
      return;
    }
    after_answer({});
  }

  // -- uploads ---------------------------------------------------------------

  void start_upload(const std::string& name) {
    auto s = make_stream(srv_->sys, srv_->cfg, asyncstream::source::push());
    if (!s) {
      keep_alive_ = false;
      spdlog::error("{}: cannot make stream {}: {}", peer_, name,
                    asyncstream::render(s.error()));
      return respond(http::status::internal_server_error,
                     asyncstream::render(s.error()) + "\n");
    }
    auto w = s->writer();
    auto e = std::make_shared<stream_entry>();
    e->name = name;
    e->origin = "upload from " + peer_;
    e->stream = *s;
    e->created = std::chrono::system_clock::now();
    if (!srv_->reg.add(e)) {
      keep_alive_ = false; // the body is not read
      return respond(http::status::conflict,
                     "stream " + name + " exists already\n");
    }
    log_when_final(srv_->sys, e);
    spdlog::info("{}: upload of stream {} started", peer_, name);
    upload_name_ = name;
    writer_.emplace(std::move(*w));
    uploaded_ = 0;
    body_reads_ = 0;
    direct_left_.reset();
    body_parser_.emplace(std::move(*header_parser_));
    body_parser_->body_limit(no_body_limit);
    // Beast reads max(512, free capacity) bytes per call (at most 64 KiB):
    // without room in the buffer every read(2) would be 512 bytes.
    buffer_.reserve(64 * 1024);
    auto expect = body_parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_.socket(), net::buffer(cont),
                       [self = shared_from_this()](beast::error_code ec,
                                                   std::size_t) {
                         if (ec)
                           return self->upload_failed(ec);
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  /// Reads the body: straight from the socket into chunks when its length
  /// is known, through Beast's parser when it is chunked.
  void read_body() {
    if (!writer_) {
      close_socket();
      return;
    }
    auto& req = body_parser_->get();
    if (!req.chunked() && req.has_content_length() && !body_parser_->is_done()) {
      if (!direct_left_) {
        direct_left_ = body_parser_->content_length().value_or(0);
        // Bytes that came with the header are in Beast's buffer already.
        auto pending = buffer_.data();
        auto n = std::min<std::uint64_t>(net::buffer_size(pending),
                                         *direct_left_);
        std::vector<char> head(static_cast<std::size_t>(n));
        net::buffer_copy(net::buffer(head), pending);
        buffer_.consume(static_cast<std::size_t>(n));
        for (std::size_t off = 0; off < head.size();) {
          if (!chunk_ || filled_ == chunk_->capacity()) {
            chunk_ = srv_->pool->acquire();
            filled_ = 0;
          }
          auto k = std::min(head.size() - off, chunk_->capacity() - filled_);
          std::memcpy(chunk_->mutable_data() + filled_, head.data() + off, k);
          if (!publish_body(k))
            return;
          off += k;
        }
        *direct_left_ -= n;
      }
      return read_direct();
    }
    if (body_parser_->is_done())
      return upload_done();
    if (!chunk_ || filled_ == chunk_->capacity()) {
      chunk_ = srv_->pool->acquire();
      filled_ = 0;
    }
    auto& body = body_parser_->get().body();
    body.data = chunk_->mutable_data() + filled_;
    body.size = chunk_->capacity() - filled_;
    body.more = true;
    http::async_read_some(stream_, buffer_, *body_parser_,
                          [self = shared_from_this()](beast::error_code ec,
                                                      std::size_t) {
                            self->on_body(ec);
                          });
  }

  /// A body of known length: each read(2) goes into the chunk's tail.
  void read_direct() {
    if (*direct_left_ == 0)
      return upload_done();
    if (!chunk_ || filled_ == chunk_->capacity()) {
      chunk_ = srv_->pool->acquire();
      filled_ = 0;
    }
    auto room = std::min<std::uint64_t>(chunk_->capacity() - filled_,
                                        *direct_left_);
    stream_.socket().async_read_some(
      net::buffer(chunk_->mutable_data() + filled_,
                  static_cast<std::size_t>(room)),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        ++self->body_reads_;
        if (!self->writer_) {
          self->close_socket();
          return;
        }
        if (n > 0) {
          if (!self->publish_body(n))
            return;
          *self->direct_left_ -= n;
        }
        if (ec) {
          if (ec == net::error::eof)
            ec = http::error::partial_message;
          return self->upload_failed(ec);
        }
        self->read_direct();
      });
  }

  /// Hands the next `n` bytes of the chunk to the stream's writer (no
  /// copy); false (and the request answered) if the stream refused them.
  bool publish_body(std::size_t n) {
    if (auto err = writer_->write(asyncstream::slice{chunk_, filled_, n})) {
      spdlog::warn("{}: stream {} refused bytes: {}", peer_, upload_name_,
                   asyncstream::render(err));
      writer_.reset();
      keep_alive_ = false;
      respond(http::status::internal_server_error,
              asyncstream::render(err) + "\n");
      return false;
    }
    filled_ += n;
    uploaded_ += n;
    return true;
  }

  void on_body(beast::error_code ec) {
    ++body_reads_;
    if (!writer_) {
      // The upload was ended meanwhile (a forced drain): nothing to add.
      close_socket();
      return;
    }
    auto& body = body_parser_->get().body();
    auto n = (chunk_->capacity() - filled_) - body.size;
    if (n > 0 && !publish_body(n))
      return;
    if (ec == http::error::need_buffer)
      ec = {};
    if (ec)
      return upload_failed(ec);
    read_body();
  }

  void upload_done() {
    writer_->close();
    writer_.reset();
    chunk_.reset();
    spdlog::info("{}: upload of stream {} complete: {} bytes in {} reads",
                 peer_, upload_name_, uploaded_, body_reads_);
    respond(http::status::created,
            upload_name_ + ": " + std::to_string(uploaded_) + " bytes\n");
  }

  void upload_failed(beast::error_code ec) {
    auto why = "upload broke off after " + std::to_string(uploaded_)
               + " bytes: " + ec.message();
    if (writer_) {
      spdlog::warn("{}: stream {}: {}", peer_, upload_name_, why);
      writer_->close_with_error(asyncstream::make_error(errc::io_error, why));
      writer_.reset();
    }
    chunk_.reset();
    close_socket();
  }

  // -- DELETE ------------------------------------------------------------------

  void remove_stream(const std::string& name) {
    auto e = srv_->reg.remove(name);
    if (!e)
      return respond(http::status::not_found, "no stream " + name + "\n");
    std::uint64_t size = 0;
    if (auto st = e->stream.status())
      size = st->size;
    srv_->reg.retire(size, e->bytes_out.load());
    spdlog::info("{}: stream {} deleted ({} bytes)", peer_, name, size);
    respond(http::status::no_content, {});
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<server::state> srv_;
  std::string peer_;
  std::string method_;
  std::string target_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::buffer_body>> body_parser_;
  bool busy_ = false;
  bool keep_alive_ = false;
  bool head_ = false;
  // GET state.
  std::optional<byte_range> range_;
  registry::entry_ptr entry_;
  download_handle dl_;
  bool streaming_ = false;
  bool chunked_ = false;
  std::uint64_t generation_ = 0;
  std::optional<std::uint64_t> remaining_;
  std::uint64_t pos_ = 0;
  std::uint64_t consumer_ = 0;
  std::vector<asyncstream::slice> in_flight_;
  int file_fd_ = -1;
  std::uint64_t file_off_ = 0;
  std::uint64_t file_left_ = 0;
  std::uint64_t file_total_ = 0;
  std::string chunk_head_;
  std::optional<net::steady_timer> timer_;
  std::uint64_t await_token_ = 0;
  // Upload state.
  std::string upload_name_;
  std::optional<asyncstream::stream_writer> writer_;
  asyncstream::mutable_chunk_ptr chunk_;
  std::size_t filled_ = 0;
  std::uint64_t uploaded_ = 0;
  std::uint64_t body_reads_ = 0;
  /// Bytes of a Content-Length body still to read directly.
  std::optional<std::uint64_t> direct_left_;
};

// -- server::state ------------------------------------------------------------

void server::state::accept() {
  acceptor.async_accept(
    net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != net::error::operation_aborted)
          spdlog::warn("accept: {}", ec.message());
        if (!acceptor.is_open())
          return;
      } else {
        socket.set_option(tcp::no_delay{true}, ec);
        std::make_shared<session>(std::move(socket), shared_from_this())
          ->start();
      }
      accept();
    });
}

void server::state::drain(int signal_number) {
  if (draining.exchange(true))
    return;
  spdlog::info("signal {}: draining (at most {} s)", signal_number,
               cfg.drain_timeout_s);
  // The acceptor lives on its own strand: close it there.
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
  });
  for (auto& s : live_sessions())
    s->drain(false);
  drain_timer.expires_after(std::chrono::seconds{cfg.drain_timeout_s});
  drain_timer.async_wait([this](beast::error_code ec) {
    if (ec)
      return;
    auto left = live_sessions();
    if (!left.empty())
      spdlog::warn("drain deadline: closing {} connection(s)", left.size());
    for (auto& s : left)
      s->drain(true);
    // Let the closes run, then stop.
    net::post(ioc, [this] { ioc.stop(); });
  });
  maybe_stop();
}

void server::state::maybe_stop() {
  if (!draining)
    return;
  if (live_sessions().empty()) {
    spdlog::info("drained: no connection left");
    ioc.stop();
    return;
  }
  // Check again shortly: sessions end on their own threads.
  auto t = std::make_shared<net::steady_timer>(ioc);
  t->expires_after(std::chrono::milliseconds{50});
  t->async_wait([this, t](beast::error_code ec) {
    if (!ec)
      maybe_stop();
  });
}

// -- server -------------------------------------------------------------------

server::server(caf::actor_system& sys, const config& cfg, registry& reg)
  : state_(std::make_shared<state>(sys, cfg, reg)) {
  // nop
}

server::~server() {
  shutdown();
}

std::string server::listen() {
  auto& st = *state_;
  beast::error_code ec;
  auto addr = net::ip::make_address(st.cfg.host, ec);
  if (ec)
    return "invalid listen address '" + st.cfg.host + "': " + ec.message();
  tcp::endpoint ep{addr, st.cfg.port};
  st.acceptor.open(ep.protocol(), ec);
  if (!ec)
    st.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    st.acceptor.bind(ep, ec);
  if (!ec)
    st.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + st.cfg.host + ":" + std::to_string(st.cfg.port)
           + ": " + ec.message();
  return {};
}

void server::run() {
  auto& st = *state_;
  st.signals.async_wait([&st](beast::error_code ec, int sig) {
    if (!ec)
      st.drain(sig);
  });
  st.accept();
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < st.cfg.threads; ++i)
    extra.emplace_back([&st] { st.ioc.run(); });
  st.ioc.run();
  for (auto& t : extra)
    t.join();
}

void server::shutdown() {
  if (!state_)
    return;
  auto& st = *state_;
  beast::error_code ec;
  st.acceptor.close(ec);
  st.signals.cancel(ec);
  // The sessions still alive hold readers and writers: end them now, and run
  // their handlers until they are gone (their download actors may still
  // post to them meanwhile), for at most a few seconds.
  for (auto& s : st.live_sessions())
    s->drain(true);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  do {
    st.ioc.restart();
    st.ioc.run_for(std::chrono::milliseconds{10});
  } while (!st.live_sessions().empty()
           && std::chrono::steady_clock::now() < deadline);
  if (auto n = st.live_sessions().size(); n > 0)
    spdlog::warn("{} connection(s) still open at shutdown", n);
}

} // namespace streamerd
