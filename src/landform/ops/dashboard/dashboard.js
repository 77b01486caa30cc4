// The operations page: polls /ops/sla and /ops/performance with the token
// the operator gave (kept for this tab only), and draws what it got. No
// library and no request to anywhere but this server.
"use strict";

const EVERY_MS = 2000;
const KEPT = 90; // samples per chart (3 minutes at one every 2 s)
const history = { p50: [], p99: [], rps: [], errors: [], cache: [] };
let timer = null;

const $ = (id) => document.getElementById(id);

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge " + status;
  span.textContent = status;
  return span;
}

function fill(tbody, rows, columns) {
  tbody.replaceChildren();
  for (const item of rows) {
    const tr = document.createElement("tr");
    for (const column of columns) cell(tr, column(item));
    const td = document.createElement("td");
    td.appendChild(badge(item.status));
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

function number(value) {
  return typeof value === "number" ? (Math.round(value * 100) / 100).toString() : "—";
}

function remember(series, value) {
  series.push(value);
  if (series.length > KEPT) series.shift();
}

function draw(svg, seriesList) {
  const all = seriesList.flat();
  const top = Math.max(1e-9, ...all) * 1.1;
  svg.replaceChildren();
  seriesList.forEach((series, index) => {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("class", index === 0 ? "line-a" : "line-b");
    const step = 300 / Math.max(1, KEPT - 1);
    const start = KEPT - series.length;
    line.setAttribute(
      "points",
      series.map((v, i) => `${((start + i) * step).toFixed(1)},${(100 - (v / top) * 100).toFixed(1)}`).join(" "),
    );
    svg.appendChild(line);
  });
}

function show(sla, metrics) {
  $("overall").replaceWith(Object.assign(badge(sla.overallStatus), { id: "overall" }));
  fill($("components").tBodies[0], sla.components, [
    // A component with no samples has no p99: a 0 would read as a fast one.
    (c) => c.name, (c) => (c.samples ? number(c.p99) : "—"), (c) => number(c.target), (c) => number(c.acceptable),
    (c) => number(c.critical), (c) => String(c.samples),
  ]);
  fill($("checks").tBodies[0], sla.checks, [(c) => c.name, (c) => number(c.current), (c) => number(c.target)]);
  remember(history.p50, metrics.responseTime.p50);
  remember(history.p99, metrics.responseTime.p99);
  remember(history.rps, metrics.throughput.requestsPerSecond);
  remember(history.errors, metrics.throughput.errorRate);
  remember(history.cache, metrics.cache.hitRatio);
  draw($("chart-latency"), [history.p50, history.p99]);
  draw($("chart-throughput"), [history.rps]);
  draw($("chart-errors"), [history.errors]);
  draw($("chart-cache"), [history.cache]);
  const numbers = {
    "Requests/s": metrics.throughput.requestsPerSecond,
    "Requests in window": metrics.throughput.totalRequests,
    "Success rate %": metrics.throughput.successRate,
    "CPU % (100 = a core)": metrics.resources.cpuUsage,
    "Memory MiB": metrics.resources.memoryUsage,
    "Open connections": metrics.resources.openConnections,
    "DB query p99 ms": metrics.database.queryTime,
    "DB pool %": metrics.database.connectionPoolUtilization,
    "Slow queries": metrics.database.slowQueryCount,
    "Cache hit %": metrics.cache.hitRatio,
    "Workers": metrics.workers,
  };
  const dl = $("numbers");
  dl.replaceChildren();
  for (const [name, value] of Object.entries(numbers)) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = number(value);
    dl.append(dt, dd);
  }
}

// A refused token stays refused: asking again every 2 s would only fill the
// server's log, so the page stops and asks for another.
class Refused extends Error {}

async function poll() {
  const token = sessionStorage.getItem("landform-ops-token");
  const query = `?scope=${$("scope").value}&window=${$("window").value}`;
  const headers = { Authorization: `Bearer ${token}` };
  try {
    const [sla, metrics] = await Promise.all(
      ["/ops/sla", "/ops/performance"].map(async (path) => {
        const response = await fetch(path + query, { headers });
        const body = await response.json();
        const message = body.error ? body.error.message : response.statusText;
        if (response.status === 401 || response.status === 403) throw new Refused(message);
        if (!response.ok) throw new Error(message);
        return body;
      }),
    );
    show(sla, metrics);
    // The note says why a fleet view shows one replica only.
    const note = metrics.note ? ` ${metrics.note}.` : "";
    $("status").textContent = `Updated ${new Date().toLocaleTimeString()} (${metrics.scope}, ${metrics.window}).${note}`;
  } catch (error) {
    if (error instanceof Refused) {
      stop();
      sessionStorage.removeItem("landform-ops-token");
      $("status").textContent = `The token was refused (${error.message}). Enter another to start again.`;
      return;
    }
    $("status").textContent = `Could not read the metrics: ${error.message}`;
  }
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}

function start() {
  stop();
  poll();
  timer = setInterval(poll, EVERY_MS);
}

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("landform-ops-token", $("token").value);
  start();
});
if (sessionStorage.getItem("landform-ops-token")) start();
