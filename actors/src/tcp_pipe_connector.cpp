#include "asyncstream/tcp_pipe_connector.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <utility>

#include "asyncstream/error.hpp"
#include "asyncstream/pipe_handshake.hpp"
#include "tcp_pipe_socket.hpp"

namespace asyncstream {

namespace {

struct connector_state {
  std::string host;
  std::uint16_t port;
  tcp_connector_options opts;
  /// The session of the first welcome; 0 until then.
  std::atomic<std::uint64_t> session{0};
};

caf::expected<pipe_connection> attempt(connector_state& st,
                                       const connect_request& req) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + st.opts.connect_timeout;
  auto conn = tcp_connect(st.host, st.port, st.opts.connect_timeout, req.cancel,
                          st.opts.socket);
  if (!conn)
    return std::move(conn.error());
  auto transport = std::move(*conn);
  // A cancel from now on closes the socket, which ends the handshake.
  if (req.cancel) {
    std::weak_ptr<pipe_transport> weak = transport;
    req.cancel->on_cancel([weak] {
      if (auto ptr = weak.lock())
        ptr->close();
    });
  }
  auto fail = [&](caf::error err) -> caf::expected<pipe_connection> {
    transport->close();
    if (req.cancel && req.cancel->canceled())
      return make_error(errc::canceled, "connecting to " + st.host + ":"
                                          + std::to_string(st.port)
                                          + ": canceled");
    return err;
  };
  auto& sock = static_cast<detail::tcp_socket_transport&>(*transport);
  auto left
    = std::chrono::duration_cast<caf::timespan>(deadline - clock::now());
  if (left.count() <= 0)
    return fail(make_error(errc::timeout,
                           transport->describe() + ": no handshake within "
                             + detail::show_duration(st.opts.connect_timeout)));
  if (auto err = sock.set_io_timeout(left))
    return fail(std::move(err));
  auto asked = st.session.load();
  auto welcome = client_handshake(*transport, asked, req.local_position);
  if (!welcome) {
    auto err = std::move(welcome.error());
    if (is(err, errc::timeout))
      err = make_error(errc::timeout,
                       transport->describe() + ": no handshake answer within "
                         + detail::show_duration(st.opts.connect_timeout));
    return fail(std::move(err));
  }
  if (welcome->session == 0 || (asked != 0 && welcome->session != asked))
    return fail(make_error(
      errc::protocol_error,
      transport->describe() + ": asked for session " + std::to_string(asked)
        + ", the welcome names session " + std::to_string(welcome->session)));
  if (auto err = sock.set_io_timeout(caf::timespan{0}))
    return fail(std::move(err));
  if (asked == 0)
    st.session.store(welcome->session);
  if (st.opts.on_session)
    st.opts.on_session(welcome->session);
  return pipe_connection{std::move(transport), welcome->position};
}

} // namespace

pipe_connector tcp_connector(std::string host, std::uint16_t port,
                             tcp_connector_options opts) {
  auto st = std::make_shared<connector_state>();
  st->host = std::move(host);
  st->port = port;
  st->opts = std::move(opts);
  return [st](const connect_request& req) { return attempt(*st, req); };
}

} // namespace asyncstream
