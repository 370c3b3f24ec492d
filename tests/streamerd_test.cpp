// streamerd's pure parts: stream names, Range headers (RFC 9110 section 14)
// and how a range maps onto a stream that may still be growing, query
// parameters, metrics text.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "byte_range.hpp"
#include "registry.hpp"

using namespace streamerd;

namespace {

using u128 = unsigned __int128;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t two_63 = std::uint64_t{1} << 63;

// The allowed bytes of a stream name, spelled out independently of
// valid_stream_name.
bool name_byte(unsigned char c) {
  static const std::string allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "abcdefghijklmnopqrstuvwxyz"
                                     "0123456789._-";
  return c != 0 && allowed.find(static_cast<char>(c)) != std::string::npos;
}

// Parses `value`, expecting `want`; on anything but `ok` the output must be
// untouched.
range_parse parsed(std::string_view value, byte_range& out) {
  byte_range sentinel;
  sentinel.form = byte_range::kind::suffix;
  sentinel.first = 12345;
  sentinel.last = 67890;
  sentinel.suffix = 4242;
  out = sentinel;
  auto res = parse_range(value, out);
  if (res != range_parse::ok) {
    CHECK(out.form == sentinel.form);
    CHECK(out.first == sentinel.first);
    CHECK(out.last == sentinel.last);
    CHECK(out.suffix == sentinel.suffix);
  }
  return res;
}

range_parse parsed(std::string_view value) {
  byte_range r;
  return parsed(value, r);
}

byte_range from(std::uint64_t first,
                std::optional<std::uint64_t> last = std::nullopt) {
  byte_range r;
  r.form = byte_range::kind::from;
  r.first = first;
  r.last = last;
  return r;
}

byte_range suffix(std::uint64_t k) {
  byte_range r;
  r.form = byte_range::kind::suffix;
  r.suffix = k;
  return r;
}

// The boundary values of the sweep for a stream of `size` bytes: 0, 1,
// size-1, size, size+1 (where they exist), 2^63 and 2^64-1.
std::vector<std::uint64_t> boundaries(std::uint64_t size) {
  std::vector<std::uint64_t> xs{0, 1, size, two_63, u64_max};
  if (size > 0)
    xs.push_back(size - 1);
  if (size < u64_max)
    xs.push_back(size + 1);
  return xs;
}

std::string to_dec(u128 x) {
  REQUIRE(x <= u64_max);
  return std::to_string(static_cast<std::uint64_t>(x));
}

// Checks one plan against RFC 9110 14.1.2, computed in 128 bits.
void check_plan(const byte_range& r, std::uint64_t size, bool final) {
  CAPTURE(size);
  CAPTURE(final);
  CAPTURE(r.form == byte_range::kind::suffix);
  CAPTURE(r.first);
  CAPTURE(r.last.value_or(0));
  CAPTURE(r.last.has_value());
  CAPTURE(r.suffix);
  auto p = plan_range(r, size, final);
  u128 L = size;
  if (r.form == byte_range::kind::suffix) {
    // Final or not: planned against the bytes there are.
    bool unsat = r.suffix == 0 || size == 0;
    REQUIRE(p.unsatisfiable == unsat);
    if (unsat)
      return;
    u128 n = r.suffix < L ? u128{r.suffix} : L;
    REQUIRE(p.length);
    CHECK(u128{*p.length} == n);
    CHECK(u128{p.offset} + *p.length == L);
  } else if (final) {
    bool unsat = (r.last && *r.last < r.first) || r.first >= size;
    REQUIRE(p.unsatisfiable == unsat);
    if (unsat)
      return;
    u128 last = L - 1;
    if (r.last && *r.last < last)
      last = *r.last;
    CHECK(p.offset == r.first);
    REQUIRE(p.length);
    CHECK(u128{*p.length} == last - r.first + 1);
  } else {
    bool unsat = r.last && *r.last < r.first;
    REQUIRE(p.unsatisfiable == unsat);
    if (unsat)
      return;
    CHECK(p.offset == r.first);
    if (!r.last) {
      CHECK_FALSE(p.length);
    } else {
      u128 n = u128{*r.last} - r.first + 1;
      if (n > u64_max) {
        CHECK_FALSE(p.length); // bytes=0-(2^64-1): to the end
      } else {
        REQUIRE(p.length);
        CHECK(u128{*p.length} == n);
      }
    }
  }
  // Every satisfiable plan: a non-empty range inside uint64, and inside the
  // stream when it is final (a suffix: inside the bytes there are).
  if (p.length) {
    CHECK(*p.length >= 1);
    CHECK(u128{p.offset} + *p.length - 1 <= u64_max);
    if (final || r.form == byte_range::kind::suffix)
      CHECK(u128{p.offset} + *p.length <= L);
  }
  // Its Content-Range names exactly the bytes sent.
  std::optional<std::uint64_t> total;
  if (final)
    total = size;
  auto want = "bytes " + std::to_string(p.offset) + "-"
              + (p.length ? to_dec(u128{p.offset} + *p.length - 1) : "*") + "/"
              + (total ? std::to_string(*total) : "*");
  CHECK(content_range(p.offset, p.length, total) == want);
}

} // namespace

TEST_SUITE("streamerd") {

// -- stream names -------------------------------------------------------------

TEST_CASE("stream names are short safe tokens") {
  CHECK(valid_stream_name("a"));
  CHECK(valid_stream_name("Demo-1.2_x"));
  CHECK(valid_stream_name("0"));
  CHECK(valid_stream_name("-"));
  CHECK(valid_stream_name("_"));
  CHECK(valid_stream_name("a."));
  CHECK(valid_stream_name("a..b")); // a name, not a path
  CHECK_FALSE(valid_stream_name(""));
  CHECK_FALSE(valid_stream_name("."));
  CHECK_FALSE(valid_stream_name(".."));
  CHECK_FALSE(valid_stream_name(".hidden"));
  CHECK_FALSE(valid_stream_name("a/b"));
  CHECK_FALSE(valid_stream_name("../a"));
  CHECK_FALSE(valid_stream_name("bad%20name"));
  CHECK_FALSE(valid_stream_name("sp ace"));
  CHECK_FALSE(valid_stream_name(std::string("a\0b", 3)));
}

TEST_CASE("stream names: 64 characters at most") {
  static_assert(max_stream_name_length == 64);
  CHECK(valid_stream_name(std::string(63, 'x')));
  CHECK(valid_stream_name(std::string(64, 'x')));
  CHECK(valid_stream_name("a" + std::string(63, '.')));
  CHECK_FALSE(valid_stream_name(std::string(65, 'x')));
  CHECK_FALSE(valid_stream_name(std::string(1000, 'x')));
  CHECK_FALSE(valid_stream_name("." + std::string(63, 'x')));
}

TEST_CASE("stream names: every byte outside A-Z a-z 0-9 . _ - is refused") {
  int allowed = 0;
  for (int i = 0; i < 256; ++i) {
    auto c = static_cast<char>(i);
    CAPTURE(i);
    bool ok = name_byte(static_cast<unsigned char>(i));
    allowed += ok;
    // Alone, first, in the middle and last.
    CHECK(valid_stream_name(std::string(1, c)) == (ok && c != '.'));
    CHECK(valid_stream_name(std::string(1, c) + "a") == (ok && c != '.'));
    CHECK(valid_stream_name("a" + std::string(1, c) + "b") == ok);
    CHECK(valid_stream_name("ab" + std::string(1, c)) == ok);
    // Over the limit, it is refused whatever the byte.
    CHECK_FALSE(valid_stream_name(std::string(64, 'a') + c));
  }
  CHECK(allowed == 26 + 26 + 10 + 3);
}

// -- Range: parsing -----------------------------------------------------------

TEST_CASE("Range: no header, or only whitespace") {
  CHECK(parsed("") == range_parse::none);
  CHECK(parsed(" ") == range_parse::none);
  CHECK(parsed(" \t \t") == range_parse::none);
}

TEST_CASE("Range: the three forms of a byte range") {
  byte_range r;
  REQUIRE(parsed("bytes=100-199", r) == range_parse::ok);
  CHECK(r.form == byte_range::kind::from);
  CHECK(r.first == 100);
  CHECK(r.last == 199u);
  REQUIRE(parsed("bytes=5-", r) == range_parse::ok);
  CHECK(r.form == byte_range::kind::from);
  CHECK(r.first == 5);
  CHECK_FALSE(r.last);
  REQUIRE(parsed("bytes=-42", r) == range_parse::ok);
  CHECK(r.form == byte_range::kind::suffix);
  CHECK(r.suffix == 42);
  REQUIRE(parsed("bytes=-0", r) == range_parse::ok); // valid, unsatisfiable
  CHECK(r.form == byte_range::kind::suffix);
  CHECK(r.suffix == 0);
  REQUIRE(parsed("bytes=0-0", r) == range_parse::ok); // the first byte
  CHECK(r.first == 0);
  CHECK(r.last == 0u);
  REQUIRE(parsed("bytes=7-7", r) == range_parse::ok);
  CHECK(r.first == 7);
  CHECK(r.last == 7u);
  // Leading zeros are digits like any other, however many.
  REQUIRE(parsed("bytes=00-007", r) == range_parse::ok);
  CHECK(r.first == 0);
  CHECK(r.last == 7u);
  REQUIRE(parsed("bytes=" + std::string(100, '0') + "1-", r)
          == range_parse::ok);
  CHECK(r.first == 1);
}

TEST_CASE("Range: the unit is case-insensitive") {
  byte_range r;
  for (auto unit : {"bytes", "Bytes", "BYTES", "bYtEs"}) {
    CAPTURE(unit);
    REQUIRE(parsed(std::string{unit} + "=1-2", r) == range_parse::ok);
    CHECK(r.first == 1);
    CHECK(r.last == 2u);
    REQUIRE(parsed(std::string{unit} + "=-3", r) == range_parse::ok);
    CHECK(r.suffix == 3);
  }
}

TEST_CASE("Range: whitespace (OWS) around the spec, not inside it") {
  byte_range r;
  REQUIRE(parsed(" bytes=1-2 ", r) == range_parse::ok);
  CHECK(r.first == 1);
  REQUIRE(parsed("bytes= 1-2", r) == range_parse::ok);
  CHECK(r.last == 2u);
  REQUIRE(parsed("bytes=\t-5\t", r) == range_parse::ok);
  CHECK(r.suffix == 5);
  REQUIRE(parsed("\tbytes=  3-  ", r) == range_parse::ok);
  CHECK(r.first == 3);
  CHECK_FALSE(r.last);
  CHECK(parsed("bytes=1 -2") == range_parse::malformed);
  CHECK(parsed("bytes=1- 2") == range_parse::malformed);
  CHECK(parsed("bytes=- 2") == range_parse::malformed);
  CHECK(parsed("bytes=1 2-3") == range_parse::malformed);
  CHECK(parsed("bytes=1-2 3") == range_parse::malformed);
  CHECK(parsed("bytes=1\n-2") == range_parse::malformed);
  CHECK(parsed("bytes=\r1-2") == range_parse::malformed); // not OWS
}

TEST_CASE("Range: other units are ignored (200 with the whole body)") {
  CHECK(parsed("items=0-5") == range_parse::ignored);
  CHECK(parsed("none") == range_parse::ignored);
  CHECK(parsed("bytes") == range_parse::ignored); // a bare token
  CHECK(parsed("byte=0-5") == range_parse::ignored);
  CHECK(parsed("bytesx=0-5") == range_parse::ignored);
  CHECK(parsed("bytes =0-5") == range_parse::ignored); // not "bytes="
  CHECK(parsed("bytes 0-5") == range_parse::ignored);
  CHECK(parsed("=0-5") == range_parse::ignored);
  CHECK(parsed("0-5") == range_parse::ignored);
  CHECK(parsed("x-bytes=0-5") == range_parse::ignored);
  CHECK(parsed("\xc3\xa9=1-2") == range_parse::ignored);
}

TEST_CASE("Range: bytes= with a bad spec is malformed (416)") {
  for (std::string bad : {
         "bytes=",
         "bytes= ",
         "bytes=abc",
         "bytes=9-3",
         "bytes=1-0",
         "bytes=-",
         "bytes=--1",
         "bytes=1--",
         "bytes=1-2-3",
         "bytes=+1-2",
         "bytes=1-+2",
         "bytes=-+2",
         "bytes=--2",
         "bytes=0x10-",
         "bytes=1.5-2",
         "bytes=1-2;x",
         "bytes=1-2x",
         "bytes=1",
         "bytes==1-2",
         "bytes=\xd9\xa1-2", // ARABIC-INDIC DIGIT ONE is not a DIGIT
         "bytes=,",
         "bytes= , ,",
         "bytes=1-2,abc",
         "bytes=abc,1-2",
         "bytes=1-2,9-3",
       }) {
    CAPTURE(bad);
    CHECK(parsed(bad) == range_parse::malformed);
  }
  CHECK(parsed(std::string("bytes=\0-1", 9)) == range_parse::malformed);
  CHECK(parsed(std::string("bytes=1-\0", 9)) == range_parse::malformed);
  CHECK(parsed(std::string("bytes=1-2\0", 10)) == range_parse::malformed);
}

TEST_CASE("Range: numbers up to 2^64-1: above is malformed, never wrapped") {
  byte_range r;
  REQUIRE(parsed("bytes=18446744073709551615-", r) == range_parse::ok);
  CHECK(r.first == u64_max);
  REQUIRE(parsed("bytes=0-18446744073709551615", r) == range_parse::ok);
  CHECK(r.last == u64_max);
  REQUIRE(parsed("bytes=-18446744073709551615", r) == range_parse::ok);
  CHECK(r.suffix == u64_max);
  REQUIRE(parsed("bytes=18446744073709551615-18446744073709551615", r)
          == range_parse::ok);
  CHECK(r.first == u64_max);
  CHECK(r.last == u64_max);
  REQUIRE(parsed("bytes=000018446744073709551615-", r) == range_parse::ok);
  CHECK(r.first == u64_max);
  // 2^64 and beyond: one more than the largest, and values that would wrap
  // to small numbers (2^64 + 5, 10 * 2^64).
  for (std::string bad : {
         "bytes=18446744073709551616-",
         "bytes=0-18446744073709551616",
         "bytes=-18446744073709551616",
         "bytes=18446744073709551621-",
         "bytes=184467440737095516150-",
         "bytes=99999999999999999999-",
         "bytes=-99999999999999999999999999999999999999999",
       }) {
    CAPTURE(bad);
    CHECK(parsed(bad) == range_parse::malformed);
  }
}

TEST_CASE("Range: more than one range is multiple (200 with the whole body)") {
  for (std::string several : {
         "bytes=1-2,5-6",
         "bytes=0-1,",
         "bytes=,0-1",
         "bytes=0-1 , 5-6",
         "bytes=0-1,\t-5",
         "bytes=0-,0-",
         "bytes=-1,-1",
         "BYTES=1-2,3-4",
         "bytes=0-0,,,",
       }) {
    CAPTURE(several);
    CHECK(parsed(several) == range_parse::multiple);
  }
}

TEST_CASE("Range: parsing round-trips every boundary value") {
  for (auto first : boundaries(u64_max - 1)) {
    for (auto last : boundaries(u64_max - 1)) {
      CAPTURE(first);
      CAPTURE(last);
      byte_range r;
      auto text = "bytes=" + std::to_string(first) + "-"
                  + std::to_string(last);
      if (last < first) {
        CHECK(parsed(text, r) == range_parse::malformed);
        continue;
      }
      REQUIRE(parsed(text, r) == range_parse::ok);
      CHECK(r.form == byte_range::kind::from);
      CHECK(r.first == first);
      CHECK(r.last == last);
    }
    byte_range r;
    REQUIRE(parsed("bytes=" + std::to_string(first) + "-", r)
            == range_parse::ok);
    CHECK(r.first == first);
    CHECK_FALSE(r.last);
    REQUIRE(parsed("bytes=-" + std::to_string(first), r) == range_parse::ok);
    CHECK(r.form == byte_range::kind::suffix);
    CHECK(r.suffix == first);
  }
}

// -- Range: planning ----------------------------------------------------------

TEST_CASE("a range on an ended stream is clipped or unsatisfiable") {
  byte_range r;
  REQUIRE(parse_range("bytes=100-199", r) == range_parse::ok);
  auto p = plan_range(r, 150, true);
  CHECK_FALSE(p.unsatisfiable);
  CHECK(p.offset == 100);
  CHECK(p.length == 50u);
  REQUIRE(parse_range("bytes=149-", r) == range_parse::ok);
  p = plan_range(r, 150, true);
  CHECK(p.offset == 149);
  CHECK(p.length == 1u);
  REQUIRE(parse_range("bytes=150-", r) == range_parse::ok);
  CHECK(plan_range(r, 150, true).unsatisfiable); // starts at the end
  REQUIRE(parse_range("bytes=0-", r) == range_parse::ok);
  CHECK(plan_range(r, 0, true).unsatisfiable); // an empty stream
  REQUIRE(parse_range("bytes=-10", r) == range_parse::ok);
  p = plan_range(r, 150, true);
  CHECK(p.offset == 140);
  CHECK(p.length == 10u);
  REQUIRE(parse_range("bytes=-1000", r) == range_parse::ok);
  p = plan_range(r, 150, true);
  CHECK(p.offset == 0);
  CHECK(p.length == 150u);
  CHECK(plan_range(r, 0, true).unsatisfiable); // nothing to take
  // bytes=-0 is valid syntax but selects nothing: 416 with bytes */LEN.
  REQUIRE(parse_range("bytes=-0", r) == range_parse::ok);
  CHECK(plan_range(r, 150, true).unsatisfiable);
  CHECK(unsatisfied_range(150) == "bytes */150");
}

TEST_CASE("Range: the examples of RFC 9110 14.1.2 on 10000 bytes") {
  struct example {
    const char* value;
    std::uint64_t offset;
    std::uint64_t length;
    const char* content_range;
  };
  for (auto& x : {
         example{"bytes=0-499", 0, 500, "bytes 0-499/10000"},
         example{"bytes=500-999", 500, 500, "bytes 500-999/10000"},
         example{"bytes=-500", 9500, 500, "bytes 9500-9999/10000"},
         example{"bytes=9500-", 9500, 500, "bytes 9500-9999/10000"},
         example{"bytes=0-0", 0, 1, "bytes 0-0/10000"},
         example{"bytes=-1", 9999, 1, "bytes 9999-9999/10000"},
         example{"bytes=9999-9999", 9999, 1, "bytes 9999-9999/10000"},
         example{"bytes=0-999999", 0, 10000, "bytes 0-9999/10000"},
       }) {
    CAPTURE(x.value);
    byte_range r;
    REQUIRE(parse_range(x.value, r) == range_parse::ok);
    auto p = plan_range(r, 10000, true);
    REQUIRE_FALSE(p.unsatisfiable);
    CHECK(p.offset == x.offset);
    CHECK(p.length == x.length);
    CHECK(content_range(p.offset, p.length, 10000) == x.content_range);
  }
}

TEST_CASE("a range on a live stream waits for bytes past its end") {
  byte_range r;
  REQUIRE(parse_range("bytes=1000-", r) == range_parse::ok);
  auto p = plan_range(r, 10, false);
  CHECK_FALSE(p.unsatisfiable); // the bytes may still come
  CHECK(p.offset == 1000);
  CHECK_FALSE(p.length); // to the end, whenever that is
  REQUIRE(parse_range("bytes=1000-1999", r) == range_parse::ok);
  p = plan_range(r, 10, false);
  CHECK(p.length == 1000u);
  // The whole uint64 range has 2^64 bytes: not a uint64, so unbounded.
  REQUIRE(parse_range("bytes=0-18446744073709551615", r) == range_parse::ok);
  p = plan_range(r, 10, false);
  CHECK(p.offset == 0);
  CHECK_FALSE(p.length);
  REQUIRE(parse_range("bytes=1-18446744073709551615", r) == range_parse::ok);
  p = plan_range(r, 10, false);
  CHECK(p.length == u64_max);
  CHECK(content_range(p.offset, p.length, std::nullopt)
        == "bytes 1-18446744073709551615/*");
  // A suffix is planned on the bytes there are now (callers wait for the
  // end before they plan one).
  REQUIRE(parse_range("bytes=-5", r) == range_parse::ok);
  p = plan_range(r, 10, false);
  CHECK(p.offset == 5);
  CHECK(p.length == 5u);
  CHECK(plan_range(r, 0, false).unsatisfiable);
}

TEST_CASE("a from range with last < first is unsatisfiable, final or not") {
  // parse_range never makes one; plan_range is total anyway.
  CHECK(plan_range(from(5, 4), 100, true).unsatisfiable);
  CHECK(plan_range(from(5, 4), 100, false).unsatisfiable);
  CHECK(plan_range(from(u64_max, 0), u64_max, false).unsatisfiable);
}

TEST_CASE("Range: boundary sweep of plan_range, no overflow anywhere") {
  int plans = 0;
  for (auto size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2},
                    two_63, u64_max}) {
    auto xs = boundaries(size);
    for (bool final : {true, false}) {
      for (auto first : xs) {
        check_plan(from(first), size, final);
        check_plan(suffix(first), size, final);
        plans += 2;
        for (auto last : xs) {
          check_plan(from(first, last), size, final);
          ++plans;
        }
      }
    }
  }
  CHECK(plans > 500);
}

TEST_CASE("Content-Range uses * for what is not known yet") {
  CHECK(content_range(100, 100, 5000) == "bytes 100-199/5000");
  CHECK(content_range(100, 100, std::nullopt) == "bytes 100-199/*");
  // A live bytes=N- (deviation from RFC 9110: no last position yet).
  CHECK(content_range(100, std::nullopt, std::nullopt) == "bytes 100-*/*");
  CHECK(content_range(100, 0, 5000) == "bytes 100-*/5000");
  CHECK(content_range(0, 1, 1) == "bytes 0-0/1");
  CHECK(unsatisfied_range(0) == "bytes */0");
  CHECK(unsatisfied_range(u64_max) == "bytes */18446744073709551615");
}

TEST_CASE("Content-Range never overflows: the last position saturates") {
  CHECK(content_range(u64_max, 1, std::nullopt)
        == "bytes 18446744073709551615-18446744073709551615/*");
  CHECK(content_range(two_63, two_63, u64_max)
        == "bytes 9223372036854775808-18446744073709551615"
           "/18446744073709551615");
  CHECK(content_range(0, u64_max, u64_max)
        == "bytes 0-18446744073709551614/18446744073709551615");
  // Not from plan_range (its ranges fit), but defined: saturated.
  CHECK(content_range(u64_max, 2, std::nullopt)
        == "bytes 18446744073709551615-18446744073709551615/*");
  CHECK(content_range(2, u64_max, std::nullopt)
        == "bytes 2-18446744073709551615/*");
}

// -- query parameters ---------------------------------------------------------

TEST_CASE("query parameters") {
  CHECK(query_param("/streams/a?wait=5", "wait") == std::string{"5"});
  CHECK(query_param("/streams/a?x=1&wait=7", "wait") == std::string{"7"});
  CHECK(query_param("/streams/a?wait=1&wait=2", "wait") == std::string{"1"});
  CHECK(query_param("/streams/a?wait", "wait") == std::string{});
  CHECK(query_param("/streams/a?wait=", "wait") == std::string{});
  CHECK(query_param("/streams/a?wait=a=b", "wait") == std::string{"a=b"});
  CHECK(query_param("/streams/a?&&wait=3&", "wait") == std::string{"3"});
  CHECK(query_param("/a?=5", "") == std::string{"5"});
  CHECK_FALSE(query_param("/streams/a", "wait"));
  CHECK_FALSE(query_param("/streams/a?", "wait"));
  CHECK_FALSE(query_param("/streams/a?", ""));
  CHECK_FALSE(query_param("/streams/a?waiting=1", "wait"));
  CHECK_FALSE(query_param("/streams/a?wai=1", "wait"));
  CHECK_FALSE(query_param("/streams/a?x=1?wait=2", "wait"));
  CHECK(query_param(std::string("/a?w\0=1", 7), std::string("w\0", 2))
        == std::string{"1"});
}

TEST_CASE("seconds: digits only, up to 2^64-1") {
  std::uint64_t n = 0;
  CHECK(parse_seconds("12", n));
  CHECK(n == 12);
  CHECK(parse_seconds("0", n));
  CHECK(n == 0);
  CHECK(parse_seconds("007", n));
  CHECK(n == 7);
  CHECK(parse_seconds("18446744073709551615", n));
  CHECK(n == u64_max);
  n = 99;
  for (std::string bad : {"", "-1", "+1", " 1", "1 ", "1s", "0x1", "1.5",
                          "18446744073709551616", "99999999999999999999",
                          "184467440737095516150"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_seconds(bad, n));
    CHECK(n == 99); // untouched
  }
  CHECK_FALSE(parse_seconds(std::string("1\0", 2), n));
}

TEST_CASE("the lag follows the slowest consumer") {
  stream_entry e;
  CHECK(e.consumers().first == 0);
  e.track(1, 500);
  e.track(2, 200);
  e.track(1, 900);
  auto [n, slowest] = e.consumers();
  CHECK(n == 2);
  CHECK(slowest == 200u);
  e.untrack(2);
  CHECK(e.consumers().second == 900u);
}

TEST_CASE("waiting for a name: called once it is added, or never after "
          "cancel") {
  registry reg;
  int called = 0;
  auto token = reg.await("x", [&] { ++called; });
  CHECK(token != 0);
  auto other = reg.await("y", [&] { called += 100; });
  reg.cancel_await(other);
  auto e = std::make_shared<stream_entry>();
  e->name = "x";
  CHECK(reg.add(e));
  CHECK(called == 1);
  CHECK_FALSE(reg.add(e)); // the name is taken
  auto y = std::make_shared<stream_entry>();
  y->name = "y";
  CHECK(reg.add(y));
  CHECK(called == 1);
  CHECK(reg.await("x", [&] { ++called; }) == 0); // exists: at once
  CHECK(called == 2);
  CHECK(reg.remove("x") == e);
  CHECK_FALSE(reg.find("x"));
}

} // TEST_SUITE
