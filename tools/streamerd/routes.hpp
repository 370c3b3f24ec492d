// routes: maps a parsed request to the exchange that answers it.
//
//   GET|HEAD  /streams/NAME   download (download.hpp)
//   PUT|POST  /streams/NAME   upload (upload.hpp)
//   DELETE    /streams/NAME   answer: 204 or 404
//   GET|HEAD  / /index.html   the status page
//   GET|HEAD  /metrics        Prometheus text
//   GET|HEAD  /status.json    the status page's data
//
// Contract: called on the connection's strand with a parser whose header is
// complete and checked (http_rules.hpp); returns a new exchange that has not
// started yet.
#pragma once

#include <memory>

#include "connection.hpp"

namespace streamerd {

std::shared_ptr<exchange> route(connection& conn,
                                connection::header_parser& parser);

} // namespace streamerd
