// The wire forms of remote_protocol.hpp: bytes in and out of CAF's
// serializers, status conversions, type registration.
#include "asyncstream/remote_protocol.hpp"

#include <algorithm>
#include <chrono>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>
#include <caf/to_string.hpp>

#include "asyncstream/chunk_pool.hpp"
#include "asyncstream/error.hpp"
#include "asyncstream/remote.hpp"

namespace asyncstream::remote {

caf::error save_wire_bytes(caf::serializer& sink, const wire_bytes& x) {
  auto size = x.size;
  if (auto err = sink.apply(size))
    return err;
  for (auto& s : x.slices) {
    if (s.empty())
      continue;
    // apply_raw takes a non-const pointer for both directions; a
    // serializer only reads it.
    auto* data = const_cast<std::byte*>(s.data());
    if (auto err = sink.apply_raw(s.size(), data))
      return err;
  }
  return caf::none;
}

caf::error load_wire_bytes(caf::deserializer& source, wire_bytes& x) {
  x.slices.clear();
  x.size = 0;
  std::uint64_t size = 0;
  if (auto err = source.apply(size))
    return err;
  if (size > max_wire_bytes)
    return make_error(errc::protocol_error,
                      "a message announces " + std::to_string(size)
                        + " stream bytes (at most "
                        + std::to_string(max_wire_bytes) + ")");
  if (size == 0)
    return caf::none;
  // One chunk at a time: a message shorter than it announces fails at
  // the first missing byte, having taken at most one chunk more.
  auto pool = chunk_pool::shared();
  auto left = size;
  while (left > 0) {
    auto ck = pool->acquire();
    auto n
      = static_cast<std::size_t>(std::min<std::uint64_t>(left, ck->capacity()));
    if (auto err = source.apply_raw(n, ck->mutable_data()))
      return err;
    x.slices.emplace_back(chunk_ptr{std::move(ck)}, 0, n);
    left -= n;
  }
  x.size = size;
  return caf::none;
}

wire_error to_wire(const caf::error& err) {
  wire_error res;
  if (!err)
    return res;
  res.code = err.code();
  res.category = static_cast<std::uint64_t>(err.category());
  auto& ctx = err.context();
  if (ctx.match_elements<std::string, std::uint64_t, std::uint64_t>()) {
    res.text = ctx.get_as<std::string>(0);
    res.has_range = true;
    res.offset = ctx.get_as<std::uint64_t>(1);
    res.oldest = ctx.get_as<std::uint64_t>(2);
  } else if (ctx.size() >= 1 && ctx.match_element<std::string>(0)) {
    res.text = ctx.get_as<std::string>(0);
  } else if (!ctx.empty()) {
    res.text = caf::to_string(ctx);
  }
  if (res.text.size() > max_error_text)
    res.text.resize(max_error_text);
  return res;
}

caf::error from_wire(const wire_error& err) {
  if (err.code == 0)
    return caf::error{};
  auto category = static_cast<caf::atom_value>(err.category);
  if (err.has_range)
    return caf::error{err.code, category,
                      caf::make_message(err.text, err.offset, err.oldest)};
  if (err.text.empty())
    return caf::error{err.code, category};
  return caf::error{err.code, category, caf::make_message(err.text)};
}

namespace {

/// Both `stream_status` and `stream_stats` have these fields.
template <class Status>
remote_status status_to_wire(const Status& st) {
  remote_status res;
  res.size = st.size;
  res.oldest = st.oldest;
  res.final = st.final;
  res.error = to_wire(st.error);
  res.has_declared_length = st.declared_length.has_value();
  res.declared_length = st.declared_length.value_or(0);
  res.parked = st.parked;
  return res;
}

} // namespace

remote_status to_wire(const stream_status& st) {
  return status_to_wire(st);
}

remote_status to_wire(const stream_stats& st) {
  return status_to_wire(st);
}

stream_status from_wire(const remote_status& st) {
  stream_status res;
  res.size = st.size;
  res.oldest = st.oldest;
  res.final = st.final;
  res.error = from_wire(st.error);
  if (st.has_declared_length)
    res.declared_length = st.declared_length;
  res.parked = st.parked;
  return res;
}

void configure(caf::actor_system_config& cfg) {
  asyncstream::configure(cfg);
  cfg.load<caf::io::middleman>();
  // A peer that goes silent (a cut link, a partition: no reset arrives) is
  // declared dead after `connection_timeout` without messages; heartbeats
  // keep idle connections alive. Set these keys again after this call to
  // choose other values.
  cfg.set("middleman.heartbeat-interval", caf::timespan{heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{connection_timeout});
  cfg.add_message_type<wire_bytes>("asyncstream::remote::wire_bytes");
  cfg.add_message_type<wire_error>("asyncstream::remote::wire_error");
  cfg.add_message_type<remote_status>("asyncstream::remote::remote_status");
  cfg.add_message_type<stream_shape>("asyncstream::remote::stream_shape");
  cfg.add_message_type<open_request>("asyncstream::remote::open_request");
  cfg.add_message_type<open_reply>("asyncstream::remote::open_reply");
  cfg.add_message_type<remote_chunk>("asyncstream::remote::remote_chunk");
  cfg.add_message_type<session_actor>("asyncstream::remote::session_actor");
  cfg.add_message_type<directory_actor>("asyncstream::remote::directory_actor");
}

} // namespace asyncstream::remote
