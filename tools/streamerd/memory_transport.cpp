#include "memory_transport.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/post.hpp>

namespace streamerd {

struct memory_pipe::state : std::enable_shared_from_this<state> {
  explicit state(transport::executor_type ex) : ex(std::move(ex)) {
    // nop
  }

  transport::executor_type ex;
  // Everything below is touched only on the strand, except `output` and
  // `closed`, which the test reads from its thread (under `mtx`).
  std::string input;
  bool eof = false;
  bool was_reset = false;
  std::uint64_t window = std::numeric_limits<std::uint64_t>::max();
  mutable std::mutex mtx;
  std::string output;
  bool closed = false;
  // Parked operations.
  net::mutable_buffer read_buf;
  transport::io_handler read_h;
  std::vector<net::const_buffer> write_bufs;
  transport::io_handler write_h;
  int file_fd = -1;
  std::uint64_t file_off = 0;
  std::size_t file_max = 0;
  transport::io_handler file_h;
  transport::watch_handler watch_h;

  bool is_closed() const {
    std::lock_guard<std::mutex> guard{mtx};
    return closed;
  }

  /// Completes whatever can complete now (on the strand).
  void pump() {
    auto self = shared_from_this();
    if (is_closed()) {
      fail_all(net::error::operation_aborted);
      return;
    }
    if (read_h && (!input.empty() || eof || was_reset)) {
      auto h = std::move(read_h);
      read_h = nullptr;
      if (!input.empty()) {
        auto n = std::min(input.size(), read_buf.size());
        std::memcpy(read_buf.data(), input.data(), n);
        input.erase(0, n);
        post([h, n] { h({}, n); });
      } else {
        error_code ec = was_reset ? error_code{net::error::connection_reset}
                                  : error_code{net::error::eof};
        post([h, ec] { h(ec, 0); });
      }
    }
    if (watch_h && (!input.empty() || eof || was_reset)) {
      auto h = std::move(watch_h);
      watch_h = nullptr;
      bool gone = input.empty();
      post([h, gone] { h({}, gone); });
    }
    if (write_h && (window > 0 || was_reset)) {
      auto h = std::move(write_h);
      write_h = nullptr;
      if (was_reset) {
        post([h] { h(net::error::connection_reset, 0); });
      } else {
        std::size_t n = 0;
        std::lock_guard<std::mutex> guard{mtx};
        for (auto& b : write_bufs) {
          auto k = static_cast<std::size_t>(
            std::min<std::uint64_t>(b.size(), window - n));
          output.append(static_cast<const char*>(b.data()), k);
          n += k;
          if (n == window)
            break;
        }
        window -= n;
        write_bufs.clear();
        post([h, n] { h({}, n); });
      }
    }
    if (file_h && (window > 0 || was_reset)) {
      auto h = std::move(file_h);
      file_h = nullptr;
      if (was_reset) {
        post([h] { h(net::error::connection_reset, 0); });
      } else {
        auto want = static_cast<std::size_t>(
          std::min<std::uint64_t>(file_max, window));
        std::string tmp(want, '\0');
        auto got = ::pread(file_fd, tmp.data(), want,
                           static_cast<off_t>(file_off));
        if (got <= 0) {
          error_code ec = got == 0 ? error_code{net::error::eof}
                                   : error_code{errno,
                                                boost::system::system_category()};
          post([h, ec] { h(ec, 0); });
        } else {
          auto n = static_cast<std::size_t>(got);
          {
            std::lock_guard<std::mutex> guard{mtx};
            output.append(tmp.data(), n);
          }
          window -= n;
          post([h, n] { h({}, n); });
        }
      }
    }
  }

  void fail_all(error_code ec) {
    if (read_h) {
      auto h = std::move(read_h);
      read_h = nullptr;
      post([h, ec] { h(ec, 0); });
    }
    if (write_h) {
      auto h = std::move(write_h);
      write_h = nullptr;
      write_bufs.clear();
      post([h, ec] { h(ec, 0); });
    }
    if (file_h) {
      auto h = std::move(file_h);
      file_h = nullptr;
      post([h, ec] { h(ec, 0); });
    }
    if (watch_h) {
      auto h = std::move(watch_h);
      watch_h = nullptr;
      post([h, ec] { h(ec, true); });
    }
  }

  template <class F>
  void post(F f) {
    net::post(ex, std::move(f));
  }

  /// Runs `f` on the strand, then completes what it made possible.
  template <class F>
  void on_strand(F f) {
    net::post(ex, [self = shared_from_this(), f = std::move(f)]() mutable {
      f(*self);
      self->pump();
    });
  }
};

namespace {

class memory_transport final : public transport {
public:
  explicit memory_transport(std::shared_ptr<memory_pipe::state> st)
    : st_(std::move(st)) {
    // nop
  }

  ~memory_transport() override {
    close();
  }

  executor_type get_executor() const override {
    return st_->ex;
  }

  void async_read_some(net::mutable_buffer buf, io_handler h) override {
    st_->read_buf = buf;
    st_->read_h = std::move(h);
    st_->pump();
  }

  void async_write_some(std::vector<net::const_buffer> bufs,
                        io_handler h) override {
    st_->write_bufs = std::move(bufs);
    st_->write_h = std::move(h);
    st_->pump();
  }

  void async_sendfile_some(int fd, std::uint64_t offset, std::size_t max,
                           io_handler h) override {
    st_->file_fd = fd;
    st_->file_off = offset;
    st_->file_max = max;
    st_->file_h = std::move(h);
    st_->pump();
  }

  void async_watch_peer(watch_handler h) override {
    st_->watch_h = std::move(h);
    st_->pump();
  }

  void close() override {
    {
      std::lock_guard<std::mutex> guard{st_->mtx};
      if (st_->closed)
        return;
      st_->closed = true;
    }
    st_->fail_all(net::error::operation_aborted);
  }

  bool is_open() const override {
    return !st_->is_closed();
  }

  std::string peer() const override {
    return "memory";
  }

private:
  std::shared_ptr<memory_pipe::state> st_;
};

} // namespace

memory_pipe::memory_pipe(transport::executor_type ex)
  : st_(std::make_shared<state>(std::move(ex))) {
  // nop
}

void memory_pipe::feed(std::string bytes) {
  st_->on_strand([bytes = std::move(bytes)](state& st) mutable {
    if (!st.eof && !st.was_reset)
      st.input += bytes;
  });
}

void memory_pipe::end() {
  st_->on_strand([](state& st) { st.eof = true; });
}

void memory_pipe::reset() {
  st_->on_strand([](state& st) { st.was_reset = true; });
}

void memory_pipe::set_window(std::uint64_t bytes) {
  st_->on_strand([bytes](state& st) { st.window = bytes; });
}

std::string memory_pipe::output() const {
  std::lock_guard<std::mutex> guard{st_->mtx};
  return st_->output;
}

bool memory_pipe::closed() const {
  return st_->is_closed();
}

std::unique_ptr<transport> memory_pipe::make_transport() {
  return std::make_unique<memory_transport>(st_);
}

} // namespace streamerd
