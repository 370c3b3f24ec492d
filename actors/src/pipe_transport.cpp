#include "asyncstream/pipe_transport.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>

#include "asyncstream/error.hpp"

namespace asyncstream {

// -- pipe_transport -----------------------------------------------------------

pipe_transport::~pipe_transport() {
  // nop
}

caf::error pipe_transport::write(const std::vector<slice>& xs) {
  for (auto& x : xs)
    if (!x.empty())
      if (auto err = write(x.data(), x.size()))
        return err;
  return {};
}

// -- cancel_token -------------------------------------------------------------

bool cancel_token::canceled() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return canceled_;
}

void cancel_token::on_cancel(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!canceled_) {
      callbacks_.push_back(std::move(f));
      return;
    }
  }
  f();
}

void cancel_token::cancel() {
  std::vector<std::function<void()>> fs;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (canceled_)
      return;
    canceled_ = true;
    fs.swap(callbacks_);
  }
  for (auto& f : fs)
    f();
}

// -- the in-process pair ------------------------------------------------------

namespace {

/// The state both sides of a memory pair share: one bounded byte queue per
/// direction, and one closed flag for the connection.
struct memory_link {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::byte> queue[2]; // queue[i]: bytes for side i to read
  std::size_t buffer = 0;
  bool closed = false;
};

class memory_side final : public pipe_transport {
public:
  memory_side(std::shared_ptr<memory_link> link, int index, std::string name)
    : link_(std::move(link)), index_(index), name_(std::move(name)) {
    // nop
  }

  ~memory_side() override {
    close();
  }

  caf::expected<std::size_t> read(void* buf, std::size_t n) override {
    if (n == 0)
      return std::size_t{0};
    auto& l = *link_;
    std::unique_lock<std::mutex> guard{l.mtx};
    auto& q = l.queue[index_];
    l.cv.wait(guard, [&] { return l.closed || !q.empty(); });
    if (l.closed)
      return make_error(errc::closed, describe() + ": connection closed");
    auto k = std::min(n, q.size());
    std::copy_n(q.begin(), k, static_cast<std::byte*>(buf));
    q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(k));
    l.cv.notify_all();
    return k;
  }

  caf::error write(const void* data, std::size_t n) override {
    auto& l = *link_;
    auto* p = static_cast<const std::byte*>(data);
    std::unique_lock<std::mutex> guard{l.mtx};
    auto& q = l.queue[1 - index_];
    while (n > 0) {
      l.cv.wait(guard, [&] { return l.closed || q.size() < l.buffer; });
      if (l.closed)
        return make_error(errc::closed, describe() + ": connection closed");
      auto k = std::min(n, l.buffer - q.size());
      q.insert(q.end(), p, p + k);
      p += k;
      n -= k;
      l.cv.notify_all();
    }
    return {};
  }

  void close() noexcept override {
    auto& l = *link_;
    std::lock_guard<std::mutex> guard{l.mtx};
    if (l.closed)
      return;
    l.closed = true;
    l.queue[0].clear();
    l.queue[1].clear();
    l.cv.notify_all();
  }

  std::string describe() const override {
    return name_ + (index_ == 0 ? ", side a" : ", side b");
  }

private:
  std::shared_ptr<memory_link> link_;
  int index_;
  std::string name_;
};

} // namespace

std::pair<pipe_transport_ptr, pipe_transport_ptr>
make_memory_transport_pair(std::size_t buffer, std::string name) {
  auto link = std::make_shared<memory_link>();
  link->buffer = std::max<std::size_t>(buffer, 1);
  return {std::make_shared<memory_side>(link, 0, name),
          std::make_shared<memory_side>(link, 1, name)};
}

} // namespace asyncstream
