// answer: an exchange that sends one response built in memory (the status
// page, /metrics, a 404, a refusal...). The smallest exchange: it sends,
// then finishes.
#pragma once

#include <memory>
#include <string>

#include "exchange.hpp"
#include "http_rules.hpp"

namespace streamerd {

/// A response whose body is known in full.
struct full_response {
  response_head head{200};
  std::string body;
};

/// A text/plain response with `text` as its body.
full_response plain_answer(unsigned status, std::string text);

/// Sends `res` for the current exchange of `conn` (Content-Length, no body
/// for HEAD), then finishes it: keeps the connection (`keep_alive`, unless
/// the daemon drains) or closes it.
void send_full(connection& conn, full_response res, bool keep_alive,
               bool head_only);

/// Makes the exchange that sends `res`: with Content-Length, no body for
/// HEAD (`head_only`), then keeps the connection (`keep_alive`) or closes.
std::shared_ptr<exchange> make_answer(connection& conn, full_response res,
                                      bool keep_alive, bool head_only);

} // namespace streamerd
