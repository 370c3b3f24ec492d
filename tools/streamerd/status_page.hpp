// status_page: the HTML of `GET /`. It fetches /status.json every second and
// renders the streams: per stream a small live chart (inline SVG) of its
// rate in and out over the last minute (`rate_in`, `rate_out`), and for a
// relay its upstream, lag and reconnects; no external resources, so it works
// offline.
#pragma once

namespace streamerd {

inline constexpr const char* status_page_html = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>streamerd</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
  h1 { font-size: 1.4em; }
  table { border-collapse: collapse; min-width: 40em; }
  th, td { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child, td.text, th.text { text-align: left; }
  .live { color: #06c; } .ended { color: #080; } .failed { color: #c00; }
  #summary { margin: 1em 0; } #error { color: #c00; }
  progress { width: 8em; }
  svg.rate-chart { vertical-align: middle; background: #f7f7f7; }
  svg.rate-chart polyline { fill: none; stroke-width: 1.5; }
  svg.rate-chart .rate-in { stroke: #06c; } svg.rate-chart .rate-out { stroke: #080; }
  .rates { font-size: .85em; color: #555; white-space: nowrap; }
  .in { color: #06c; } .out { color: #080; }
  td.relay { text-align: left; font-size: .9em; }
</style>
</head>
<body>
<h1>streamerd</h1>
<div id="summary">loading&hellip;</div>
<div id="error"></div>
<table>
  <thead><tr><th>stream</th><th>state</th><th>bytes</th><th>progress</th>
  <th>readers</th><th>slowest reader lag</th><th>bytes sent</th>
  <th>rate (last minute: <span class="in">in</span>, <span class="out">out</span>)</th>
  <th class="text">relay of</th><th class="text">origin</th></tr></thead>
  <tbody id="streams"></tbody>
</table>
<p>Read a stream: <code>curl -N http://HOST/streams/NAME</code>. Metrics: <a href="/metrics">/metrics</a>.</p>
<script>
function human(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
const SVG = "http://www.w3.org/2000/svg";
// A sparkline of the rates in and out (bytes/s, one value per sample, the
// newest on the right) over `window` seconds.
function chart(ins, outs, window) {
  const w = 120, h = 28, slots = Math.max(2, window);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "rate-chart");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("data-samples", String(ins.length));
  const max = Math.max(1, ...ins, ...outs);
  for (const [xs, cls] of [[ins, "rate-in"], [outs, "rate-out"]]) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", cls);
    const vs = xs.length === 1 ? [xs[0], xs[0]] : xs.slice(-slots);
    const pts = vs.map((v, i) =>
      (w - (vs.length - 1 - i) * (w / (slots - 1))).toFixed(1) + "," +
      (h - 1 - (v / max) * (h - 2)).toFixed(1));
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
  }
  const title = document.createElementNS(SVG, "title");
  title.textContent = "last minute, max " + human(max) + "/s";
  svg.appendChild(title);
  return svg;
}
function rates(s, window) {
  const td = document.createElement("td");
  td.className = "rates";
  const ins = s.rate_in || [], outs = s.rate_out || [];
  td.appendChild(chart(ins, outs, window));
  const last = (xs) => xs.length ? xs[xs.length - 1] : 0;
  const text = document.createElement("span");
  text.textContent = " in " + human(last(ins)) + "/s, out " + human(last(outs)) + "/s";
  td.appendChild(text);
  return td;
}
function relay(s) {
  const td = document.createElement("td");
  td.className = "relay";
  if (!s.relay) return td;
  const r = s.relay;
  const a = document.createElement("a");
  a.href = r.upstream;
  a.textContent = r.upstream;
  td.appendChild(a);
  td.appendChild(document.createTextNode(
    " \u00b7 lag " + human(r.lag_bytes) + " \u00b7 " + r.reconnects +
    " reconnect(s) \u00b7 " + r.state));
  return td;
}
async function refresh() {
  try {
    const res = await fetch("/status.json", {cache: "no-store"});
    const st = await res.json();
    document.getElementById("error").textContent = "";
    document.getElementById("summary").textContent =
      st.streams.length + " stream(s), " + st.readers + " reader(s), " +
      human(st.bytes_in_total) + " in, " + human(st.bytes_out_total) + " out";
    const body = document.getElementById("streams");
    body.replaceChildren();
    for (const s of st.streams) {
      const tr = document.createElement("tr");
      tr.id = "stream-" + s.name;
      tr.appendChild(cell(s.name, "text"));
      tr.appendChild(cell(s.state, s.state));
      const bytes = cell(s.bytes + " B");
      bytes.title = human(s.bytes);
      bytes.className = "bytes";
      tr.appendChild(bytes);
      const p = document.createElement("td");
      const bar = document.createElement("progress");
      if (s.length) { bar.max = s.length; bar.value = s.bytes; }
      else if (s.state !== "live") { bar.max = 1; bar.value = 1; }
      p.appendChild(bar);
      tr.appendChild(p);
      tr.appendChild(cell(String(s.readers)));
      tr.appendChild(cell(human(s.lag_bytes)));
      tr.appendChild(cell(human(s.bytes_out)));
      tr.appendChild(rates(s, st.rate_window_seconds || 60));
      tr.appendChild(relay(s));
      tr.appendChild(cell(s.origin + (s.error ? " (" + s.error + ")" : ""), "text"));
      body.appendChild(tr);
    }
  } catch (e) {
    document.getElementById("error").textContent = "status unavailable: " + e;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)html";

} // namespace streamerd
