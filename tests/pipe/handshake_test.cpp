// The sequence exchange of a backed pipe (pipe_handshake.hpp) and the
// in-process transport pair it is tested on (pipe_transport.hpp).
#include <doctest/doctest.h>

#include <future>
#include <string>
#include <thread>

#include "asyncstream/error.hpp"
#include "asyncstream/pipe_handshake.hpp"
#include "asyncstream/pipe_transport.hpp"

using namespace asyncstream;

namespace {

std::string read_all(pipe_transport& t, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    auto k = t.read(out.data() + got, n - got);
    REQUIRE(k);
    REQUIRE(*k > 0);
    got += *k;
  }
  return out;
}

} // namespace

TEST_SUITE("pipe handshake") {
  TEST_CASE("memory pair: bytes cross in both directions, through a small "
            "buffer") {
    auto [a, b] = make_memory_transport_pair(3, "test pair");
    std::string big(1000, 'x');
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>('a' + i % 26);
    auto writer = std::async(std::launch::async, [a = a, &big] {
      return a->write(big.data(), big.size());
    });
    CHECK(read_all(*b, big.size()) == big);
    CHECK_FALSE(writer.get());
    REQUIRE_FALSE(b->write("bac", 3)); // fits the buffer: no reader needed
    CHECK(read_all(*a, 3) == "bac");
    CHECK(a->describe() == "test pair, side a");
  }

  TEST_CASE("memory pair: close wakes a blocked read and a blocked write on "
            "both sides") {
    auto [a, b] = make_memory_transport_pair(2);
    auto reader = std::async(std::launch::async, [b = b] {
      char c;
      return b->read(&c, 1);
    });
    auto writer = std::async(std::launch::async,
                             [a = a] { return a->write("abcdef", 6); });
    // Neither can finish: b reads nothing until a's 6 bytes fit, and they
    // never do (a buffer of 2, and the reader takes 1)... unless it reads;
    // close from a third thread ends both either way.
    std::thread closer{[a = a] { a->close(); }};
    closer.join();
    auto r = reader.get();
    if (r)
      CHECK(*r == 1); // it may have taken a byte before the close
    auto w = writer.get();
    CHECK(is(w, errc::closed));
    char c;
    CHECK(is(b->read(&c, 1).error(), errc::closed));
    CHECK(is(b->write("x", 1), errc::closed));
    a->close(); // idempotent
  }

  TEST_CASE("handshake: hello, welcome, and the framing runs on") {
    auto [client, server] = make_memory_transport_pair();
    auto srv = std::async(std::launch::async,
                          [server = server]() -> caf::error {
                            auto hello = read_hello(*server);
                            if (!hello)
                              return hello.error();
                            CHECK(hello->session == 0);
                            CHECK(hello->position == 12345);
                            return send_welcome(*server, 77, 999);
                          });
    auto w = client_handshake(*client, 0, 12345);
    REQUIRE(w);
    CHECK(w->session == 77);
    CHECK(w->position == 999);
    CHECK_FALSE(srv.get());
    REQUIRE_FALSE(client->write("data", 4));
    CHECK(read_all(*server, 4) == "data");
  }

  TEST_CASE("handshake: a refusal reaches the client with its reason") {
    auto [client, server] = make_memory_transport_pair();
    auto srv = std::async(std::launch::async, [server = server] {
      auto hello = read_hello(*server);
      REQUIRE(hello);
      CHECK(hello->session == 5);
      return send_refusal(*server, "unknown session 5");
    });
    auto w = client_handshake(*client, 5, 0);
    REQUIRE_FALSE(w);
    CHECK(is(w.error(), errc::closed));
    CHECK(render(w.error()).find("refused by the peer: unknown session 5")
          != std::string::npos);
    CHECK_FALSE(srv.get());
  }

  TEST_CASE("handshake: malformed input is a protocol error naming it") {
    struct bad {
      std::string bytes;
      const char* says;
    };
    for (auto& x :
         {bad{"GET / HTTP/1.1\r\n", "expected a pipe hello"},
          bad{std::string("ASPIPE\x02\x00", 8), "unsupported pipe version"},
          bad{std::string("ASPIPE\x01\x00", 8) + std::string(8, '\0')
                + std::string(7, '\0') + "\x01" + std::string(8, '\0'),
              "unknown hello flags 1"}}) {
      CAPTURE(x.says);
      auto [client, server] = make_memory_transport_pair();
      REQUIRE_FALSE(client->write(x.bytes.data(), x.bytes.size()));
      auto hello = read_hello(*server);
      REQUIRE_FALSE(hello);
      CHECK(is(hello.error(), errc::protocol_error));
      CHECK(render(hello.error()).find(x.says) != std::string::npos);
    }
    // The client side: an answer that is no answer.
    auto [client, server] = make_memory_transport_pair();
    REQUIRE_FALSE(server->write("HTTP/1.1 400 Bad", 16));
    auto w = client_handshake(*client, 0, 0);
    REQUIRE_FALSE(w);
    CHECK(is(w.error(), errc::protocol_error));
    CHECK(render(w.error()).find("HTTP/1.") != std::string::npos);
  }

  TEST_CASE("handshake: a connection that ends mid-hello is closed, not a "
            "hang") {
    auto [client, server] = make_memory_transport_pair();
    REQUIRE_FALSE(client->write("ASPIPE\x01\x00\x00\x00", 10));
    client->close();
    auto hello = read_hello(*server);
    REQUIRE_FALSE(hello);
    CHECK(is(hello.error(), errc::closed));
  }

  TEST_CASE("cancel_token: callbacks run once, late ones at once") {
    cancel_token tok;
    int runs = 0;
    tok.on_cancel([&] { ++runs; });
    CHECK_FALSE(tok.canceled());
    tok.cancel();
    tok.cancel();
    CHECK(runs == 1);
    CHECK(tok.canceled());
    tok.on_cancel([&] { ++runs; });
    CHECK(runs == 2);
  }
} // TEST_SUITE
