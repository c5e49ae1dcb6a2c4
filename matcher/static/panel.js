// The recovery panel: fetch the API, fill the cards, the alerts, the table and the chart.
// Vanilla JS, no dependencies; the chart is SVG built with the DOM. Refreshes every 60 s.
"use strict";

const API = "/api/v1/ops/payments/cabinet-financial-14d/kpi-red-recovery-metrics";
const CHART_DAYS = 14;
const REFRESH_MS = 60000;
const SVG_NS = "http://www.w3.org/2000/svg";

const dash = (value) => (value === null || value === undefined ? "—" : String(value));
const signed = (value) =>
  value === null || value === undefined ? "—" : value > 0 ? `+${value}` : String(value);

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

const FAIL_REASONS = [
  "missing_identifiers",
  "no_match",
  "conflict",
  "low_confidence",
  "ambiguous",
  "name_mismatch",
  "person_changed",
];

// Today's failed attempts by reason, the most frequent first: "no_match 285 · name_mismatch 40".
function failures(today) {
  return FAIL_REASONS.map((reason) => [reason, today["failed_" + reason] || 0])
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([reason, count]) => `${reason} ${count}`)
    .join(" · ");
}

function renderCards(payload) {
  const today = payload.today || {};
  setText("current-backlog", dash(payload.current_backlog));
  setText("current-backlog-note", payload.current_backlog_is_live ? "live" : "at the last dbt build");
  setText("new-backlog-in", dash(today.new_backlog_in));
  setText("matched-out", dash(today.matched_out));
  setText("reviewed-out", dash(today.reviewed_out));
  setText("other-out", dash(today.other_out));
  setText("top-fail-reason", dash(today.top_fail_reason));
  setText("fail-reasons", failures(today) || "today");
  const net = document.getElementById("net-change");
  net.textContent = signed(today.net_change);
  net.className = "value" + (today.net_change > 0 ? " up" : today.net_change < 0 ? " down" : "");
  setText(
    "net-change-note",
    today.net_change > 0 ? "growing" : today.net_change < 0 ? "draining" : today.net_change === 0 ? "flat" : "",
  );
  const days = payload.last_7_days;
  setText("metric-date", days.length ? days[days.length - 1].metric_date : "…");
}

function renderAlerts(payload) {
  const list = document.getElementById("alerts");
  list.replaceChildren();
  const alerts = payload.today ? payload.today.alerts || [] : [];
  if (!payload.today) {
    alerts.push({ key: "no_data", level: "warning", message: "No metrics for this day yet." });
  }
  if (!alerts.length) {
    alerts.push({ key: "none", level: "ok", message: "✓ No alerts: the backlog is under control." });
  }
  for (const alert of alerts) {
    const item = document.createElement("li");
    item.className = alert.level;
    item.dataset.key = alert.key;
    item.textContent = alert.message;
    list.append(item);
  }
}

const REVIEW_QUEUE_API = "/api/v1/ops/kpi-red/review-queue";

// The backlog now by cause, each with what fixes it; a cause a reviewer settles links to
// its leads (and names the command that reviews them).
function renderWhatToDo(payload) {
  const body = document.querySelector("#what-to-do tbody");
  body.replaceChildren();
  const todo = payload.what_to_do;
  if (!todo) {
    setText("what-to-do-summary", "run dbt build to see the backlog by cause");
    return;
  }
  for (const cause of todo.backlog_by_cause) {
    const row = document.createElement("tr");
    row.dataset.cause = cause.reason_bucket;
    const name = document.createElement("td");
    if (cause.review_command) {
      const link = document.createElement("a");
      link.href = `${REVIEW_QUEUE_API}?reason=${encodeURIComponent(cause.reason_bucket)}`;
      link.textContent = cause.reason_bucket;
      link.title = cause.review_command;
      name.append(link);
    } else {
      name.textContent = cause.reason_bucket;
    }
    row.append(name);
    for (const text of [dash(cause.leads), `${cause.share_pct.toFixed(1)}%`, dash(cause.oldest_age_days), cause.fixed_by]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
  const queue = todo.review_queue;
  setText(
    "what-to-do-summary",
    `Review queue ${dash(queue.leads)} leads, oldest ${dash(queue.oldest_age_days)} days ` +
      `(kpi-red review) · oldest red lead ${dash(todo.oldest_red_age_days)} days · ` +
      `ORIGIN_MISSING persons ${dash(todo.origin_missing_persons)}` +
      (todo.origin_missing_persons ? " (kpi-red cycle repairs them)" : ""),
  );
}

function renderTable(payload) {
  const body = document.querySelector("#last-7-days tbody");
  body.replaceChildren();
  for (const day of payload.last_7_days) {
    const row = document.createElement("tr");
    row.dataset.date = day.metric_date;
    const cells = [
      day.metric_date,
      dash(day.backlog_start),
      dash(day.new_backlog_in),
      dash(day.matched_out),
      dash(day.other_out),
      dash(day.backlog_end),
      signed(day.net_change),
      dash(day.top_fail_reason),
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
}

function svg(name, attributes, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

const TICKS = 5;

// An axis [low, high] of TICKS equal integer steps (1, 2 or 5 × 10^k) that holds the values.
function niceAxis(values, fromZero) {
  const known = values.filter((value) => value !== null && value !== undefined);
  const high = Math.max(0, ...known);
  const low = fromZero || !known.length ? 0 : Math.min(...known);
  for (let power = 1; ; power *= 10) {
    for (const factor of [1, 2, 5]) {
      const step = factor * power;
      const start = Math.floor(low / step) * step;
      if (start + TICKS * step >= high && (high > start || high === 0)) return [start, start + TICKS * step];
    }
  }
}

function renderChart(days) {
  const chart = document.getElementById("chart");
  chart.replaceChildren();
  const width = 760, height = 280;
  const left = 44, right = 52, top = 16, bottom = 34;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const [, flowMax] = niceAxis(
    days.flatMap((d) => [d.new_backlog_in, (d.matched_out || 0) + (d.other_out || 0)]),
    true,
  );
  // the backlog is a line, not a bar: its axis starts near its lowest value to show the trend
  const [backlogLow, backlogHigh] = niceAxis(days.map((d) => d.backlog_end), false);
  const band = plotWidth / days.length;
  const yFlow = (value) => top + plotHeight - (value / flowMax) * plotHeight;
  const yBacklog = (value) =>
    top + plotHeight - ((value - backlogLow) / (backlogHigh - backlogLow)) * plotHeight;

  for (let tick = 0; tick <= TICKS; tick++) {
    const y = top + plotHeight - (tick / TICKS) * plotHeight;
    svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }, chart);
    svg("text", { class: "axis", x: left - 6, y: y + 4, "text-anchor": "end" }, chart).textContent =
      String((flowMax * tick) / TICKS);
    svg("text", { class: "axis backlog-axis", x: width - right + 6, y: y + 4 }, chart).textContent = String(
      backlogLow + ((backlogHigh - backlogLow) * tick) / TICKS,
    );
  }

  const points = [];
  days.forEach((day, index) => {
    const x = left + index * band;
    const barWidth = Math.max(2, band * 0.32);
    const label = svg("text", { class: "axis", x: x + band / 2, y: height - 12, "text-anchor": "middle" }, chart);
    label.textContent = day.metric_date.slice(5);
    if (day.backlog_end === null) {
      points.push(null);
      return;
    }
    const inflow = day.new_backlog_in || 0, matched = day.matched_out || 0, other = day.other_out || 0;
    const title = `${day.metric_date}: entered ${inflow}, recovered ${matched}, other ${other}, backlog ${day.backlog_end}`;
    const group = svg("g", { "data-date": day.metric_date }, chart);
    svg("title", {}, group).textContent = title;
    const x1 = x + band * 0.16;
    svg("rect", { class: "bar-in", x: x1, y: yFlow(inflow), width: barWidth, height: yFlow(0) - yFlow(inflow) }, group);
    const x2 = x1 + barWidth + 1;
    svg("rect", { class: "bar-matched", x: x2, y: yFlow(matched), width: barWidth, height: yFlow(0) - yFlow(matched) }, group);
    svg("rect", {
      class: "bar-other", x: x2, y: yFlow(matched + other), width: barWidth, height: yFlow(matched) - yFlow(matched + other),
    }, group);
    points.push([x + band / 2, yBacklog(day.backlog_end), day]);
  });

  let path = "";
  let pen = "M";
  for (const point of points) {
    if (!point) { pen = "M"; continue; }
    path += `${pen}${point[0].toFixed(1)},${point[1].toFixed(1)} `;
    pen = "L";
  }
  if (path) svg("path", { class: "backlog-line", d: path.trim() }, chart);
  for (const point of points) {
    if (!point) continue;
    const dot = svg("circle", { class: "backlog-dot", cx: point[0], cy: point[1], r: 3.5 }, chart);
    svg("title", {}, dot).textContent = `${point[2].metric_date}: backlog ${point[2].backlog_end}`;
  }
  if (!points.some(Boolean)) {
    svg("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle" }, chart).textContent =
      "no metrics in these days";
  }
}

async function refresh() {
  const status = document.getElementById("status");
  const banner = document.getElementById("error");
  try {
    const response = await fetch(`${API}?days=${CHART_DAYS}`, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
    renderCards(body);
    renderAlerts(body);
    renderTable(body);
    renderWhatToDo(body);
    renderChart(body[`last_${CHART_DAYS}_days`] || body.last_7_days);
    banner.hidden = true;
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.state = "ready";
  } catch (error) {
    banner.textContent = `Cannot load the metrics: ${error.message}`;
    banner.hidden = false;
    status.textContent = "stale";
    document.body.dataset.state = "error";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
