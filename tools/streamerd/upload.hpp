// upload: the exchange of `PUT` or `POST /streams/NAME`: the request body
// becomes a new stream as it arrives.
//
// States:
//
//   (checks: name free, stream limit, stream made) --> [100 Continue] -->
//   receiving --(whole body)--> answering 201 --> done
//
// The body is read straight into pooled chunks (for a Content-Length body
// each read(2) fills a chunk's tail; a chunked body is decoded into it), and
// each filled part goes to the stream's writer without another copy. Chunks
// start small and grow 4x up to 1 MiB, so a tiny stream costs a few KiB.
// If the exchange ends before the body did (client gone, body timeout,
// drain, a malformed chunked body), `release` fails the stream with the
// reason: its consumers' responses end truncated.
#pragma once

#include <memory>
#include <string>

#include "connection.hpp"

namespace streamerd {

std::shared_ptr<exchange> make_upload(connection& conn, std::string name,
                                      connection::header_parser& parser);

} // namespace streamerd
