#include "asyncstream/errc.hpp"

namespace asyncstream {

const char* describe(errc code) noexcept {
  switch (code) {
    case errc::none:
      return "no error";
    case errc::invalid_argument:
      return "invalid argument";
    case errc::canceled:
      return "stream aborted";
    case errc::closed:
      return "reader or stream closed";
    case errc::closing:
      return "stream is closing: no new readers";
    case errc::unexpected_end:
      return "source ended before the declared length";
    case errc::buffer_full:
      return "stream reached its fixed capacity";
    case errc::data_loss:
      return "requested bytes are no longer retained";
    case errc::timeout:
      return "timed out";
    case errc::io_error:
      return "I/O error";
    case errc::stream_gone:
      return "stream actors are gone";
    case errc::removing:
      return "stream is being removed: no new readers";
    case errc::resource_exhausted:
      return "out of descriptors, memory or threads";
    case errc::protocol_error:
      return "the peer broke the protocol";
    case errc::disconnected:
      return "the connection to the stream's node broke";
    case errc::not_found:
      return "no stream of that name";
  }
  return "unknown asyncstream error";
}

std::string to_string(errc code) {
  switch (code) {
    case errc::none:
      return "none";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::canceled:
      return "canceled";
    case errc::closed:
      return "closed";
    case errc::closing:
      return "closing";
    case errc::unexpected_end:
      return "unexpected_end";
    case errc::buffer_full:
      return "buffer_full";
    case errc::data_loss:
      return "data_loss";
    case errc::timeout:
      return "timeout";
    case errc::io_error:
      return "io_error";
    case errc::stream_gone:
      return "stream_gone";
    case errc::removing:
      return "removing";
    case errc::resource_exhausted:
      return "resource_exhausted";
    case errc::protocol_error:
      return "protocol_error";
    case errc::disconnected:
      return "disconnected";
    case errc::not_found:
      return "not_found";
  }
  return "unknown";
}

} // namespace asyncstream
