#include "http_rules.hpp"

#include <cstdio>
#include <ctime>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

#include "version.hpp"

namespace streamerd {

namespace http = boost::beast::http;

refusal refusal_for(boost::beast::error_code ec) {
  if (ec == http::error::header_limit)
    return {431, "request header fields too large"};
  if (ec == http::error::bad_version)
    return {505, "HTTP version not supported: use HTTP/1.1 or 1.0"};
  if (ec == http::error::bad_transfer_encoding)
    return {400, "bad request: conflicting or repeated Transfer-Encoding"};
  return {400, "bad request: " + ec.message()};
}

namespace {

std::string_view trim(std::string_view x) noexcept {
  while (!x.empty() && (x.front() == ' ' || x.front() == '\t'))
    x.remove_prefix(1);
  while (!x.empty() && (x.back() == ' ' || x.back() == '\t'))
    x.remove_suffix(1);
  return x;
}

} // namespace

std::optional<refusal> check_request(const http::request_header<>& req) {
  auto version = req.version();
  if (version != 10 && version != 11)
    return refusal{505, "HTTP version not supported: use HTTP/1.1 or 1.0"};
  auto hosts = req.count(http::field::host);
  if (version == 11 && hosts != 1)
    return refusal{400, hosts == 0 ? "bad request: HTTP/1.1 needs a Host"
                                   : "bad request: more than one Host"};
  if (hosts > 1)
    return refusal{400, "bad request: more than one Host"};
  auto te_fields = req.equal_range(http::field::transfer_encoding);
  for (auto i = te_fields.first; i != te_fields.second; ++i) {
    auto value = trim(i->value());
    if (!boost::beast::iequals(value, "chunked"))
      return refusal{501, "transfer coding not implemented: only chunked"};
  }
  if (!target_path(req.target()))
    return refusal{400, "bad request: the target is not a path"};
  return std::nullopt;
}

std::optional<std::string_view> target_path(std::string_view target) {
  if (target.empty())
    return std::nullopt;
  if (target.front() != '/') {
    // Absolute form (RFC 9112 3.2.2): scheme://authority/path.
    auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0)
      return std::nullopt;
    auto scheme = target.substr(0, scheme_end);
    if (!boost::beast::iequals(scheme, "http")
        && !boost::beast::iequals(scheme, "https"))
      return std::nullopt;
    auto rest = target.substr(scheme_end + 3);
    auto slash = rest.find_first_of("/?");
    if (slash == std::string_view::npos)
      return std::string_view{"/"};
    if (rest[slash] == '?')
      return std::string_view{"/"};
    target = rest.substr(slash);
  }
  return target.substr(0, target.find('?'));
}

std::string_view target_query(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return {};
  return target.substr(q + 1);
}

response_head::response_head(unsigned status) : status_(status) {
  // nop
}

response_head& response_head::set(std::string_view name, std::string value) {
  fields_.emplace_back(std::string{name}, std::move(value));
  return *this;
}

std::optional<std::string> response_head::get(std::string_view name) const {
  for (auto& [k, v] : fields_)
    if (boost::beast::iequals(k, name))
      return v;
  return std::nullopt;
}

std::string response_head::render() const {
  std::string out;
  out.reserve(256);
  out += "HTTP/1.1 ";
  out += std::to_string(status_);
  out += ' ';
  auto reason = http::obsolete_reason(static_cast<http::status>(status_));
  out.append(reason.data(), reason.size());
  out += "\r\nServer: streamerd/" STREAMERD_VERSION "\r\nDate: ";
  out += http_date();
  out += "\r\n";
  for (auto& [k, v] : fields_) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string http_date() {
  thread_local std::time_t cached_at = 0;
  thread_local std::string cached;
  auto now = std::time(nullptr);
  if (now != cached_at || cached.empty()) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    auto n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_at = now;
  }
  return cached;
}

std::string chunk_header(std::uint64_t size) {
  char buf[32];
  auto n = std::snprintf(buf, sizeof(buf), "%llx\r\n",
                         static_cast<unsigned long long>(size));
  return std::string(buf, static_cast<std::size_t>(n));
}

} // namespace streamerd
