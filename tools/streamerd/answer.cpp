#include "answer.hpp"

#include <spdlog/spdlog.h>

#include "connection.hpp"

namespace streamerd {

full_response plain_answer(unsigned status, std::string text) {
  full_response res;
  res.head = response_head{status};
  res.head.set("Content-Type", "text/plain; charset=utf-8");
  res.head.set("Cache-Control", "no-store");
  res.body = std::move(text);
  return res;
}

void send_full(connection& conn, full_response res, bool keep_alive,
               bool head_only) {
  bool keep = keep_alive && conn.may_keep_alive();
  res.head.set("Content-Length", std::to_string(res.body.size()));
  if (!keep)
    res.head.set("Connection", "close");
  conn.context().reg.count_request(res.head.status());
  auto out = std::make_shared<std::string>(res.head.render());
  if (!head_only)
    *out += res.body;
  conn.send({net::buffer(*out)}, out, [&conn, keep](error_code ec) {
    if (ec)
      return conn.close_with(end_reason::client_gone, ec.message());
    conn.finish(keep);
  });
}

namespace {

class answer final : public exchange {
public:
  answer(connection& conn, full_response res, bool keep_alive, bool head_only)
    : exchange(conn),
      res_(std::move(res)),
      keep_alive_(keep_alive),
      head_only_(head_only) {
    // nop
  }

  void start() override {
    send_full(conn_, std::move(res_), keep_alive_, head_only_);
  }

  void release(end_reason, const std::string&) override {
    // Nothing held: the response text travels with its write.
  }

private:
  full_response res_;
  bool keep_alive_;
  bool head_only_;
};

} // namespace

std::shared_ptr<exchange> make_answer(connection& conn, full_response res,
                                      bool keep_alive, bool head_only) {
  return std::make_shared<answer>(conn, std::move(res), keep_alive, head_only);
}

} // namespace streamerd
