#include "routes.hpp"

#include <spdlog/spdlog.h>

#include "answer.hpp"
#include "byte_range.hpp"
#include "download.hpp"
#include "http_rules.hpp"
#include "metrics.hpp"
#include "status_page.hpp"
#include "upload.hpp"

namespace streamerd {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view streams_prefix = "/streams/";

std::shared_ptr<exchange> not_allowed(connection& conn, bool keep_alive,
                                      const char* allow) {
  auto res = plain_answer(405, "method not allowed\n");
  res.head.set("Allow", allow);
  return make_answer(conn, std::move(res), keep_alive, false);
}

std::shared_ptr<exchange> remove_stream(connection& conn,
                                        const std::string& name,
                                        bool keep_alive) {
  auto& reg = conn.context().reg;
  auto e = reg.remove(name);
  if (!e)
    return make_answer(conn, plain_answer(404, "no stream " + name + "\n"),
                       keep_alive, false);
  auto st = e->stream.stats();
  reg.retire(st.size, e->bytes_out.load());
  spdlog::info("{}: stream {} deleted ({} bytes)", conn.peer(), name,
               st.size);
  auto res = plain_answer(204, {});
  return make_answer(conn, std::move(res), keep_alive, false);
}

} // namespace

std::shared_ptr<exchange> route(connection& conn,
                                connection::header_parser& parser) {
  auto& req = parser.get();
  auto method = req.method();
  std::string target{req.target()};
  auto path = std::string{*target_path(target)};
  // A body we do not read makes the rest of the connection unreadable.
  bool has_body = parser.chunked()
                  || (parser.content_length() && *parser.content_length() > 0);
  bool upload = method == http::verb::put || method == http::verb::post;
  bool keep_alive = parser.keep_alive() && (upload || !has_body);
  bool get = method == http::verb::get;
  bool head = method == http::verb::head;
  if (path.compare(0, streams_prefix.size(), streams_prefix) == 0) {
    auto name = path.substr(streams_prefix.size());
    if (!valid_stream_name(name))
      return make_answer(conn,
                         plain_answer(400, "invalid stream name: use 1-64 "
                                           "characters of A-Z a-z 0-9 . _ - "
                                           "(not starting with a dot)\n"),
                         keep_alive && !upload, head);
    if (get || head) {
      download_request dr;
      dr.name = name;
      dr.head = head;
      dr.http10 = req.version() == 10;
      dr.keep_alive = keep_alive;
      dr.range = std::string{req[http::field::range]};
      dr.if_range = req.count(http::field::if_range) > 0;
      dr.wait = query_param(target, "wait");
      return make_download(conn, std::move(dr));
    }
    if (upload)
      return make_upload(conn, name, parser);
    if (method == http::verb::delete_)
      return remove_stream(conn, name, keep_alive);
    return not_allowed(conn, keep_alive, "GET, HEAD, PUT, POST, DELETE");
  }
  if (path == "/" || path == "/index.html") {
    if (!get && !head)
      return not_allowed(conn, keep_alive && !upload, "GET, HEAD");
    full_response res;
    res.head.set("Content-Type", "text/html; charset=utf-8");
    res.head.set("Cache-Control", "no-store");
    res.body = status_page_html;
    return make_answer(conn, std::move(res), keep_alive, head);
  }
  if (path == "/metrics" || path == "/status.json") {
    if (!get && !head)
      return not_allowed(conn, keep_alive && !upload, "GET, HEAD");
    full_response res;
    if (path == "/metrics") {
      res.head.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      res.body = render_metrics(conn.context());
    } else {
      res.head.set("Content-Type", "application/json");
      res.body = render_status_json(conn.context());
    }
    res.head.set("Cache-Control", "no-store");
    return make_answer(conn, std::move(res), keep_alive, head);
  }
  return make_answer(conn, plain_answer(404, "not found\n"),
                     keep_alive && !upload, head);
}

} // namespace streamerd
