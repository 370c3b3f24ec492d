// libFuzzer target: Range headers (tools/streamerd/byte_range.hpp).
//
// Every input is used twice:
// 1. as the value of a Range header: parse_range must agree with a
//    reference parser written here independently (RFC 9110 14.1, numbers
//    in 128 bits), and a parsed range is planned on streams of sizes around
//    its own numbers and the uint64 boundaries, final and live, checking
//    each plan and its Content-Range against 128-bit arithmetic;
// 2. its first 25 bytes as raw values (a byte_range that parse_range would
//    never make, e.g. last < first, a size, a flag byte), planned and
//    rendered the same way.
// Any disagreement traps (FUZZ_CHECK). No CAF.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "byte_range.hpp"
#include "fuzz_check.hpp"

using namespace streamerd;

namespace {

using u128 = unsigned __int128;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

// -- the reference parser -----------------------------------------------------

struct reference {
  range_parse result = range_parse::none;
  byte_range range;
};

bool ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view strip(std::string_view x) {
  std::size_t b = 0;
  std::size_t e = x.size();
  while (b < e && ows(x[b]))
    ++b;
  while (e > b && ows(x[e - 1]))
    --e;
  return x.substr(b, e - b);
}

// 1*DIGIT, in 128 bits capped just above uint64 (no wrap).
std::optional<std::uint64_t> number(std::string_view x) {
  if (x.empty())
    return std::nullopt;
  u128 v = 0;
  for (char c : x) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > u64_max)
      return std::nullopt;
  }
  return static_cast<std::uint64_t>(v);
}

// One trimmed, non-empty range-spec; nullopt if it is not one.
std::optional<byte_range> spec(std::string_view x) {
  std::size_t dashes = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i] == '-') {
      ++dashes;
      at = i;
    }
  if (dashes != 1)
    return std::nullopt;
  auto lhs = x.substr(0, at);
  auto rhs = x.substr(at + 1);
  byte_range r;
  if (lhs.empty()) {
    auto k = number(rhs);
    if (!k)
      return std::nullopt;
    r.form = byte_range::kind::suffix;
    r.suffix = *k;
    return r;
  }
  auto f = number(lhs);
  if (!f)
    return std::nullopt;
  r.first = *f;
  if (!rhs.empty()) {
    auto l = number(rhs);
    if (!l || *l < *f)
      return std::nullopt;
    r.last = *l;
  }
  return r;
}

reference reference_parse(std::string_view value) {
  reference ref;
  value = strip(value);
  if (value.empty())
    return ref; // none
  std::string head;
  for (std::size_t i = 0; i < value.size() && i < 6; ++i)
    head += static_cast<char>(
      (value[i] >= 'A' && value[i] <= 'Z') ? value[i] + 32 : value[i]);
  if (head != "bytes=") {
    ref.result = range_parse::ignored;
    return ref;
  }
  std::vector<std::string_view> items;
  auto set = value.substr(6);
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= set.size(); ++i)
    if (i == set.size() || set[i] == ',') {
      items.push_back(strip(set.substr(begin, i - begin)));
      begin = i + 1;
    }
  std::optional<byte_range> one;
  for (auto item : items) {
    if (item.empty())
      continue;
    auto r = spec(item);
    if (!r) {
      ref.result = range_parse::malformed;
      return ref;
    }
    one = r;
  }
  if (!one)
    ref.result = range_parse::malformed;
  else if (items.size() > 1)
    ref.result = range_parse::multiple;
  else {
    ref.result = range_parse::ok;
    ref.range = *one;
  }
  return ref;
}

// -- checking plans and Content-Range -----------------------------------------

std::string dec(u128 x) {
  FUZZ_CHECK(x <= u64_max);
  return std::to_string(static_cast<std::uint64_t>(x));
}

void check_content_range(std::uint64_t offset,
                         std::optional<std::uint64_t> length,
                         std::optional<std::uint64_t> total) {
  std::string want = "bytes " + std::to_string(offset) + "-";
  if (length && *length > 0) {
    u128 last = u128{offset} + *length - 1;
    want += dec(last > u64_max ? u128{u64_max} : last);
  } else {
    want += "*";
  }
  want += "/";
  want += total ? std::to_string(*total) : std::string{"*"};
  FUZZ_CHECK(content_range(offset, length, total) == want);
}

void check_plan(const byte_range& r, std::uint64_t size, bool final) {
  auto p = plan_range(r, size, final);
  u128 L = size;
  bool bad_from = r.form == byte_range::kind::from && r.last
                  && *r.last < r.first;
  if (r.form == byte_range::kind::suffix) {
    // Final or not: planned on the bytes there are.
    bool unsat = r.suffix == 0 || size == 0;
    FUZZ_CHECK(p.unsatisfiable == unsat);
    if (unsat)
      return;
    FUZZ_CHECK(p.length.has_value());
    u128 n = r.suffix < L ? u128{r.suffix} : L;
    FUZZ_CHECK(u128{*p.length} == n);
    FUZZ_CHECK(u128{p.offset} + *p.length == L);
  } else if (final) {
    bool unsat = bad_from || r.first >= size;
    FUZZ_CHECK(p.unsatisfiable == unsat);
    if (unsat)
      return;
    FUZZ_CHECK(p.offset == r.first);
    FUZZ_CHECK(p.length.has_value());
    u128 last = L - 1;
    if (r.last && *r.last < last)
      last = *r.last;
    FUZZ_CHECK(u128{*p.length} == last - r.first + 1);
    FUZZ_CHECK(u128{p.offset} + *p.length <= L);
  } else {
    FUZZ_CHECK(p.unsatisfiable == bad_from);
    if (bad_from)
      return;
    FUZZ_CHECK(p.offset == r.first);
    if (!r.last) {
      FUZZ_CHECK(!p.length);
    } else {
      u128 n = u128{*r.last} - r.first + 1;
      FUZZ_CHECK(p.length.has_value() == (n <= u64_max));
      if (p.length)
        FUZZ_CHECK(u128{*p.length} == n);
    }
  }
  if (p.length) {
    FUZZ_CHECK(*p.length >= 1);
    FUZZ_CHECK(u128{p.offset} + *p.length - 1 <= u64_max);
  }
  std::optional<std::uint64_t> total;
  if (final)
    total = size;
  check_content_range(p.offset, p.length, total);
}

// Sizes around the numbers of `r` and the uint64 boundaries.
std::vector<std::uint64_t> sizes_for(const byte_range& r) {
  std::vector<std::uint64_t> out{0, 1, 2, 100, std::uint64_t{1} << 63,
                                 u64_max - 1, u64_max};
  auto around = [&out](std::uint64_t x) {
    out.push_back(x);
    if (x > 0)
      out.push_back(x - 1);
    if (x < u64_max)
      out.push_back(x + 1);
  };
  around(r.first);
  around(r.suffix);
  if (r.last)
    around(*r.last);
  return out;
}

void plan_everywhere(const byte_range& r) {
  for (auto size : sizes_for(r))
    for (bool final : {true, false})
      check_plan(r, size, final);
}

std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t x = 0;
  std::memcpy(&x, p, sizeof(x));
  return x;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  // 1. The input as a Range header value.
  std::string_view value{reinterpret_cast<const char*>(data), size};
  byte_range r;
  r.first = 7;
  r.suffix = 9;
  auto before = r;
  auto got = parse_range(value, r);
  auto want = reference_parse(value);
  FUZZ_CHECK(got == want.result);
  if (got == range_parse::ok) {
    FUZZ_CHECK(r.form == want.range.form);
    if (r.form == byte_range::kind::from) {
      FUZZ_CHECK(r.first == want.range.first);
      FUZZ_CHECK(r.last == want.range.last);
      FUZZ_CHECK(!r.last || *r.last >= r.first);
    } else {
      FUZZ_CHECK(r.suffix == want.range.suffix);
    }
    // The canonical spelling parses to the same range.
    std::string canon = "bytes=";
    if (r.form == byte_range::kind::suffix)
      canon += "-" + std::to_string(r.suffix);
    else
      canon += std::to_string(r.first) + "-"
               + (r.last ? std::to_string(*r.last) : std::string{});
    byte_range again;
    FUZZ_CHECK(parse_range(canon, again) == range_parse::ok);
    FUZZ_CHECK(again.form == r.form);
    FUZZ_CHECK(again.form == byte_range::kind::suffix
                 ? again.suffix == r.suffix
                 : again.first == r.first && again.last == r.last);
    plan_everywhere(r);
  } else {
    // Untouched unless ok.
    FUZZ_CHECK(r.form == before.form && r.first == before.first
               && r.last == before.last && r.suffix == before.suffix);
  }
  // 2. The first 25 bytes as raw values.
  if (size >= 25) {
    byte_range raw;
    raw.form = (data[0] & 1) ? byte_range::kind::suffix
                             : byte_range::kind::from;
    raw.first = load_u64(data + 1);
    if (data[0] & 2)
      raw.last = load_u64(data + 9);
    raw.suffix = load_u64(data + 9);
    auto sz = load_u64(data + 17);
    check_plan(raw, sz, (data[0] & 4) != 0);
    plan_everywhere(raw);
    std::optional<std::uint64_t> length;
    if (data[0] & 8)
      length = load_u64(data + 9);
    std::optional<std::uint64_t> total;
    if (data[0] & 16)
      total = sz;
    check_content_range(raw.first, length, total);
    FUZZ_CHECK(unsatisfied_range(sz) == "bytes */" + std::to_string(sz));
  }
  return 0;
}
