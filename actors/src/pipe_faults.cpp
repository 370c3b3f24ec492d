#include "asyncstream/testing/pipe_faults.hpp"

#include <algorithm>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "asyncstream/error.hpp"

namespace asyncstream::testing {

namespace {

class faulty_transport final : public pipe_transport {
public:
  faulty_transport(pipe_transport_ptr inner, const fault_plan& plan)
    : inner_(std::move(inner)), plan_(plan), rng_(plan.seed) {
    if (plan.max_bytes > 0) {
      std::uniform_int_distribution<std::uint64_t> d{
        plan.min_bytes, std::max(plan.min_bytes, plan.max_bytes)};
      budget_ = d(rng_);
      limited_ = true;
    }
  }

  ~faulty_transport() override {
    inner_->close();
  }

  caf::expected<std::size_t> read(void* buf, std::size_t n) override {
    stall();
    auto k = take(n);
    if (k == 0)
      return cut_error();
    auto res = inner_->read(buf, k);
    if (res && *res > 0)
      spend(*res);
    return res;
  }

  caf::error write(const void* data, std::size_t n) override {
    stall();
    auto k = take(n);
    if (k > 0)
      if (auto err = inner_->write(data, k))
        return err;
    spend(k);
    if (k < n)
      return cut_error();
    return {};
  }

  void close() noexcept override {
    inner_->close();
  }

  std::string describe() const override {
    return "faulty(" + inner_->describe() + ")";
  }

private:
  /// Returns how many of `n` bytes may pass before the cut.
  std::size_t take(std::size_t n) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!limited_)
      return n;
    return static_cast<std::size_t>(std::min<std::uint64_t>(n, budget_));
  }

  void spend(std::size_t n) {
    bool cut = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!limited_)
        return;
      budget_ -= std::min<std::uint64_t>(budget_, n);
      passed_ += n;
      cut = budget_ == 0;
    }
    if (cut)
      inner_->close();
  }

  caf::error cut_error() {
    inner_->close();
    std::lock_guard<std::mutex> guard{mtx_};
    return make_error(errc::closed, describe() + ": injected cut after "
                                      + std::to_string(passed_) + " bytes");
  }

  void stall() {
    std::chrono::microseconds d{0};
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (plan_.stall_per_mille == 0 || plan_.max_stall.count() <= 0)
        return;
      std::uniform_int_distribution<unsigned> p{0, 999};
      if (p(rng_) >= plan_.stall_per_mille)
        return;
      std::uniform_int_distribution<std::int64_t> s{0, plan_.max_stall.count()};
      d = std::chrono::microseconds{s(rng_)};
    }
    std::this_thread::sleep_for(d); // the injected fault itself
  }

  pipe_transport_ptr inner_;
  fault_plan plan_;
  std::mutex mtx_;
  std::mt19937_64 rng_;
  bool limited_ = false;
  std::uint64_t budget_ = 0;
  std::uint64_t passed_ = 0;
};

} // namespace

pipe_transport_ptr make_faulty_transport(pipe_transport_ptr inner,
                                         fault_plan plan) {
  return std::make_shared<faulty_transport>(std::move(inner), plan);
}

pipe_connector make_memory_connector(pipe_acceptor accept, fault_plan plan) {
  return [accept = std::move(accept),
          plan](const connect_request& req) -> caf::expected<pipe_connection> {
    if (req.cancel && req.cancel->canceled())
      return make_error(errc::canceled, "connect attempt canceled");
    auto [a, b] = make_memory_transport_pair(
      plan.buffer, "memory connection " + std::to_string(req.attempt));
    auto p = plan;
    p.seed = plan.seed + req.attempt;
    auto client = make_faulty_transport(a, p);
    if (req.cancel)
      req.cancel->on_cancel([a = a] { a->close(); });
    auto server = b;
    std::thread srv{[server, &accept] {
      auto hello = read_hello(*server);
      if (!hello) {
        server->close();
        return;
      }
      accept(server, *hello);
    }};
    auto welcome = client_handshake(*client, 1, req.local_position);
    srv.join();
    if (!welcome) {
      client->close();
      return std::move(welcome.error());
    }
    if (req.cancel && req.cancel->canceled()) {
      client->close();
      return make_error(errc::canceled, "connect attempt canceled");
    }
    return pipe_connection{client, welcome->position};
  };
}

} // namespace asyncstream::testing
