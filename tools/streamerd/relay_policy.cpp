#include "relay_policy.hpp"

#include "byte_range.hpp"

namespace streamerd {

namespace {

std::optional<std::uint64_t> number(const std::optional<std::string>& text) {
  std::uint64_t n = 0;
  if (!text || !parse_seconds(*text, n))
    return std::nullopt;
  return n;
}

head_verdict verdict(relay_step step, std::string reason) {
  head_verdict v;
  v.step = step;
  v.reason = std::move(reason);
  return v;
}

std::string upstream_error(const upstream_head& h) {
  return h.error && !h.error->empty() ? *h.error : "no reason given";
}

} // namespace

const char* to_string(relay_step x) noexcept {
  switch (x) {
    case relay_step::body:
      return "body";
    case relay_step::end:
      return "end";
    case relay_step::fail:
      return "fail";
    case relay_step::retry:
      return "retry";
  }
  return "?";
}

bool parse_content_range(std::string_view value,
                         std::optional<std::uint64_t>& first,
                         std::optional<std::uint64_t>& total) noexcept {
  constexpr std::string_view unit = "bytes ";
  if (value.substr(0, unit.size()) != unit)
    return false;
  auto rest = value.substr(unit.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos)
    return false;
  auto range = rest.substr(0, slash);
  auto length = rest.substr(slash + 1);
  std::optional<std::uint64_t> f;
  std::optional<std::uint64_t> t;
  if (range != "*") {
    auto dash = range.find('-');
    if (dash == std::string_view::npos)
      return false;
    std::uint64_t n = 0;
    if (!parse_seconds(range.substr(0, dash), n))
      return false;
    f = n;
    auto last = range.substr(dash + 1);
    std::uint64_t l = 0;
    if (last != "*" && (!parse_seconds(last, l) || l < n))
      return false;
  }
  if (length != "*") {
    std::uint64_t n = 0;
    if (!parse_seconds(length, n))
      return false;
    t = n;
  }
  if (!f && !t)
    return false; // `bytes */*` says nothing
  first = f;
  total = t;
  return true;
}

head_verdict judge_head(const upstream_head& h, std::uint64_t asked_from,
                        std::uint64_t have) {
  auto failed_at = number(h.failed_at);
  bool failed = h.state && *h.state == "failed";
  if (failed && !failed_at)
    return verdict(relay_step::retry, "the upstream says its stream failed "
                                      "but not where (no X-Stream-Failed-At)");
  if (failed && *failed_at < have)
    return verdict(relay_step::fail,
                   "the upstream stream failed after "
                     + std::to_string(*failed_at) + " bytes, fewer than the "
                     + std::to_string(have) + " relayed: not the same stream");
  if (failed && *failed_at == have)
    return verdict(relay_step::fail, "the upstream stream failed after "
                                       + std::to_string(have)
                                       + " bytes: " + upstream_error(h));
  switch (h.status) {
    case 200:
    case 206: {
      std::uint64_t start = 0;
      std::optional<std::uint64_t> total;
      if (h.status == 206) {
        std::optional<std::uint64_t> first;
        if (!h.content_range
            || !parse_content_range(*h.content_range, first, total) || !first)
          return verdict(relay_step::retry,
                         "206 without a usable Content-Range ("
                           + h.content_range.value_or("none") + ")");
        start = *first;
        if (start != asked_from)
          return verdict(relay_step::retry,
                         "asked for bytes from " + std::to_string(asked_from)
                           + ", got a range from " + std::to_string(start));
      } else if (h.state && *h.state == "ended") {
        total = number(h.content_length);
      }
      if (start > have)
        return verdict(relay_step::retry, "the body starts past the relayed "
                                          "bytes");
      if (total && *total < have)
        return verdict(relay_step::fail,
                       "the upstream stream has " + std::to_string(*total)
                         + " bytes, fewer than the " + std::to_string(have)
                         + " relayed: not the same stream");
      head_verdict v;
      v.step = relay_step::body;
      v.skip = have - start;
      v.total = total;
      v.failed_at = failed ? failed_at : std::nullopt;
      if (failed)
        v.reason = upstream_error(h);
      return v;
    }
    case 416: {
      std::optional<std::uint64_t> first;
      std::optional<std::uint64_t> total;
      if (!h.content_range
          || !parse_content_range(*h.content_range, first, total) || !total)
        return verdict(relay_step::retry, "416 without the stream's length");
      if (*total == have)
        return verdict(relay_step::end, "the upstream stream ended at "
                                          + std::to_string(have) + " bytes");
      if (*total < have)
        return verdict(relay_step::fail,
                       "the upstream stream has " + std::to_string(*total)
                         + " bytes, fewer than the " + std::to_string(have)
                         + " relayed: not the same stream");
      return verdict(relay_step::retry,
                     "416 for bytes from " + std::to_string(asked_from)
                       + " of a stream of " + std::to_string(*total));
    }
    case 404:
      if (have == 0)
        return verdict(relay_step::retry,
                       "the upstream has no such stream (404)");
      return verdict(relay_step::fail,
                     "the upstream stream is gone (404) after "
                       + std::to_string(have) + " bytes");
    default:
      return verdict(relay_step::retry,
                     "the upstream answered " + std::to_string(h.status));
  }
}

head_verdict judge_end(bool complete, const head_verdict& accepted,
                       std::uint64_t have) {
  if (accepted.failed_at && have >= *accepted.failed_at)
    return verdict(relay_step::fail, "the upstream stream failed after "
                                       + std::to_string(*accepted.failed_at)
                                       + " bytes: " + accepted.reason);
  if (!complete)
    return verdict(relay_step::retry, "the connection broke off");
  if (accepted.failed_at)
    return verdict(relay_step::retry,
                   "a failed stream's response ended before its failure");
  if (accepted.total && have != *accepted.total)
    return verdict(relay_step::retry, "the response ended at "
                                        + std::to_string(have) + " bytes of "
                                        + std::to_string(*accepted.total));
  return verdict(relay_step::end, "the upstream stream ended: "
                                    + std::to_string(have) + " bytes");
}

std::uint64_t resume_offset(std::uint64_t have) noexcept {
  return have == 0 ? 0 : have - 1;
}

std::chrono::milliseconds backoff_delay(unsigned failures,
                                        const relay_limits& lim) noexcept {
  auto d = lim.backoff;
  for (unsigned i = 1; i < failures && d < lim.backoff_max; ++i)
    d *= 2;
  return std::min(d, lim.backoff_max);
}

bool gives_up(unsigned failures, const relay_limits& lim) noexcept {
  return failures > lim.retries;
}

std::optional<std::uint64_t> stream_bytes_in_status(std::string_view json,
                                                    std::string_view name) {
  std::string key = "{\"name\":\"";
  key += name;
  key += "\",";
  auto at = json.find(key);
  if (at == std::string_view::npos)
    return std::nullopt;
  auto end = json.find('}', at);
  constexpr std::string_view field = "\"bytes\":";
  auto b = json.find(field, at);
  if (b == std::string_view::npos || b > end)
    return std::nullopt;
  b += field.size();
  auto e = b;
  while (e < json.size() && json[e] >= '0' && json[e] <= '9')
    ++e;
  std::uint64_t n = 0;
  if (!parse_seconds(json.substr(b, e - b), n))
    return std::nullopt;
  return n;
}

} // namespace streamerd
