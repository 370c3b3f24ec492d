#include "asyncstream/backed_pipe.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "asyncstream/blocking_reader.hpp"
#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/pipe_frames.hpp"
#include "asyncstream/protocol.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"

namespace asyncstream {

const char* to_string(pipe_state x) {
  switch (x) {
    case pipe_state::disconnected:
      return "disconnected";
    case pipe_state::reconnecting:
      return "reconnecting";
    case pipe_state::connected:
      return "connected";
    case pipe_state::closed:
      return "closed";
  }
  return "?";
}

namespace {

using clock_type = std::chrono::steady_clock;

/// One attached connection.
struct connection {
  pipe_transport_ptr transport;
  std::uint64_t generation = 0;
  /// Where the send thread starts (the peer's position at the exchange).
  std::uint64_t start = 0;
  /// The peer's receive window and read position, once it sent them
  /// (guarded by the core's mutex).
  std::uint64_t peer_window = 0;
  std::uint64_t peer_read = 0;
  bool peer_read_known = false;
  /// The pipe dropped this connection (guarded by the core's mutex).
  bool dead = false;
};

using connection_ptr = std::shared_ptr<connection>;

} // namespace

/// The state shared by the user's handles, the connection threads and the
/// connect thread. Every field below `mtx` is guarded by it unless noted.
struct pipe_core : std::enable_shared_from_this<pipe_core> {
  pipe_options opts;
  pipe_connector connector; // empty on the passive side
  bool is_active = false;

  // -- the two streams (released by the last user handle, after close) ----

  stream out;                              // what we write, the replay window
  std::optional<stream_writer> out_writer; // user writes (write_mtx)
  blocking_reader sender; // positional reads of the send thread only;
                          // its tether is the peer's acknowledgement
  stream in;              // what we receive
  std::optional<stream_writer> in_writer; // the receive thread only
  blocking_reader user_reader;            // user reads (under read_mtx)
  transfer_actor out_transfer;
  std::uint64_t sender_id = 0;

  std::mutex write_mtx;  // serializes user writes and close_write
  std::mutex read_mtx;   // serializes user reads
  std::mutex accept_mtx; // serializes accepts (passive side)

  mutable std::mutex mtx;
  std::condition_variable cv;

  pipe_state state = pipe_state::disconnected;
  bool closed = false;
  caf::error failed; // automatic reconnection gave up
  std::uint64_t generation = 0;
  std::uint64_t attempts = 0;
  caf::error last_error;
  connection_ptr current;
  pipe_transport_ptr pending; // a transport in the middle of an accept
  std::size_t live_threads = 0;

  // A series of attempts (connect, reconnect, automatic reconnection).
  bool series_running = false;
  std::uint64_t series_started = 0;
  std::uint64_t series_done = 0;
  caf::error series_result;
  std::size_t series_waiters = 0;
  cancel_token_ptr attempt_cancel;

  // Outgoing direction.
  std::uint64_t out_written = 0;
  std::uint64_t remote_acked = 0;
  bool write_closed = false;
  std::uint64_t out_final = 0;
  bool fin_acked = false;
  std::atomic<std::uint64_t> sent{0};

  // Incoming direction.
  std::uint64_t received = 0;
  std::uint64_t advertised = 0; // the furthest read position we sent
  bool fin_received = false;
  std::uint64_t in_final = 0;
  bool peer_bye = false;
  bool bye_out = false; // our goodbye went out (on some connection)
  std::atomic<std::uint64_t> read_count{0};

  std::vector<caf::actor> observers;

  // -- helpers (callers hold `mtx` where the name ends in _locked) ---------

  bool active() const {
    return is_active;
  }

  void set_state_locked(pipe_state s, caf::error reason = {}) {
    if (state == s && !reason)
      return;
    state = s;
    pipe_event ev{s, generation, std::move(reason)};
    for (auto& o : observers)
      caf::anon_send(o, ev);
    cv.notify_all();
  }

  /// Drops the current connection (its threads see `dead` or a closed
  /// transport and quit).
  void drop_current_locked() {
    if (!current)
      return;
    current->dead = true;
    current->transport->close();
    current = nullptr;
  }

  /// Waits until every connection thread quit.
  void wait_quiet_locked(std::unique_lock<std::mutex>& lk) {
    cv.wait(lk, [this] { return live_threads == 0; });
  }

  /// The error a user call gets once the pipe is closed or gave up.
  caf::error gone_error_locked() const {
    if (closed)
      return make_error(errc::closed, "the pipe is closed");
    return failed;
  }

  /// Checks the peer's position against the window: [oldest kept, written].
  caf::error check_remote_locked(std::uint64_t pos) {
    if (pos > out_written)
      return make_error(errc::protocol_error,
                        "the peer claims position " + std::to_string(pos)
                          + ", beyond the " + std::to_string(out_written)
                          + " bytes written");
    auto st = out.status();
    if (!st)
      return std::move(st.error());
    if (pos < st->oldest)
      return make_data_loss(pos, st->oldest);
    return {};
  }

  /// Attaches a connection whose exchange gave `remote` (the threads are
  /// quiet and the position was checked). Closes `t` on failure.
  caf::error attach_locked(pipe_transport_ptr t, std::uint64_t remote) {
    if (auto err = check_remote_locked(remote)) {
      t->close();
      return err;
    }
    // The peer holds every byte below `remote`: that acknowledges them
    // (or, after the peer lost acknowledged bytes, takes the tether back
    // to them; they are still in the window).
    remote_acked = remote;
    caf::anon_send(out_transfer, tether_atom::value, sender_id, remote);
    auto conn = std::make_shared<connection>();
    conn->transport = t;
    conn->generation = generation + 1;
    conn->start = remote;
    auto self = shared_from_this();
    try {
      live_threads += 1;
      std::thread{[self, conn] { self->send_loop(conn); }}.detach();
    } catch (const std::system_error&) {
      live_threads -= 1;
      t->close();
      return make_error(errc::resource_exhausted,
                        "no thread for the pipe's send half");
    }
    try {
      live_threads += 1;
      std::thread{[self, conn] { self->receive_loop(conn); }}.detach();
    } catch (const std::system_error&) {
      live_threads -= 1;
      conn->dead = true;
      t->close();
      cv.notify_all();
      return make_error(errc::resource_exhausted,
                        "no thread for the pipe's receive half");
    }
    generation = conn->generation;
    current = conn;
    set_state_locked(pipe_state::connected);
    return {};
  }

  /// A connection thread reports that its connection failed.
  void on_failure(const connection_ptr& conn, caf::error err) {
    std::unique_lock<std::mutex> lk{mtx};
    conn->transport->close();
    if (conn != current)
      return; // the other half reported it, or the pipe dropped it
    drop_current_locked();
    last_error = err;
    if (closed)
      return;
    set_state_locked(pipe_state::disconnected, err);
    bool finished = settled_locked() && peer_bye;
    if (active() && opts.auto_reconnect && !failed && !finished)
      start_series_locked();
  }

  /// Starts a series of attempts on a thread of its own; returns its number.
  std::uint64_t start_series_locked() {
    if (series_running)
      return series_started;
    series_running = true;
    auto id = ++series_started;
    auto self = shared_from_this();
    try {
      std::thread{[self] { self->run_series(); }}.detach();
    } catch (const std::system_error&) {
      finish_series_locked(make_error(errc::resource_exhausted,
                                      "no thread for the pipe's connector"));
    }
    return id;
  }

  void finish_series_locked(caf::error err) {
    series_running = false;
    series_result = std::move(err);
    series_done = series_started;
    cv.notify_all();
  }

  /// Waits for the series `id` and returns its result.
  caf::error await_series_locked(std::unique_lock<std::mutex>& lk,
                                 std::uint64_t id) {
    ++series_waiters;
    cv.wait(lk, [&] { return series_done >= id || closed; });
    --series_waiters;
    if (series_done < id) // closed while the connector still runs
      return gone_error_locked();
    return series_result;
  }

  /// `connect` (`force` false: a no-op when connected) and `reconnect`
  /// (drops the connection first): joins a series already running, or
  /// starts one, and returns its result.
  caf::error run_series(const char* what, bool force) {
    if (!active())
      return make_error(errc::invalid_argument,
                        std::string{what} + " on a passive pipe (it accepts)");
    std::unique_lock<std::mutex> lk{mtx};
    if (auto err = gone_error_locked())
      return err;
    if (series_running)
      return await_series_locked(lk, series_started);
    if (state == pipe_state::connected) {
      if (!force)
        return {};
      drop_current_locked();
      set_state_locked(pipe_state::disconnected,
                       make_error(errc::closed, "reconnection forced"));
    }
    auto id = start_series_locked();
    return await_series_locked(lk, id);
  }

  /// Gives up: reads get the bytes that came and then `err`, writes `err`.
  void give_up_locked(caf::error err) {
    failed = err;
    // The receive threads are gone: the incoming writer is free.
    in_writer->close_with_error(err);
    out.abort(); // wakes a writer waiting for room in the window
    set_state_locked(pipe_state::disconnected, err);
  }

  void run_series() {
    auto backoff = opts.backoff_initial;
    std::uint64_t fails = 0;
    std::unique_lock<std::mutex> lk{mtx};
    for (;;) {
      wait_quiet_locked(lk);
      if (closed) {
        finish_series_locked(gone_error_locked());
        return;
      }
      auto token = std::make_shared<cancel_token>();
      attempt_cancel = token;
      connect_request req{received, ++attempts, token};
      set_state_locked(pipe_state::reconnecting);
      auto connect = connector; // `release` may drop the member meanwhile
      lk.unlock();
      auto res = connect(req);
      lk.lock();
      attempt_cancel = nullptr;
      if (closed) {
        if (res && res->transport)
          res->transport->close();
        finish_series_locked(gone_error_locked());
        return;
      }
      caf::error err;
      if (!res)
        err = std::move(res.error());
      else if (!res->transport)
        err = make_error(errc::invalid_argument,
                         "the connector returned no transport");
      else
        err = attach_locked(res->transport, res->remote_position);
      if (!err) {
        finish_series_locked({});
        return;
      }
      ++fails;
      last_error = err;
      set_state_locked(pipe_state::disconnected, err);
      bool hopeless = is(err, errc::data_loss) || is(err, errc::protocol_error);
      if (!opts.auto_reconnect) {
        finish_series_locked(err);
        return;
      }
      if (hopeless || (opts.max_attempts && fails >= *opts.max_attempts)) {
        auto reason = make_error(
          is(err, errc::data_loss)        ? errc::data_loss
          : is(err, errc::protocol_error) ? errc::protocol_error
                                          : errc::closed,
          "gave up reconnecting after " + std::to_string(fails)
            + " failed attempt" + (fails == 1 ? "" : "s") + ": " + render(err));
        give_up_locked(reason);
        finish_series_locked(reason);
        return;
      }
      set_state_locked(pipe_state::reconnecting);
      cv.wait_for(lk, backoff, [this] { return closed; });
      backoff = std::min(backoff * 2, opts.backoff_max);
    }
  }

  // -- the connection threads ----------------------------------------------

  /// Writes one control frame.
  static caf::error send_control(pipe_transport& t, frame_type type,
                                 std::uint64_t value) {
    std::byte hdr[frame_header_size];
    write_frame_header(hdr, type, value, 0);
    return t.write(hdr, sizeof(hdr));
  }

  /// Whether both directions ended and every byte was read on both sides
  /// (so far as we know: the peer's reads from its acknowledgements).
  bool settled_locked() const {
    return write_closed && fin_acked && remote_acked == out_final
           && fin_received
           && read_count.load(std::memory_order_relaxed) == in_final;
  }

  /// Acknowledgements go out once the reader took `ack_step()` bytes past
  /// the last one, at once when it read the whole direction, and else at
  /// most `ack_delay` after the first unacknowledged read: one per read
  /// would cost the peer a wake-up per frame.
  std::uint64_t ack_step() const {
    return std::clamp<std::uint64_t>(opts.window / 8, 1, 4 * 1024 * 1024);
  }

  static constexpr auto ack_delay = std::chrono::milliseconds(1);

  /// Received payload pieces smaller than this are copied, not sliced.
  static constexpr std::size_t min_slice_piece = 4096;

  /// Size of the chunks the receive thread reads into.
  static constexpr std::size_t receive_chunk = 1024 * 1024;

  /// Whether the read position must go to the peer now.
  bool ack_due_locked(std::uint64_t acked_out) const {
    auto read = read_count.load(std::memory_order_relaxed);
    if (read <= acked_out)
      return false;
    return read - acked_out >= ack_step() || (fin_received && read == in_final);
  }

  void send_loop(connection_ptr conn) {
    auto& t = *conn->transport;
    auto pos = conn->start;
    bool greeted = false;        // sent our window and first acknowledgement
    std::uint64_t acked_out = 0; // the read position last sent on this conn
    bool fin_sent = false;
    bool fin_ack_sent = false;
    bool bye_sent = false;
    bool ack_late = false; // a read waited `ack_delay` for its ack
    std::optional<clock_type::time_point> ack_pending_since;
    auto max_frame = std::clamp<std::size_t>(opts.max_frame, 1,
                                             max_frame_payload);
    caf::error err;
    for (;;) {
      std::uint64_t ack = 0;
      std::uint64_t avail = 0;
      bool need_ack = false;
      bool need_fin = false;
      bool need_fin_ack = false;
      bool need_bye = false;
      std::uint64_t fin_at = 0;
      std::uint64_t in_fin_at = 0;
      {
        std::unique_lock<std::mutex> lk{mtx};
        auto ready = [&] {
          if (conn->dead || closed)
            return true;
          ack = read_count.load(std::memory_order_relaxed);
          need_ack = !greeted || ack_due_locked(acked_out)
                     || (ack_late && ack > acked_out);
          // Raised before the acknowledgement leaves: the peer may answer
          // it with data before this thread runs again.
          if (need_ack)
            advertised = std::max(advertised, ack);
          // Data only within the peer's receive window, once it told us.
          avail = 0;
          if (conn->peer_window > 0 && conn->peer_read_known) {
            auto limit = conn->peer_read + conn->peer_window;
            if (limit < conn->peer_read) // overflow
              limit = UINT64_MAX;
            auto end = std::min(out_written, limit);
            avail = end > pos ? end - pos : 0;
          }
          need_fin = write_closed && !fin_sent && pos + avail == out_final;
          fin_at = out_final;
          need_fin_ack = fin_received && !fin_ack_sent;
          in_fin_at = in_final;
          // Goodbye once nothing is owed either way: our bytes and end
          // were read by the peer, and we read (and told it) all of its.
          need_bye = !bye_sent && settled_locked()
                     && (fin_ack_sent || need_fin_ack)
                     && (need_ack ? ack : acked_out) == in_final;
          return need_ack || avail > 0 || need_fin || need_fin_ack || need_bye;
        };
        while (!ready()) {
          if (read_count.load(std::memory_order_relaxed) > acked_out) {
            // Reads not acknowledged yet: at the latest after the delay.
            if (!ack_pending_since)
              ack_pending_since = clock_type::now();
            if (!cv.wait_until(lk, *ack_pending_since + ack_delay, ready))
              ack_late = true; // `ready` is true now
          } else {
            cv.wait(lk, [&] {
              return ready()
                     || read_count.load(std::memory_order_relaxed) > acked_out;
            });
          }
        }
        if (conn->dead || closed)
          break;
      }
      if (!greeted) {
        if ((err = send_control(t, frame_type::window, opts.window)))
          break;
        greeted = true;
      }
      if (need_ack) {
        if ((err = send_control(t, frame_type::ack, ack)))
          break;
        acked_out = ack;
        ack_late = false;
        ack_pending_since.reset();
      }
      if (need_fin_ack) {
        if ((err = send_control(t, frame_type::fin_ack, in_fin_at)))
          break;
        fin_ack_sent = true;
      }
      while (avail > 0) {
        auto xs = sender.read_slices_at(
          pos, std::min<std::uint64_t>(avail, max_frame));
        if (!xs) {
          err = std::move(xs.error());
          break;
        }
        std::size_t n = 0;
        for (auto& x : *xs)
          n += x.size();
        if (n == 0) {
          err = make_error(errc::unexpected_end, "the outgoing stream ended at "
                                                   + std::to_string(pos));
          break;
        }
        std::byte hdr[frame_header_size];
        write_frame_header(hdr, frame_type::data, pos,
                           static_cast<std::uint32_t>(n));
        if ((err = t.write(hdr, sizeof(hdr))))
          break;
        if ((err = t.write(*xs)))
          break;
        pos += n;
        avail -= n;
        sent.fetch_add(n, std::memory_order_relaxed);
      }
      if (err)
        break;
      if (need_fin) {
        if ((err = send_control(t, frame_type::fin, fin_at)))
          break;
        fin_sent = true;
      }
      if (need_bye) {
        if ((err = send_control(t, frame_type::bye, 0)))
          break;
        bye_sent = true;
        std::lock_guard<std::mutex> guard{mtx};
        bye_out = true;
        cv.notify_all();
      }
    }
    if (err)
      on_failure(conn, std::move(err));
    std::lock_guard<std::mutex> guard{mtx};
    live_threads -= 1;
    cv.notify_all();
  }

  /// Applies the frames of one connection to the pipe.
  struct receiver : frame_handler {
    pipe_core* core;
    connection* conn;
    std::uint64_t next = 0; // the sequence number the next byte must have
    /// The chunk the transport reads into: payload goes into the incoming
    /// stream as slices of it, without another copy.
    mutable_chunk_ptr chunk;

    caf::error on_data(std::uint64_t seq, const std::byte* data,
                       std::size_t n) override {
      if (seq != next)
        return make_error(errc::protocol_error,
                          "data at sequence " + std::to_string(seq)
                            + ", expected " + std::to_string(next));
      {
        std::lock_guard<std::mutex> guard{core->mtx};
        if (core->fin_received)
          return make_error(errc::protocol_error,
                            "data at sequence " + std::to_string(seq)
                              + " after the end at "
                              + std::to_string(core->in_final));
        auto limit = core->advertised + core->opts.window;
        if (seq + n > limit)
          return make_error(errc::protocol_error,
                            "data up to " + std::to_string(seq + n)
                              + " overruns the receive window (up to "
                              + std::to_string(limit) + ")");
      }
      // Never blocks: the peer sends no more than the window allows, and
      // the incoming stream keeps a window's worth past the reader.
      // Large pieces go in as slices of the receive chunk (no copy); small
      // ones are copied, so that a peer sending tiny frames cannot make the
      // stream hold a chunk's header bytes and an index entry per payload
      // byte (copies pack into the writer's chunks, and merge).
      caf::error err;
      if (n >= min_slice_piece) {
        auto offset = static_cast<std::size_t>(data - chunk->data());
        err = core->in_writer->write(slice{chunk, offset, n});
      } else {
        err = core->in_writer->write(data, n);
      }
      if (err)
        return err;
      next += n;
      std::lock_guard<std::mutex> guard{core->mtx};
      core->received = next; // nobody waits for it: reads go to the stream
      return {};
    }

    caf::error on_control(frame_type type, std::uint64_t value) override {
      std::lock_guard<std::mutex> guard{core->mtx};
      switch (type) {
        case frame_type::window:
          conn->peer_window = value;
          core->cv.notify_all();
          return {};
        case frame_type::ack:
          if (value > core->out_written)
            return make_error(
              errc::protocol_error,
              "acknowledgement of " + std::to_string(value) + " bytes, only "
                + std::to_string(core->out_written) + " written");
          if (conn->peer_read_known && value < conn->peer_read)
            return make_error(errc::protocol_error,
                              "acknowledgement went back from "
                                + std::to_string(conn->peer_read) + " to "
                                + std::to_string(value));
          conn->peer_read = value;
          conn->peer_read_known = true;
          if (value > core->remote_acked) {
            core->remote_acked = value;
            caf::anon_send(core->out_transfer, tether_atom::value,
                           core->sender_id, value);
          }
          core->cv.notify_all();
          return {};
        case frame_type::fin:
          if (core->fin_received) {
            if (value != core->in_final)
              return make_error(errc::protocol_error,
                                "a second end at " + std::to_string(value)
                                  + ", the first was at "
                                  + std::to_string(core->in_final));
            return {};
          }
          if (value != next)
            return make_error(errc::protocol_error,
                              "end at " + std::to_string(value) + ", after "
                                + std::to_string(next) + " bytes received");
          core->in_writer->close();
          core->fin_received = true;
          core->in_final = value;
          core->cv.notify_all();
          return {};
        case frame_type::fin_ack:
          if (!core->write_closed || value != core->out_final)
            return make_error(errc::protocol_error, "end acknowledged at "
                                                      + std::to_string(value)
                                                      + " before our end");
          core->fin_acked = true;
          core->cv.notify_all();
          return {};
        case frame_type::bye:
          core->peer_bye = true;
          core->cv.notify_all();
          return {};
        default:
          return make_error(errc::protocol_error, "unexpected frame");
      }
    }
  };

  void receive_loop(connection_ptr conn) {
    auto& t = *conn->transport;
    receiver h;
    h.core = this;
    h.conn = conn.get();
    {
      std::lock_guard<std::mutex> guard{mtx};
      h.next = received;
    }
    frame_parser parser;
    auto pool = chunk_pool::shared(receive_chunk);
    std::size_t fill = 0;
    caf::error err;
    for (;;) {
      // Reads go straight into pooled chunk memory; a new chunk once the
      // current one has less than an eighth left.
      if (!h.chunk || h.chunk->capacity() - fill < receive_chunk / 8) {
        try {
          h.chunk = pool->acquire();
        } catch (const std::bad_alloc&) {
          err = make_error(errc::resource_exhausted,
                           "no memory for the pipe's receive buffer");
          break;
        }
        fill = 0;
      }
      auto* at = h.chunk->mutable_data() + fill;
      auto k = t.read(at, h.chunk->capacity() - fill);
      if (!k) {
        err = std::move(k.error());
        break;
      }
      if (*k == 0) {
        err = make_error(errc::closed,
                         t.describe() + ": the peer ended the connection");
        break;
      }
      fill += *k;
      if ((err = parser.feed(at, *k, h)))
        break;
    }
    on_failure(conn, std::move(err));
    std::lock_guard<std::mutex> guard{mtx};
    live_threads -= 1;
    cv.notify_all();
  }

  // -- user calls -----------------------------------------------------------

  void close() {
    cancel_token_ptr token;
    pipe_transport_ptr pend;
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (closed)
        return;
      closed = true;
      drop_current_locked();
      token = attempt_cancel;
      pend = pending;
      set_state_locked(pipe_state::closed);
    }
    if (token)
      token->cancel();
    if (pend)
      pend->close();
    // Wake a writer waiting for room, a reader waiting for bytes and a
    // receive thread waiting for room in the incoming window.
    out.abort();
    in.abort();
    std::unique_lock<std::mutex> lk{mtx};
    wait_quiet_locked(lk);
  }

  /// Drops the streams (the last user handle, after close).
  void release() {
    std::lock_guard<std::mutex> guard{mtx};
    sender = blocking_reader{};
    user_reader = blocking_reader{};
    out_writer.reset();
    in_writer.reset();
    out = stream{};
    in = stream{};
    out_transfer = transfer_actor{};
    observers.clear();
    connector = nullptr;
  }
};

/// The user-facing part: when the last handle goes, the pipe closes.
struct backed_pipe::impl {
  std::shared_ptr<pipe_core> core;

  ~impl() {
    core->close();
    core->release();
  }
};

namespace {

caf::expected<std::shared_ptr<pipe_core>>
make_core(caf::actor_system& sys, pipe_connector connector, pipe_options opts) {
  if (opts.window == 0)
    return make_error(errc::invalid_argument, "a pipe window of 0 bytes");
  auto core = std::make_shared<pipe_core>();
  core->opts = opts;
  core->is_active = static_cast<bool>(connector);
  core->connector = std::move(connector);
  stream_options so;
  so.retention = opts.window;
  so.policy = retention_policy::tethered;
  so.max_readers = 2;
  auto out = stream::make(sys, source::push(), so);
  if (!out)
    return std::move(out.error());
  // Incoming: the peer sends at most a window past what our reader took,
  // so an untethered window of the same size never drops an unread byte,
  // and the receive thread never waits for the reader (it must go on
  // reading acknowledgements).
  so.policy = retention_policy::untethered;
  auto in = stream::make(sys, source::push(), so);
  if (!in)
    return std::move(in.error());
  auto ow = out->writer();
  if (!ow)
    return std::move(ow.error());
  auto iw = in->writer();
  if (!iw)
    return std::move(iw.error());
  auto sender = out->open_reader();
  if (!sender)
    return std::move(sender.error());
  auto user = in->open_reader();
  if (!user)
    return std::move(user.error());
  core->out = std::move(*out);
  core->in = std::move(*in);
  core->out_writer.emplace(std::move(*ow));
  core->in_writer.emplace(std::move(*iw));
  core->sender = std::move(*sender);
  core->user_reader = std::move(*user);
  core->sender_id = core->sender.id();
  core->out_transfer = core->out.transfer();
  return core;
}

caf::error invalid_pipe() {
  return make_error(errc::invalid_argument, "not a pipe (default or moved)");
}

} // namespace

caf::expected<backed_pipe> backed_pipe::make(caf::actor_system& sys,
                                             pipe_connector connector,
                                             pipe_options opts) {
  if (!connector)
    return make_error(errc::invalid_argument, "an empty pipe connector");
  auto core = make_core(sys, std::move(connector), opts);
  if (!core)
    return std::move(core.error());
  auto ptr = std::make_shared<impl>();
  ptr->core = std::move(*core);
  return backed_pipe{std::move(ptr)};
}

caf::expected<backed_pipe> backed_pipe::make_passive(caf::actor_system& sys,
                                                     pipe_options opts) {
  auto core = make_core(sys, {}, opts);
  if (!core)
    return std::move(core.error());
  auto ptr = std::make_shared<impl>();
  ptr->core = std::move(*core);
  return backed_pipe{std::move(ptr)};
}

caf::error backed_pipe::connect() {
  if (!impl_)
    return invalid_pipe();
  return impl_->core->run_series("connect()", false);
}

caf::error backed_pipe::reconnect() {
  if (!impl_)
    return invalid_pipe();
  return impl_->core->run_series("reconnect()", true);
}

caf::error backed_pipe::accept(pipe_transport_ptr transport,
                               const pipe_hello& hello, std::uint64_t session) {
  if (!transport)
    return make_error(errc::invalid_argument, "accept() without a transport");
  if (!impl_) {
    transport->close();
    return invalid_pipe();
  }
  auto& c = *impl_->core;
  if (c.active()) {
    transport->close();
    return make_error(errc::invalid_argument,
                      "accept() on an active pipe (it connects)");
  }
  std::lock_guard<std::mutex> serial{c.accept_mtx};
  std::unique_lock<std::mutex> lk{c.mtx};
  if (auto err = c.gone_error_locked()) {
    lk.unlock();
    send_refusal(*transport, "the pipe is closed");
    transport->close();
    return err;
  }
  // The old connection goes first, so our position is exact.
  c.drop_current_locked();
  c.pending = transport;
  c.wait_quiet_locked(lk);
  auto fail = [&](caf::error err, bool refuse) {
    c.pending = nullptr;
    c.last_error = err;
    if (!c.closed)
      c.set_state_locked(pipe_state::disconnected, err);
    lk.unlock();
    if (refuse)
      send_refusal(*transport, render(err));
    transport->close();
    return err;
  };
  if (c.closed)
    return fail(make_error(errc::closed, "the pipe is closed"), false);
  ++c.attempts;
  if (auto err = c.check_remote_locked(hello.position))
    return fail(err, true);
  auto local = c.received;
  lk.unlock();
  auto sent = send_welcome(*transport, session, local);
  lk.lock();
  if (sent)
    return fail(sent, false);
  if (c.closed)
    return fail(make_error(errc::closed, "the pipe is closed"), false);
  c.pending = nullptr;
  if (auto err = c.attach_locked(transport, hello.position))
    return fail(err, false);
  return {};
}

namespace {

/// Runs one read of the user's (`f` reads from the incoming stream and
/// returns how many bytes it took) and accounts for it.
template <class T, class F>
caf::expected<T> user_read(pipe_core& c, F f) {
  std::lock_guard<std::mutex> serial{c.read_mtx};
  {
    std::lock_guard<std::mutex> guard{c.mtx};
    if (c.closed)
      return c.gone_error_locked();
  }
  std::size_t k = 0;
  auto res = f(k);
  if (!res) {
    std::lock_guard<std::mutex> guard{c.mtx};
    if (c.closed)
      return c.gone_error_locked();
    return std::move(res.error());
  }
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard{c.mtx};
    auto before = c.read_count.fetch_add(k, std::memory_order_relaxed);
    auto after = before + k;
    // The send thread cares when reads start to wait for an acknowledgement
    // (it starts the delay), when a step is due, or at the end.
    wake = before <= c.advertised || after - c.advertised >= c.ack_step()
           || (c.fin_received && after == c.in_final);
  }
  if (wake)
    c.cv.notify_all();
  return res;
}

/// Runs one write of the user's in pieces of at most a quarter window
/// (`put(offset, n)` writes one): the send thread learns of each piece once
/// it is in, so a writer waiting for room never waits for bytes the send
/// thread does not know about.
template <class Put>
caf::error user_write(pipe_core& c, std::size_t n, Put put) {
  std::lock_guard<std::mutex> serial{c.write_mtx};
  {
    std::lock_guard<std::mutex> guard{c.mtx};
    if (auto err = c.gone_error_locked())
      return err;
    if (c.write_closed)
      return make_error(errc::closed, "the pipe's write direction is closed");
  }
  auto piece = static_cast<std::size_t>(
    std::clamp<std::uint64_t>(c.opts.window / 4, 1, 1024 * 1024));
  std::size_t done = 0;
  while (done < n) {
    auto k = std::min(n - done, piece);
    if (auto err = put(done, k)) {
      std::lock_guard<std::mutex> guard{c.mtx};
      if (auto gone = c.gone_error_locked())
        return gone;
      return err;
    }
    {
      std::lock_guard<std::mutex> guard{c.mtx};
      c.out_written += k;
    }
    c.cv.notify_all();
    done += k;
  }
  return {};
}

} // namespace

caf::expected<std::size_t> backed_pipe::read(void* buf, std::size_t n) {
  if (!impl_)
    return invalid_pipe();
  auto& c = *impl_->core;
  return user_read<std::size_t>(c, [&](std::size_t& k) {
    auto res = c.user_reader.read(buf, n);
    if (res)
      k = *res;
    return res;
  });
}

caf::expected<std::vector<slice>> backed_pipe::read_slices(std::size_t max) {
  if (!impl_)
    return invalid_pipe();
  auto& c = *impl_->core;
  return user_read<std::vector<slice>>(c, [&](std::size_t& k) {
    auto res = c.user_reader.read_slices(max);
    if (res)
      for (auto& x : *res)
        k += x.size();
    return res;
  });
}

caf::error backed_pipe::write(const void* data, std::size_t n) {
  if (!impl_)
    return invalid_pipe();
  auto& c = *impl_->core;
  auto* p = static_cast<const std::byte*>(data);
  return user_write(c, n, [&](std::size_t offset, std::size_t k) {
    return c.out_writer->write(p + offset, k);
  });
}

caf::error backed_pipe::write(slice s) {
  if (!impl_)
    return invalid_pipe();
  auto& c = *impl_->core;
  return user_write(c, s.size(), [&](std::size_t offset, std::size_t k) {
    return c.out_writer->write(s.subslice(offset, k));
  });
}

caf::error backed_pipe::write(std::string_view text) {
  return write(text.data(), text.size());
}

caf::error backed_pipe::close_write() {
  if (!impl_)
    return invalid_pipe();
  auto& c = *impl_->core;
  std::lock_guard<std::mutex> serial{c.write_mtx};
  std::lock_guard<std::mutex> guard{c.mtx};
  if (auto err = c.gone_error_locked())
    return err;
  if (c.write_closed)
    return {};
  c.out_writer->close();
  c.write_closed = true;
  c.out_final = c.out_written;
  c.cv.notify_all();
  return {};
}

caf::error
backed_pipe::wait_acknowledged(std::optional<caf::timespan> timeout) {
  if (!impl_)
    return invalid_pipe();
  auto& c = *impl_->core;
  std::unique_lock<std::mutex> lk{c.mtx};
  auto done = [&] {
    return c.closed || c.failed
           || (c.remote_acked == c.out_written
               && (!c.write_closed || c.fin_acked));
  };
  if (timeout) {
    if (!c.cv.wait_for(lk, *timeout, done))
      return make_error(errc::timeout,
                        std::to_string(c.out_written - c.remote_acked)
                          + " bytes not acknowledged yet");
  } else {
    c.cv.wait(lk, done);
  }
  return c.gone_error_locked();
}

bool backed_pipe::wait_peer_done(caf::timespan timeout) {
  if (!impl_)
    return false;
  auto& c = *impl_->core;
  std::unique_lock<std::mutex> lk{c.mtx};
  c.cv.wait_for(lk, timeout, [&] {
    return (c.peer_bye && c.bye_out) || c.closed || c.failed;
  });
  return c.peer_bye && c.bye_out;
}

void backed_pipe::close() {
  if (impl_)
    impl_->core->close();
}

pipe_state backed_pipe::state() const {
  if (!impl_)
    return pipe_state::closed;
  std::lock_guard<std::mutex> guard{impl_->core->mtx};
  return impl_->core->state;
}

pipe_stats backed_pipe::stats() const {
  pipe_stats st;
  if (!impl_)
    return st;
  auto& c = *impl_->core;
  std::lock_guard<std::mutex> guard{c.mtx};
  st.state = c.state;
  st.generation = c.generation;
  st.attempts = c.attempts;
  st.written = c.out_written;
  st.acknowledged = c.remote_acked;
  st.sent = c.sent.load(std::memory_order_relaxed);
  st.received = c.received;
  st.read = c.read_count.load(std::memory_order_relaxed);
  st.write_closed_acknowledged = c.fin_acked;
  st.peer_closed = c.fin_received;
  st.waiting = c.series_waiters;
  st.last_error = c.failed ? c.failed : c.last_error;
  return st;
}

void backed_pipe::observe(caf::actor observer) {
  if (!impl_ || !observer)
    return;
  auto& c = *impl_->core;
  std::lock_guard<std::mutex> guard{c.mtx};
  caf::anon_send(observer, pipe_event{c.state, c.generation, {}});
  c.observers.push_back(std::move(observer));
}

} // namespace asyncstream
