// exchange: one request and its response on a connection (a download, an
// upload, or a small answer such as /metrics or a 404).
//
// Contract (see docs/streamerd.md, "Lifecycles"):
// - A connection owns at most one exchange at a time, the current one, and
//   starts it with `start()`.
// - The exchange ends in exactly one place: the connection calls
//   `release(why, detail)` exactly once, when the exchange reported that its
//   response is complete (`connection::finish`) or when the connection ends
//   it (the client left, a timeout, a drain, a failure). `release` gives back
//   everything the exchange took (its reader slot, its wait for a slot or a
//   name, its stream reference, its writer) and never calls the connection.
// - Every completion the exchange asked for (a write, a read, a reply from
//   an actor, a timer) reaches it only through the connection, and only while
//   it is the current exchange (the connection compares its serial number).
//   So no handler can see an exchange that was released, and nothing of a
//   released exchange runs again: there is no state to reset.
#pragma once

#include <cstdint>
#include <string>

namespace streamerd {

class connection;

/// Why an exchange ended.
enum class end_reason {
  /// The response was sent completely.
  complete,
  /// The client closed or reset the connection.
  client_gone,
  /// A timeout of the connection (header, idle, send, body).
  timeout,
  /// The daemon shut down.
  drained,
  /// The exchange failed (a stream failure cut the response, a bad body).
  failed,
};

const char* to_string(end_reason x) noexcept;

class exchange {
public:
  explicit exchange(connection& conn);

  virtual ~exchange() = default;

  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;

  /// Begins the exchange; called once by the connection.
  virtual void start() = 0;

  /// Ends the exchange for `why`; called exactly once by the connection.
  virtual void release(end_reason why, const std::string& detail) = 0;

  /// The number the connection gave this exchange.
  std::uint64_t serial() const noexcept {
    return serial_;
  }

protected:
  /// Valid until `release`: the connection owns this exchange.
  connection& conn_;

private:
  std::uint64_t serial_;
};

} // namespace streamerd
