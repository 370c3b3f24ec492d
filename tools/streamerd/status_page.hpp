// status_page: the HTML of `GET /`. It fetches /status.json every second and
// renders the streams; no external resources, so it works offline.
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
  th:first-child, td:first-child, td.text { text-align: left; }
  .live { color: #06c; } .ended { color: #080; } .failed { color: #c00; }
  #summary { margin: 1em 0; } #error { color: #c00; }
  progress { width: 8em; }
</style>
</head>
<body>
<h1>streamerd</h1>
<div id="summary">loading&hellip;</div>
<div id="error"></div>
<table>
  <thead><tr><th>stream</th><th>state</th><th>bytes</th><th>progress</th>
  <th>readers</th><th>slowest reader lag</th><th>bytes sent</th><th>origin</th></tr></thead>
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
