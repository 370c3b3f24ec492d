#include "metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "asyncstream/error.hpp"

namespace streamerd {

namespace {

/// Escapes a label value or a JSON string (names are safe tokens already;
/// origins and errors may hold anything).
std::string escape(const std::string& x) {
  std::string out;
  for (auto c : x) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

const char* state_of(const stream_report& r) {
  if (!r.stats.final)
    return "live";
  return r.stats.error ? "failed" : "ended";
}

/// Writes one metric's HELP and TYPE lines.
void describe(std::ostringstream& out, const char* name, const char* type,
              const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' '
      << type << '\n';
}

template <class T>
void single(std::ostringstream& out, const char* name, const char* type,
            const char* help, T value) {
  describe(out, name, type, help);
  out << name << ' ' << value << '\n';
}

/// The `streamerd_relay_*` metrics of the streams that relays fill.
void render_relay_metrics(std::ostringstream& out,
                          const std::vector<stream_report>& reports) {
  if (std::none_of(reports.begin(), reports.end(),
                   [](const stream_report& r) { return r.relay != nullptr; }))
    return;
  auto label = [](const stream_report& r) {
    return "{stream=\"" + escape(r.name) + "\",upstream=\""
           + escape(r.relay->upstream) + "\"} ";
  };
  describe(out, "streamerd_relay_offset_bytes", "gauge",
           "Bytes a relay received from its upstream (its stream's size).");
  for (auto& r : reports)
    if (r.relay)
      out << "streamerd_relay_offset_bytes" << label(r)
          << r.relay->offset.load() << '\n';
  describe(out, "streamerd_relay_upstream_bytes", "gauge",
           "The upstream stream's size as last seen (polled every second).");
  for (auto& r : reports)
    if (r.relay)
      out << "streamerd_relay_upstream_bytes" << label(r)
          << r.relay->upstream_bytes.load() << '\n';
  describe(out, "streamerd_relay_lag_bytes", "gauge",
           "Bytes the upstream has that the relay has not: upstream bytes "
           "as last seen minus the offset, 0 if not ahead.");
  for (auto& r : reports)
    if (r.relay)
      out << "streamerd_relay_lag_bytes" << label(r) << r.relay->lag() << '\n';
  describe(out, "streamerd_relay_reconnects_total", "counter",
           "Connections a relay made to its upstream after its first.");
  for (auto& r : reports)
    if (r.relay)
      out << "streamerd_relay_reconnects_total" << label(r)
          << r.relay->reconnects.load() << '\n';
  describe(out, "streamerd_relay_receiving", "gauge",
           "1 while a relay reads its upstream's body, else 0.");
  for (auto& r : reports)
    if (r.relay)
      out << "streamerd_relay_receiving" << label(r)
          << (r.relay->current() == relay_phase::receiving ? 1 : 0) << '\n';
}

/// Writes `xs` as a JSON array of integers.
void json_array(std::ostringstream& out, const std::vector<std::uint64_t>& xs) {
  out << '[';
  for (std::size_t i = 0; i < xs.size(); ++i)
    out << (i == 0 ? "" : ",") << xs[i];
  out << ']';
}

} // namespace

std::string render_metrics(server_context& ctx) {
  return render_metrics(ctx.reg, ctx.stats, ctx.reg.snapshot());
}

std::string render_status_json(server_context& ctx) {
  return render_status_json(ctx.reg, ctx.stats, ctx.reg.snapshot());
}

std::string render_metrics(const registry& reg, const counters& st,
                           const std::vector<stream_report>& reports) {
  std::ostringstream out;
  auto [in, sent] = reg.totals(reports);
  std::uint64_t parked = 0;
  for (auto& r : reports)
    parked += r.stats.parked;
  single(out, "streamerd_streams", "gauge", "Streams listed.", reports.size());
  single(out, "streamerd_bytes_in_total", "counter",
         "Bytes received by all streams.", in);
  single(out, "streamerd_bytes_out_total", "counter",
         "Body bytes sent to consumers.", sent);
  single(out, "streamerd_readers", "gauge", "Consumer responses open.",
         reg.open_readers.load());
  single(out, "streamerd_parked_requests", "gauge",
         "Read requests waiting for bytes.", parked);
  single(out, "streamerd_connections", "gauge", "Client connections open.",
         st.connections.load());
  single(out, "streamerd_connections_total", "counter",
         "Client connections accepted.", st.connections_total.load());
  single(out, "streamerd_connections_rejected_total", "counter",
         "Connections refused with 503 at --max-connections.",
         st.connections_rejected.load());
  single(out, "streamerd_accept_errors_total", "counter",
         "Failed accept(2) calls (descriptors, memory).",
         st.accept_errors.load());
  describe(out, "streamerd_waiting", "gauge",
           "Requests waiting: for a reader slot, or for a stream name.");
  out << "streamerd_waiting{for=\"slot\"} " << st.waiting_slot.load() << '\n'
      << "streamerd_waiting{for=\"name\"} " << st.waiting_name.load() << '\n';
  describe(out, "streamerd_timeouts_total", "counter",
           "Connections ended by a timeout, by phase.");
  for (std::size_t i = 0; i < timeout_phase_count; ++i)
    out << "streamerd_timeouts_total{phase=\""
        << to_string(static_cast<timeout_phase>(i)) << "\"} "
        << st.timeouts[i].load() << '\n';
  describe(out, "streamerd_requests_total", "counter",
           "Answered requests by status code.");
  for (auto& [code, n] : reg.request_counts())
    out << "streamerd_requests_total{code=\"" << code << "\"} " << n << '\n';
  describe(out, "streamerd_stream_bytes", "gauge",
           "Bytes in the stream so far.");
  for (auto& r : reports)
    out << "streamerd_stream_bytes{stream=\"" << escape(r.name) << "\"} "
        << r.stats.size << '\n';
  describe(out, "streamerd_stream_readers", "gauge",
           "Open consumer responses.");
  for (auto& r : reports)
    out << "streamerd_stream_readers{stream=\"" << escape(r.name) << "\"} "
        << r.readers << '\n';
  describe(out, "streamerd_stream_lag_bytes", "gauge",
           "Stream size minus the offset of its slowest consumer.");
  for (auto& r : reports)
    out << "streamerd_stream_lag_bytes{stream=\"" << escape(r.name) << "\"} "
        << r.lag << '\n';
  render_relay_metrics(out, reports);
  return out.str();
}

std::string render_status_json(const registry& reg, const counters& st,
                               const std::vector<stream_report>& reports) {
  std::ostringstream out;
  auto [in, sent] = reg.totals(reports);
  out << "{\"bytes_in_total\":" << in << ",\"bytes_out_total\":" << sent
      << ",\"readers\":" << reg.open_readers.load()
      << ",\"connections\":" << st.connections.load()
      << ",\"rate_window_seconds\":" << traffic_history::window.count()
      << ",\"streams\":[";
  bool first = true;
  for (auto& r : reports) {
    if (!first)
      out << ",";
    first = false;
    out << "{\"name\":\"" << escape(r.name) << "\",\"origin\":\""
        << escape(r.origin) << "\",\"state\":\"" << state_of(r)
        << "\",\"bytes\":" << r.stats.size << ",\"readers\":" << r.readers
        << ",\"lag_bytes\":" << r.lag << ",\"bytes_out\":" << r.bytes_out
        << ",\"parked\":" << r.stats.parked << ",\"age_seconds\":"
        << static_cast<std::uint64_t>(r.age_seconds);
    if (r.stats.declared_length)
      out << ",\"length\":" << *r.stats.declared_length;
    if (r.stats.error)
      out << ",\"error\":\"" << escape(asyncstream::render(r.stats.error))
          << "\"";
    out << ",\"rate_in\":";
    json_array(out, r.rates.in);
    out << ",\"rate_out\":";
    json_array(out, r.rates.out);
    if (r.relay)
      out << ",\"relay\":{\"upstream\":\"" << escape(r.relay->upstream)
          << "\",\"state\":\"" << to_string(r.relay->current())
          << "\",\"offset\":" << r.relay->offset.load()
          << ",\"upstream_bytes\":" << r.relay->upstream_bytes.load()
          << ",\"lag_bytes\":" << r.relay->lag()
          << ",\"reconnects\":" << r.relay->reconnects.load() << "}";
    out << "}";
  }
  out << "]}";
  return out.str();
}

} // namespace streamerd
