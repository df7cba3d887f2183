namespace Corral.Metrics;

/// <summary>
/// The status page at / on the metrics bind: one self-contained HTML file (no CDN, no build step)
/// that fetches /status.json every second and shows the workers and the live request rate.
/// </summary>
public static class StatusPage
{
    public const string Html = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>corral status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  .facts span { display: inline-block; margin-right: 1.5rem; }
  .facts b { font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; margin-top: 1rem; background: #fff; }
  th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: right; font-variant-numeric: tabular-nums; }
  th { background: #eee; } td.l, th.l { text-align: left; }
  .ready { color: #17702a; } .booting { color: #8a6d00; } .stopping, .killing { color: #a11; }
  #error { color: #a11; } svg { background: #fff; border: 1px solid #ddd; margin-top: .5rem; }
</style>
</head>
<body>
<h1>corral <span id="version"></span></h1>
<div class="facts">
  <span>master pid <b id="pid">-</b></span>
  <span>up <b id="uptime">-</b></span>
  <span>workers <b id="workers">-</b></span>
  <span>requests <b id="total">-</b></span>
  <span>rate <b id="rate">-</b> req/s</span>
</div>
<div class="facts" id="listeners"></div>
<svg id="chart" width="600" height="80" viewBox="0 0 600 80" aria-label="requests per second, last 2 minutes"><polyline id="line" fill="none" stroke="#2a62c9" stroke-width="2" points=""/></svg>
<table id="table">
  <thead><tr><th>pid</th><th class="l">state</th><th>age</th><th>boot</th><th>boot CPU</th><th>served</th><th>in flight</th><th>RSS</th><th>PSS</th><th>GC heap</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<p id="error"></p>
<script>
"use strict";
const $ = id => document.getElementById(id);
const rates = [];
let previous = null;
function mib(b) { return b > 0 ? (b / 1048576).toFixed(1) + " MiB" : "-"; }
function ms(s) { return s == null ? "-" : Math.round(s * 1000) + " ms"; }
function secs(s) {
  if (s == null) return "-";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
function render(s) {
  $("version").textContent = s.version;
  $("pid").textContent = s.pid;
  $("uptime").textContent = secs(s.uptime_seconds);
  // As `corral ctl status` says it: ready spares (--spare-workers) apart, booting spares in brackets.
  const spares = s.workers.filter(w => w.state === "spare").length;
  const bootingSpares = s.workers.filter(w => w.spare && w.state === "booting").length;
  $("workers").textContent = s.workers.filter(w => w.state === "ready").length + " ready / " + s.desired_workers + " wanted"
    + (spares + bootingSpares === 0 ? "" : " + " + spares + " spare" + (spares === 1 ? "" : "s") + (bootingSpares > 0 ? " (" + bootingSpares + " booting)" : ""));
  $("total").textContent = s.requests_total;
  const now = performance.now();
  if (previous) {
    const rate = Math.max(0, (s.requests_total - previous.total) / ((now - previous.at) / 1000));
    $("rate").textContent = rate.toFixed(1);
    rates.push(rate);
    if (rates.length > 120) rates.shift();
    const max = Math.max(1, ...rates);
    $("line").setAttribute("points", rates.map((r, i) => (i * 5) + "," + (78 - r / max * 74).toFixed(1)).join(" "));
  }
  previous = { total: s.requests_total, at: now };
  const listeners = $("listeners");
  listeners.replaceChildren(...s.listeners.map(l => {
    const span = document.createElement("span");
    span.textContent = l.name + ": " + l.queued + " waiting for accept";
    return span;
  }));
  const rows = $("rows");
  rows.replaceChildren();
  for (const w of s.workers) {
    const row = rows.insertRow();
    row.dataset.pid = w.pid;
    cell(row, w.pid);
    cell(row, w.state + (w.retiring ? " (" + (w.retire_reason || "retiring") + ")" : w.spare && w.state !== "spare" ? " (spare)" : ""), "l " + w.state);
    cell(row, secs(w.age_seconds));
    cell(row, secs(w.boot_seconds));
    cell(row, ms(w.boot_cpu_seconds));
    cell(row, w.served);
    cell(row, w.in_flight);
    cell(row, mib(w.rss_bytes));
    cell(row, mib(w.pss_bytes));
    cell(row, mib(w.gc_heap_bytes));
  }
}
async function refresh() {
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "cannot reach the master: " + e.message;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
""";
}
