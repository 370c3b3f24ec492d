#include "download.hpp"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "answer.hpp"
#include "asyncstream/error.hpp"
#include "byte_range.hpp"
#include "connection.hpp"
#include "download_actor.hpp"

namespace streamerd {

using asyncstream::errc;

namespace {

/// Bytes asked for per pull: large enough that one write carries a lot.
constexpr std::uint64_t pull_size = 4 * 1024 * 1024;

/// How the end of a response body is marked.
enum class framing {
  /// Content-Length: the stream is complete, its length known.
  length,
  /// Transfer-Encoding: chunked (HTTP/1.1, length unknown).
  chunked,
  /// The connection closes after the body (HTTP/1.0, length unknown).
  close_delimited,
};

/// Routes the download actor's reports into `bind`-ed handlers.
class sink_adapter final : public download_sink {
public:
  using ready_fn
    = std::function<void(caf::error, asyncstream::stream_status, std::uint64_t)>;
  using data_fn
    = std::function<void(std::vector<asyncstream::slice>, caf::error)>;

  sink_adapter(ready_fn on_ready, data_fn on_data)
    : on_ready_(std::move(on_ready)), on_data_(std::move(on_data)) {
    // nop
  }

  void on_ready(caf::error err, asyncstream::stream_status st,
                std::uint64_t offset) override {
    on_ready_(std::move(err), std::move(st), offset);
  }

  void on_data(std::vector<asyncstream::slice> bytes,
               caf::error err) override {
    on_data_(std::move(bytes), std::move(err));
  }

private:
  ready_fn on_ready_;
  data_fn on_data_;
};

/// Text safe in a header field: printable ASCII, at most 200 bytes.
std::string header_text(const std::string& x) {
  std::string out;
  for (auto c : x) {
    if (out.size() >= 200)
      break;
    out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  return out;
}

/// The failure signal a relay reads (docs/relays.md): a failed stream's
/// responses say how many bytes it has before its error, and why.
void mark_failed(response_head& head, std::uint64_t size,
                 const caf::error& err) {
  head.set("X-Stream-State", "failed");
  head.set("X-Stream-Failed-At", std::to_string(size));
  head.set("X-Stream-Error", header_text(asyncstream::render(err)));
}

/// What one write of stream bytes holds on to until it is done.
struct outgoing {
  std::string head;
  std::vector<asyncstream::slice> slices;
};

class download final : public exchange {
public:
  download(connection& conn, download_request req)
    : exchange(conn), req_(std::move(req)), ctx_(conn.context()) {
    // nop
  }

  void start() override {
    if (!req_.range.empty() && !req_.if_range) {
      byte_range r;
      switch (parse_range(req_.range, r)) {
        case range_parse::ok:
          range_ = r;
          break;
        case range_parse::malformed:
          malformed_range_ = true;
          break;
        default: // none, an unknown unit, several ranges: the whole body
          break;
      }
    }
    if (auto e = ctx_.reg.find(req_.name)) {
      open(std::move(e));
      return;
    }
    std::uint64_t wait_s = 0;
    if (req_.wait && !parse_seconds(*req_.wait, wait_s)) {
      reply(plain_answer(400, "wait: expected whole seconds\n"));
      return;
    }
    wait_s = std::min(wait_s, ctx_.cfg.max_wait_s);
    if (wait_s == 0) {
      reply(plain_answer(404, "no stream " + req_.name + "\n"));
      return;
    }
    // Not there yet: wait for it, for a bounded time.
    state_ = state::waiting_name;
    waiting_name_ = gauge_hold{ctx_.stats.waiting_name};
    wait_timer_.emplace(conn_.executor());
    wait_timer_->expires_after(std::chrono::seconds{wait_s});
    wait_timer_->async_wait(conn_.bind([this](error_code ec) {
      if (!ec)
        on_name_wait_over();
    }));
    await_token_ = ctx_.reg.await(req_.name,
                                  conn_.bind([this] { on_name_added(); }));
    conn_.watch_peer();
  }

  void release(end_reason why, const std::string& detail) override {
    auto was = state_;
    state_ = state::done;
    dl_.stop();
    if (await_token_ != 0) {
      ctx_.reg.cancel_await(await_token_);
      await_token_ = 0;
    }
    if (wait_timer_) {
      error_code ec;
      wait_timer_->cancel(ec);
    }
    waiting_name_.reset();
    waiting_slot_.reset();
    reader_.reset();
    if (entry_ && consumer_ != 0)
      entry_->untrack(consumer_);
    if (why == end_reason::timeout)
      spdlog::info("{}: dropped the consumer of stream {} at offset {}: {}",
                   conn_.peer(), req_.name, pos_, detail);
    else if (why != end_reason::complete && was != state::done)
      spdlog::debug("{}: GET {} ended at offset {}: {}: {}", conn_.peer(),
                    req_.name, pos_, to_string(why), detail);
    entry_.reset();
  }

private:
  enum class state {
    init,
    waiting_name,
    opening,
    sending_head,
    waiting_bytes,
    writing,
    done,
  };

  // -- small answers ---------------------------------------------------------

  void reply(full_response res) {
    state_ = state::sending_head;
    send_full(conn_, std::move(res), req_.keep_alive, req_.head);
  }

  void reply_unsatisfiable(std::optional<std::uint64_t> total,
                           std::string text) {
    auto res = plain_answer(416, std::move(text));
    if (total)
      res.head.set("Content-Range", unsatisfied_range(*total));
    reply(std::move(res));
  }

  // -- waiting for the name --------------------------------------------------

  void on_name_added() {
    if (state_ != state::waiting_name)
      return;
    await_token_ = 0;
    error_code ec;
    wait_timer_->cancel(ec);
    waiting_name_.reset();
    if (auto e = ctx_.reg.find(req_.name))
      open(std::move(e));
    else // deleted again meanwhile
      reply(plain_answer(404, "no stream " + req_.name + "\n"));
  }

  void on_name_wait_over() {
    if (state_ != state::waiting_name)
      return;
    ctx_.reg.cancel_await(await_token_);
    await_token_ = 0;
    waiting_name_.reset();
    reply(plain_answer(404, "no stream " + req_.name + " (waited)\n"));
  }

  // -- opening a reader ------------------------------------------------------

  void open(registry::entry_ptr e) {
    entry_ = std::move(e);
    if (entry_->on_demand)
      entry_->on_demand(); // a relay that starts on first demand
    if (malformed_range_) {
      auto st = entry_->stream.stats();
      std::optional<std::uint64_t> total;
      if (st.final && !st.error)
        total = st.size;
      reply_unsatisfiable(total, "malformed Range header\n");
      return;
    }
    state_ = state::opening;
    waiting_slot_ = gauge_hold{ctx_.stats.waiting_slot};
    // File-backed: published bytes go out with sendfile(2) from the stream
    // file (no copy in user space).
    file_fd_ = entry_->stream.file_descriptor();
    download_actor_request r;
    r.stream = entry_->stream;
    r.queue_timeout = std::chrono::seconds{ctx_.cfg.queue_timeout_s};
    if (range_ && range_->form == byte_range::kind::suffix) {
      r.suffix = range_->suffix;
    } else if (range_) {
      r.offset = range_->first;
      r.wait_first = true;
    }
    auto sink = std::make_shared<sink_adapter>(
      conn_.bind([this](caf::error err, asyncstream::stream_status st,
                        std::uint64_t offset) {
        on_ready(std::move(err), std::move(st), offset);
      }),
      conn_.bind([this](std::vector<asyncstream::slice> xs, caf::error err) {
        on_data(std::move(xs), std::move(err));
      }));
    dl_ = download_handle::start(ctx_.sys, std::move(r), std::move(sink));
    // A client that leaves while it waits for a slot, its range's first
    // byte or the stream's bytes frees them at once.
    conn_.watch_peer();
  }

  void on_ready(caf::error err, asyncstream::stream_status st,
                std::uint64_t offset) {
    if (state_ != state::opening)
      return;
    waiting_slot_.reset();
    if (err)
      return refuse_open(err);
    bool complete = st.final && !st.error;
    range_plan plan;
    plan.offset = offset;
    if (range_) {
      bool suffix = range_->form == byte_range::kind::suffix;
      if (st.final && st.error && (suffix || range_->first >= st.size)) {
        // The range lies past the point where the stream failed.
        dl_.stop();
        auto res = plain_answer(500, "stream " + req_.name + " failed after "
                                       + std::to_string(st.size) + " bytes: "
                                       + asyncstream::render(st.error) + "\n");
        mark_failed(res.head, st.size, st.error);
        reply(std::move(res));
        return;
      }
      plan = plan_range(*range_, st.size, complete);
      if (plan.unsatisfiable) {
        dl_.stop();
        std::optional<std::uint64_t> total;
        if (complete)
          total = st.size;
        reply_unsatisfiable(total, "range not satisfiable: the stream has "
                                     + std::to_string(st.size) + " bytes\n");
        return;
      }
    } else if (complete) {
      plan.length = st.size;
    }
    send_head(st, plan, complete);
  }

  void refuse_open(const caf::error& err) {
    auto& name = req_.name;
    if (asyncstream::is(err, errc::timeout)) {
      spdlog::info("{}: stream {} has {} readers: 503", conn_.peer(), name,
                   ctx_.cfg.max_readers);
      auto res = plain_answer(503, "too many readers of " + name
                                     + ", retry later\n");
      res.head.set("Retry-After", std::to_string(ctx_.cfg.retry_after_s));
      return reply(std::move(res));
    }
    if (asyncstream::is(err, errc::closing) || asyncstream::is(err, errc::removing)
        || asyncstream::is(err, errc::canceled)
        || asyncstream::is(err, errc::stream_gone))
      return reply(plain_answer(404, "stream " + name + " is gone\n"));
    if (asyncstream::is(err, errc::data_loss))
      return reply_unsatisfiable(std::nullopt,
                                 "range not satisfiable: "
                                   + asyncstream::render(err) + "\n");
    if (range_) {
      // The stream failed before the range's first byte.
      auto res = plain_answer(500, "stream " + name + " failed: "
                                     + asyncstream::render(err) + "\n");
      auto st = entry_->stream.stats();
      if (st.final && st.error)
        mark_failed(res.head, st.size, st.error);
      return reply(std::move(res));
    }
    spdlog::error("{}: opening stream {}: {}", conn_.peer(), name,
                  asyncstream::render(err));
    reply(plain_answer(500, asyncstream::render(err) + "\n"));
  }

  // -- the response ----------------------------------------------------------

  void send_head(const asyncstream::stream_status& st, const range_plan& plan,
                 bool complete) {
    state_ = state::sending_head;
    if (complete)
      framing_ = framing::length;
    else if (req_.http10)
      framing_ = framing::close_delimited;
    else
      framing_ = framing::chunked;
    keep_alive_ = req_.keep_alive && conn_.may_keep_alive()
                  && framing_ != framing::close_delimited;
    unsigned status = range_ ? 206 : 200;
    response_head head{status};
    head.set("Content-Type", "application/octet-stream");
    head.set("Accept-Ranges", "bytes");
    head.set("Cache-Control", "no-store");
    if (st.final && st.error)
      mark_failed(head, st.size, st.error);
    else
      head.set("X-Stream-State", st.final ? "ended" : "live");
    if (range_)
      head.set("Content-Range",
               content_range(plan.offset, plan.length,
                             complete ? std::optional<std::uint64_t>{st.size}
                                      : std::nullopt));
    switch (framing_) {
      case framing::length:
        head.set("Content-Length", std::to_string(plan.length.value_or(0)));
        break;
      case framing::chunked:
        head.set("Transfer-Encoding", "chunked");
        break;
      case framing::close_delimited:
        break;
    }
    if (!keep_alive_)
      head.set("Connection", "close");
    remaining_ = plan.length;
    pos_ = plan.offset;
    ctx_.reg.count_request(status);
    auto out = std::make_shared<std::string>(head.render());
    conn_.send({net::buffer(*out)}, out, [this](error_code ec) {
      if (ec)
        return conn_.close_with(end_reason::client_gone,
                                "before the header was sent: " + ec.message());
      if (req_.head) {
        dl_.stop();
        return conn_.finish(keep_alive_);
      }
      reader_ = gauge_hold{ctx_.reg.open_readers};
      consumer_ = next_consumer();
      entry_->track(consumer_, pos_);
      pull();
    });
  }

  static std::uint64_t next_consumer() {
    static std::atomic<std::uint64_t> n{0};
    return ++n;
  }

  void pull() {
    if (remaining_ && *remaining_ == 0)
      return finish_body();
    state_ = state::waiting_bytes;
    auto max = remaining_ ? std::min(*remaining_, pull_size) : pull_size;
    dl_.pull(static_cast<std::size_t>(max));
  }

  void on_data(std::vector<asyncstream::slice> xs, caf::error err) {
    if (state_ != state::waiting_bytes)
      return;
    if (!xs.empty()) {
      std::uint64_t n = 0;
      for (auto& x : xs)
        n += x.size();
      state_ = state::writing;
      if (file_fd_ >= 0) {
        // The slices only said how many bytes exist: they go out of the
        // stream file.
        xs.clear();
        return send_from_file(n);
      }
      auto out = std::make_shared<outgoing>();
      out->slices = std::move(xs);
      std::vector<net::const_buffer> bufs;
      bufs.reserve(out->slices.size() + 2);
      if (framing_ == framing::chunked) {
        out->head = chunk_header(n);
        bufs.emplace_back(net::buffer(out->head));
      }
      for (auto& x : out->slices)
        bufs.emplace_back(x.data(), x.size());
      if (framing_ == framing::chunked)
        bufs.emplace_back(net::buffer(chunk_end.data(), chunk_end.size()));
      conn_.send(std::move(bufs), out,
                 [this, n](error_code ec) { written(ec, n); });
      return;
    }
    if (!err) {
      if (remaining_ && *remaining_ > 0)
        return cut("the stream ended " + std::to_string(*remaining_)
                   + " bytes before the range did");
      return finish_body();
    }
    // The stream failed (or was aborted) here: the response ends truncated.
    cut(asyncstream::render(err));
  }

  /// Sends stream bytes [pos_, pos_ + n) from the stream file.
  void send_from_file(std::uint64_t n) {
    if (framing_ != framing::chunked) {
      conn_.send_file(file_fd_, pos_, n,
                      [this, n](error_code ec) { written(ec, n); });
      return;
    }
    auto head = std::make_shared<std::string>(chunk_header(n));
    conn_.send({net::buffer(*head)}, head, [this, n](error_code ec) {
      if (ec)
        return written(ec, 0);
      conn_.send_file(file_fd_, pos_, n, [this, n](error_code ec) {
        if (ec)
          return written(ec, 0);
        conn_.send({net::buffer(chunk_end.data(), chunk_end.size())}, nullptr,
                   [this, n](error_code ec) { written(ec, n); });
      });
    });
  }

  void written(error_code ec, std::uint64_t n) {
    if (ec)
      return conn_.close_with(end_reason::client_gone,
                              "write failed: " + ec.message());
    pos_ += n;
    entry_->bytes_out += n;
    entry_->track(consumer_, pos_);
    if (remaining_)
      *remaining_ -= n;
    pull();
  }

  void finish_body() {
    state_ = state::writing;
    switch (framing_) {
      case framing::length:
        return conn_.finish(keep_alive_);
      case framing::close_delimited:
        return conn_.finish(false);
      case framing::chunked:
        conn_.send({net::buffer(last_chunk.data(), last_chunk.size())},
                   nullptr, [this](error_code ec) {
                     if (ec)
                       return conn_.close_with(end_reason::client_gone,
                                               "final chunk: " + ec.message());
                     conn_.finish(keep_alive_);
                   });
        return;
    }
  }

  /// Ends the response truncated: the connection closes without the final
  /// chunk (or short of Content-Length), so the client sees it was cut.
  void cut(const std::string& why) {
    spdlog::warn("{}: response of stream {} truncated at offset {}: {}",
                 conn_.peer(), req_.name, pos_, why);
    conn_.close_with(end_reason::failed, why);
  }

  download_request req_;
  server_context& ctx_;
  state state_ = state::init;
  std::optional<byte_range> range_;
  bool malformed_range_ = false;
  registry::entry_ptr entry_;
  download_handle dl_;
  std::optional<net::steady_timer> wait_timer_;
  std::uint64_t await_token_ = 0;
  gauge_hold waiting_name_;
  gauge_hold waiting_slot_;
  gauge_hold reader_;
  framing framing_ = framing::chunked;
  bool keep_alive_ = false;
  std::optional<std::uint64_t> remaining_;
  std::uint64_t pos_ = 0;
  std::uint64_t consumer_ = 0;
  int file_fd_ = -1;
};

} // namespace

std::shared_ptr<exchange> make_download(connection& conn,
                                        download_request req) {
  return std::make_shared<download>(conn, std::move(req));
}

} // namespace streamerd
