// download: the exchange of `GET` or `HEAD /streams/NAME`: one response fed
// by one stream reader (a download actor, download_actor.hpp).
//
// States (docs/streamerd.md draws them):
//
//   waiting_name --(name added)--> opening --(slot, first byte)--> sending_head
//        |  (?wait= over: 404)       |  (503, 404, 416)               |
//        v                           v                      HEAD: done, else
//      done                        done      waiting_bytes <--> writing --> done
//
// Any state may end early (client gone, send timeout, drain, stream failure):
// the connection then calls `release`, which stops the reader (its slot is
// free at once), drops the wait for a name, and gives back every gauge.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "exchange.hpp"

namespace streamerd {

/// What a download was asked for.
struct download_request {
  std::string name;
  bool head = false;
  /// HTTP/1.0: a body of unknown length is delimited by closing.
  bool http10 = false;
  bool keep_alive = true;
  /// The Range header's value (empty: none).
  std::string range;
  /// An If-Range was sent: streamerd has no validators, so it never
  /// matches and the Range is ignored (RFC 9110 13.1.5).
  bool if_range = false;
  /// The `wait` query parameter.
  std::optional<std::string> wait;
};

std::shared_ptr<exchange> make_download(connection& conn,
                                        download_request req);

} // namespace streamerd
