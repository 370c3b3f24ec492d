// fuzz_request: whole HTTP requests through streamerd's real connection
// code (parser, checks, routes, downloads, uploads, answers) over a memory
// transport: no sockets (tests/streamerd_harness.hpp).
//
// Input: the first byte chooses how the client's bytes are cut into pieces
// (0: one piece, else pieces of that many bytes); the rest are the bytes the
// client sends before it closes its side. After each input the connection
// must be gone within 10 s and everything it took given back: connections,
// reader slots, waits for a slot or a name. The streams that uploads made
// are deleted again; the fixed ones are put back if a DELETE took them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "asyncstream/source.hpp"
#include "asyncstream/stream.hpp"
#include "asyncstream/stream_writer.hpp"
#include "fuzz_check.hpp"
#include "streamerd_harness.hpp"

namespace {

using streamerd::registry;
using streamerd::testing::harness;

streamerd::config fuzz_config() {
  auto c = harness::default_config();
  c.max_wait_s = 1;
  c.queue_timeout_s = 1;
  c.limits.header_timeout_s = 2;
  c.limits.keepalive_timeout_s = 2;
  c.limits.send_timeout_s = 2;
  c.limits.body_timeout_s = 2;
  c.limits.max_streams = 16;
  c.limits.max_header_bytes = 4096;
  return c;
}

/// The fixed streams every input may ask for.
struct world {
  harness h{fuzz_config()};
  std::optional<asyncstream::stream_writer> live_writer;
  asyncstream::stream done;
  asyncstream::stream live;
  asyncstream::stream failed;

  world() {
    spdlog::set_level(spdlog::level::off);
    asyncstream::stream_options opts;
    opts.transfer_thread = false;
    std::string bytes;
    for (int i = 0; i < 200; ++i)
      bytes += "line " + std::to_string(i) + "\n";
    done = *asyncstream::stream::make(
      h.sys(), asyncstream::source::from_bytes(std::move(bytes)), opts);
    live = *asyncstream::stream::make(h.sys(), asyncstream::source::push(),
                                      opts);
    live_writer.emplace(std::move(*live.writer()));
    live_writer->write("the live stream so far\n", 23);
    failed = *asyncstream::stream::make(h.sys(), asyncstream::source::push(),
                                        opts);
    auto w = failed.writer();
    w->write("0123456789", 10);
    w->close_with_error(asyncstream::make_error(asyncstream::errc::io_error,
                                                "the producer failed"));
    restore();
  }

  /// Lists the fixed streams again (a DELETE may have taken one) and
  /// deletes every other (uploads).
  void restore() {
    for (auto& e : h.reg().list())
      if (e->name != "done" && e->name != "live" && e->name != "failed")
        h.reg().remove(e->name);
    if (!h.reg().find("done"))
      h.add("done", done);
    if (!h.reg().find("live"))
      h.add("live", live);
    if (!h.reg().find("failed"))
      h.add("failed", failed);
  }

  bool all_released() {
    auto& st = h.ctx().stats;
    return h.ctx().connection_count() == 0 && st.connections.load() == 0
           && st.waiting_slot.load() == 0 && st.waiting_name.load() == 0
           && h.reg().open_readers.load() == 0;
  }

  bool no_readers() {
    for (auto* s : {&done, &live, &failed}) {
      auto st = s->stats();
      if (st.readers != 0 || st.waiting != 0 || st.parked != 0)
        return false;
    }
    return true;
  }
};

world& the_world() {
  // Never destroyed: libFuzzer exits with the actors still running.
  static auto* w = new world;
  return *w;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0)
    return 0;
  auto& w = the_world();
  std::size_t piece = data[0];
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  auto c = w.h.connect();
  if (piece == 0 || bytes.empty()) {
    c.pipe->feed(bytes);
  } else {
    for (std::size_t i = 0; i < bytes.size(); i += piece)
      c.pipe->feed(bytes.substr(i, piece));
  }
  c.pipe->end();
  FUZZ_CHECK(w.h.run_until([&] { return c.gone(); }, 10));
  FUZZ_CHECK(w.h.run_until([&] { return w.all_released(); }, 10));
  w.restore();
  FUZZ_CHECK(w.h.run_until([&] { return w.no_readers(); }, 10));
  return 0;
}
