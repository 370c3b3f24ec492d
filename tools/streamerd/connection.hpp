// connection: one client connection. It reads requests, refuses malformed
// ones, routes the others to an exchange (exchange.hpp), keeps the
// connection alive between requests, and enforces the header, idle, send
// and body timeouts.
//
// Contract:
// - Everything runs on the transport's strand. Created by the server (or a
//   test harness) and started with `start()`; it keeps itself alive through
//   its pending operations and is destroyed after the last one completes.
// - States: reading a request (idle between requests, then reading its
//   header), exchanging (one exchange owns the response), closed. The
//   connection ends in one place, `close_with(why)`, which releases the
//   current exchange and closes the transport; every later completion finds
//   the connection closed and returns.
// - The exchange-facing calls (`send`, `send_file`, `read_some`,
//   `watch_peer`, `finish`, `bind`) may be used only by the current exchange,
//   on the strand; their completions reach the exchange only while it is
//   still current.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "context.hpp"
#include "exchange.hpp"
#include "transport.hpp"

namespace streamerd {

class connection : public std::enable_shared_from_this<connection> {
public:
  using header_parser
    = boost::beast::http::request_parser<boost::beast::http::empty_body>;

  connection(std::shared_ptr<server_context> ctx,
             std::unique_ptr<transport> io);

  ~connection();

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Registers with the context and reads the first request.
  void start();

  /// Ends the connection from any thread: at once if no request is being
  /// answered (or `force`), else after the current response.
  void drain(bool force);

  // -- for exchanges ---------------------------------------------------------

  server_context& context() noexcept {
    return *ctx_;
  }

  const std::string& peer() const noexcept {
    return peer_;
  }

  transport::executor_type executor() const {
    return io_->get_executor();
  }

  /// Bytes read past the current request's header (body bytes or the next
  /// pipelined request).
  boost::beast::flat_buffer& input() noexcept {
    return input_;
  }

  /// Whether the response may keep the connection open (false once the
  /// daemon drains).
  bool may_keep_alive() const noexcept;

  /// Writes every byte of `bufs`; `keep` owns their memory until the write
  /// ended. The send timeout runs while bytes wait for the client.
  void send(std::vector<net::const_buffer> bufs, std::shared_ptr<const void> keep,
            std::function<void(error_code)> done);

  /// Sends `n` bytes of file `fd` from `offset` (sendfile(2)), under the
  /// send timeout.
  void send_file(int fd, std::uint64_t offset, std::uint64_t n,
                 std::function<void(error_code)> done);

  /// Reads some bytes into `buf` under the body timeout (uploads).
  void read_some(net::mutable_buffer buf,
                 std::function<void(error_code, std::size_t)> done);

  /// Ends the exchange with `client_gone` if the client leaves while the
  /// response waits (for a slot, a name, or stream bytes).
  void watch_peer();

  /// The current exchange's response is complete: release it, then read the
  /// next request (`keep_alive`) or close.
  void finish(bool keep_alive);

  /// Ends the connection (and the current exchange) for `why`.
  void close_with(end_reason why, const std::string& detail);

  /// Counts a timeout of `phase`, logs it and ends the connection.
  void time_out(timeout_phase phase);

  /// Returns a function that may be called from any thread, also after the
  /// connection is gone: it runs `f(args...)` on the strand if the exchange
  /// that is current now is still current then.
  template <class F>
  auto bind(F f) {
    return [weak = weak_from_this(), ex = executor(), serial = serial_,
            f = std::move(f)](auto&&... xs) {
      net::post(ex, [weak, serial, f,
                     args = std::make_tuple(
                       std::decay_t<decltype(xs)>(
                         std::forward<decltype(xs)>(xs))...)]() mutable {
        auto self = weak.lock();
        if (!self || self->closed_ || !self->current_
            || self->current_->serial() != serial)
          return;
        auto keep = self->current_;
        std::apply(f, std::move(args));
      });
    };
  }

  /// @private The serial number for the next exchange.
  std::uint64_t next_serial() noexcept {
    return ++serial_;
  }

private:
  enum class state { reading, exchanging, closed };

  /// Runs `f` if the exchange with `serial` is still current.
  template <class F>
  void if_current(std::uint64_t serial, F&& f) {
    if (closed_ || !current_ || current_->serial() != serial)
      return;
    auto keep = current_;
    f();
  }

  void next_request();
  void read_header();
  void on_header_bytes(error_code ec, std::size_t n);
  void parse_header();
  void refuse(unsigned status, std::string text);
  void begin(std::shared_ptr<exchange> x);
  void arm(timeout_phase phase, std::uint64_t seconds);
  void disarm();
  void wait_deadline();

  struct send_op;
  void send_some(std::shared_ptr<send_op> op);
  void send_file_some(std::shared_ptr<send_op> op);

  std::shared_ptr<server_context> ctx_;
  std::unique_ptr<transport> io_;
  std::string peer_;
  gauge_hold open_;
  state state_ = state::reading;
  bool closed_ = false;
  bool first_request_ = true;
  bool header_started_ = false;
  bool reading_ = false;
  bool watching_ = false;
  bool peer_sent_more_ = false;
  std::uint64_t watch_epoch_ = 0;
  bool want_watch_ = false;
  boost::beast::flat_buffer input_;
  std::optional<header_parser> parser_;
  std::shared_ptr<exchange> current_;
  std::uint64_t serial_ = 0;
  net::steady_timer deadline_;
  std::chrono::steady_clock::time_point deadline_at_;
  std::chrono::steady_clock::time_point timer_at_;
  std::optional<timeout_phase> deadline_phase_;
  bool timer_pending_ = false;
};

} // namespace streamerd
