#include "upload.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <spdlog/spdlog.h>

#include "answer.hpp"
#include "download_actor.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/stream_writer.hpp"
#include "sources.hpp"

namespace streamerd {

namespace http = boost::beast::http;
using asyncstream::errc;

namespace {

/// The smallest and the largest chunk an upload fills.
constexpr std::size_t min_chunk = 4 * 1024;
constexpr std::size_t max_chunk = 1024 * 1024;

/// The first chunk of a chunked body (its length is unknown).
constexpr std::size_t first_chunked_chunk = 16 * 1024;

/// Bytes read per read(2) of a chunked body.
constexpr std::size_t chunked_read_size = 64 * 1024;

/// The size of the first chunk for a body of `length` bytes: the smallest
/// power of 4 times 4 KiB that holds it, at most 1 MiB.
std::size_t first_chunk_for(std::uint64_t length) {
  std::size_t size = min_chunk;
  while (size < max_chunk && size < length)
    size *= 4;
  return size;
}

class upload final : public exchange {
public:
  upload(connection& conn, std::string name,
         connection::header_parser& parser)
    : exchange(conn),
      ctx_(conn.context()),
      name_(std::move(name)),
      keep_alive_(parser.keep_alive()),
      chunked_(parser.chunked()),
      expect_continue_(boost::beast::iequals(
        parser.get()[http::field::expect], "100-continue")) {
    if (chunked_) {
      body_.emplace(std::move(parser));
      body_->body_limit(std::numeric_limits<std::uint64_t>::max());
      next_chunk_ = first_chunked_chunk;
    } else {
      left_ = parser.content_length().value_or(0);
      next_chunk_ = first_chunk_for(left_);
    }
  }

  void start() override {
    auto& lim = ctx_.cfg.limits;
    if (!chunked_ && lim.max_stream_bytes && left_ > *lim.max_stream_bytes)
      return reply(plain_answer(413, "an upload of " + std::to_string(left_)
                                       + " bytes is over --max-stream-size ("
                                       + std::to_string(*lim.max_stream_bytes)
                                       + " bytes)\n"),
                   false);
    if (ctx_.reg.size() >= lim.max_streams)
      return refuse_full();
    if (ctx_.reg.find(name_))
      return refuse_exists();
    auto s = make_stream(ctx_.sys, ctx_.cfg, asyncstream::source::push());
    if (!s) {
      auto text = asyncstream::render(s.error());
      spdlog::warn("{}: cannot make stream {}: {}", conn_.peer(), name_, text);
      // Out of descriptors, memory or threads: this request fails (503,
      // try again later), the daemon serves on.
      auto res = plain_answer(
        asyncstream::is(s.error(), errc::resource_exhausted) ? 503 : 500,
        "cannot make stream " + name_ + ": " + text + "\n");
      res.head.set("Retry-After", std::to_string(ctx_.cfg.retry_after_s));
      return reply(std::move(res), false);
    }
    auto w = s->writer();
    auto e = std::make_shared<stream_entry>();
    e->name = name_;
    e->origin = "upload from " + conn_.peer();
    e->stream = *s;
    e->created = std::chrono::system_clock::now();
    switch (ctx_.reg.add(e, lim.max_streams)) {
      case registry::add_result::added:
        break;
      case registry::add_result::exists:
        w->close();
        return refuse_exists();
      case registry::add_result::full:
        w->close();
        return refuse_full();
    }
    log_when_final(ctx_.sys, e);
    spdlog::info("{}: upload of stream {} started", conn_.peer(), name_);
    entry_ = std::move(e);
    writer_.emplace(std::move(*w));
    state_ = state::receiving;
    if (expect_continue_) {
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      conn_.send({net::buffer(cont.data(), cont.size())}, nullptr,
                 [this](error_code ec) {
                   if (ec)
                     return conn_.close_with(end_reason::client_gone,
                                             ec.message());
                   receive();
                 });
      return;
    }
    receive();
  }

  void release(end_reason why, const std::string& detail) override {
    state_ = state::done;
    if (writer_) {
      std::string reason;
      switch (why) {
        case end_reason::client_gone:
          reason = "upload connection ended after " + std::to_string(uploaded_)
                   + " bytes, before the body did: " + detail;
          break;
        case end_reason::timeout:
          reason = "upload stalled after " + std::to_string(uploaded_)
                   + " bytes: " + detail;
          break;
        case end_reason::drained:
          reason = "streamerd shut down during the upload";
          break;
        default:
          reason = detail.empty() ? "upload ended early" : detail;
          break;
      }
      spdlog::warn("{}: stream {}: {}", conn_.peer(), name_, reason);
      writer_->close_with_error(
        asyncstream::make_error(errc::io_error, std::move(reason)));
      writer_.reset();
    }
    chunk_.reset();
    entry_.reset();
  }

private:
  enum class state { init, receiving, answering, done };

  void reply(full_response res, bool keep_alive) {
    state_ = state::answering;
    send_full(conn_, std::move(res), keep_alive, false);
  }

  void refuse_exists() {
    // The body is not read: the connection cannot go on.
    reply(plain_answer(409, "stream " + name_ + " exists already\n"), false);
  }

  void refuse_full() {
    auto res = plain_answer(503, "too many streams (at most "
                                   + std::to_string(ctx_.cfg.limits.max_streams)
                                   + "): delete some first\n");
    res.head.set("Retry-After", std::to_string(ctx_.cfg.retry_after_s));
    reply(std::move(res), false);
  }

  /// Makes sure the current chunk has room; false if no memory was left
  /// (the exchange is then over).
  bool ensure_room() {
    if (chunk_ && filled_ < chunk_->capacity())
      return true;
    try {
      chunk_ = asyncstream::chunk_pool::shared(next_chunk_)->acquire();
    } catch (const std::bad_alloc&) {
      fail_with(503, "out of memory for stream " + name_);
      return false;
    }
    filled_ = 0;
    next_chunk_ = std::min(next_chunk_ * 4, max_chunk);
    return true;
  }

  /// Hands the next `n` bytes of the chunk to the writer (no copy); false
  /// if the stream refused them (the exchange is then over).
  bool publish(std::size_t n) {
    auto max = ctx_.cfg.limits.max_stream_bytes;
    if (max && uploaded_ + n > *max) {
      // The bytes up to the limit go in; readers then see the stream fail.
      auto take = static_cast<std::size_t>(*max - uploaded_);
      if (take > 0 && !publish_exactly(take))
        return false;
      auto why = "stream " + name_ + " is over --max-stream-size ("
                 + std::to_string(*max) + " bytes)";
      spdlog::warn("{}: {}", conn_.peer(), why);
      writer_->close_with_error(
        asyncstream::make_error(errc::buffer_full, why));
      writer_.reset();
      reply(plain_answer(413, why + "\n"), false);
      return false;
    }
    return publish_exactly(n);
  }

  bool publish_exactly(std::size_t n) {
    if (auto err = writer_->write(asyncstream::slice{chunk_, filled_, n})) {
      // The stream failed by itself (say, the disk is full): it has its
      // error; the uploader learns it.
      writer_.reset();
      fail_with(500, "stream " + name_ + " refused bytes: "
                       + asyncstream::render(err));
      return false;
    }
    filled_ += n;
    uploaded_ += n;
    return true;
  }

  /// Fails the stream (if it is still open) and answers `status`; the
  /// connection closes after it (the rest of the body is not read).
  void fail_with(unsigned status, std::string why) {
    spdlog::warn("{}: upload of stream {}: {}", conn_.peer(), name_, why);
    if (writer_) {
      writer_->close_with_error(
        asyncstream::make_error(errc::io_error, why));
      writer_.reset();
    }
    reply(plain_answer(status, why + "\n"), false);
  }

  void receive() {
    if (chunked_)
      receive_chunked();
    else
      receive_fixed();
  }

  // -- a body of known length: read(2) straight into the chunk ---------------

  void receive_fixed() {
    // Body bytes that came with the header are in the input buffer.
    auto& in = conn_.input();
    while (left_ > 0 && in.size() > 0) {
      if (!ensure_room())
        return;
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(
        {left_, in.size(), chunk_->capacity() - filled_}));
      std::memcpy(chunk_->mutable_data() + filled_, in.data().data(), n);
      in.consume(n);
      if (!publish(n))
        return;
      left_ -= n;
    }
    if (left_ == 0)
      return complete();
    if (!ensure_room())
      return;
    auto room = std::min<std::uint64_t>(chunk_->capacity() - filled_, left_);
    conn_.read_some(net::buffer(chunk_->mutable_data() + filled_,
                                static_cast<std::size_t>(room)),
                    [this](error_code ec, std::size_t n) {
                      if (n > 0) {
                        if (!publish(n))
                          return;
                        left_ -= n;
                      }
                      if (ec)
                        return broke_off(ec);
                      receive_fixed();
                    });
  }

  // -- a chunked body: Beast decodes it into the chunk -------------------------

  void receive_chunked() {
    auto& in = conn_.input();
    // Each round consumes input, fills the chunk, or asks for more input.
    for (int rounds = 0; rounds < 1024; ++rounds) {
      if (body_->is_done())
        return complete();
      if (!ensure_room())
        return;
      auto room = chunk_->capacity() - filled_;
      auto& body = body_->get().body();
      body.data = chunk_->mutable_data() + filled_;
      body.size = room;
      body.more = true;
      error_code ec;
      auto used = body_->put(in.data(), ec);
      in.consume(used);
      auto produced = room - body.size;
      if (produced > 0 && !publish(produced))
        return;
      if (ec == http::error::need_buffer)
        continue; // the chunk is full: the next round takes a new one
      if (ec && ec != http::error::need_more)
        return fail_with(400, "malformed chunked body after "
                                + std::to_string(uploaded_)
                                + " bytes: " + ec.message());
      if (body_->is_done())
        return complete();
      if (ec == http::error::need_more || (used == 0 && produced == 0))
        return read_more();
    }
    // Many small rounds in a row: let other connections run, then go on.
    read_more();
  }

  void read_more() {
    auto& in = conn_.input();
    conn_.read_some(in.prepare(chunked_read_size),
                    [this](error_code ec, std::size_t n) {
                      conn_.input().commit(n);
                      if (ec)
                        return broke_off(ec);
                      receive_chunked();
                    });
  }

  void broke_off(error_code ec) {
    auto what = ec == net::error::eof ? std::string{"the client closed"}
                                      : ec.message();
    conn_.close_with(end_reason::client_gone, what);
  }

  void complete() {
    state_ = state::answering;
    writer_->close();
    writer_.reset();
    chunk_.reset();
    // The 201 waits until the stream is final for everybody: a GET or a
    // /status.json right after it sees the whole stream, ended.
    on_stream_final(ctx_.sys, entry_->stream,
                    conn_.bind([this](asyncstream::stream_status st) {
                      created(st);
                    }));
  }

  void created(const asyncstream::stream_status& st) {
    if (st.error) {
      // Aborted between the last byte and the end (a shutdown).
      return reply(plain_answer(500, "stream " + name_ + " failed: "
                                       + asyncstream::render(st.error)
                                       + "\n"),
                   false);
    }
    spdlog::info("{}: upload of stream {} complete: {} bytes", conn_.peer(),
                 name_, uploaded_);
    auto res = plain_answer(201, name_ + ": " + std::to_string(uploaded_)
                                   + " bytes\n");
    res.head.set("Location", "/streams/" + name_);
    reply(std::move(res), keep_alive_);
  }

  server_context& ctx_;
  std::string name_;
  bool keep_alive_;
  bool chunked_;
  bool expect_continue_;
  state state_ = state::init;
  std::optional<http::request_parser<http::buffer_body>> body_;
  std::uint64_t left_ = 0;
  std::size_t next_chunk_ = min_chunk;
  registry::entry_ptr entry_;
  std::optional<asyncstream::stream_writer> writer_;
  asyncstream::mutable_chunk_ptr chunk_;
  std::size_t filled_ = 0;
  std::uint64_t uploaded_ = 0;
};

} // namespace

std::shared_ptr<exchange> make_upload(connection& conn, std::string name,
                                      connection::header_parser& parser) {
  return std::make_shared<upload>(conn, std::move(name), parser);
}

} // namespace streamerd
