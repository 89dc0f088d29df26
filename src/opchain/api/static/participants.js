// opchain dashboard: NSE's participant-wise open interest (GET /participants, docs/api.md).
// On its own beside app.js: its own panel, its own fetch (the same stored API key), no shared
// state. A chart of one net index position (futures, calls or puts: long − short, contracts) by
// participant over the kept days, and a table of the latest day's nets with their daily change.
/* global uPlot */

const KEY_STORE = "opchain.apiKey"; // app.js keeps the key there
const PANEL = "panel-participants";
const MODES = {
  futures: { field: "net_index_futures", short: "Index futures" },
  calls: { field: "net_index_calls", short: "Index calls" },
  puts: { field: "net_index_puts", short: "Index puts" },
};
const COLOURS = { Client: "#2f7ed8", DII: "#8e44ad", FII: "#e67e22", Pro: "#16a085" };
const MINUS = "\u2212";
const DASH = "—";
const F0 = new Intl.NumberFormat("en-IN", { maximumFractionDigits: 0 });

const DAY = new Intl.DateTimeFormat("en-IN", { day: "numeric", month: "short", timeZone: "UTC" });
const dayLabel = (seconds) => DAY.format(new Date(seconds * 1000)); // x: a day's UTC midnight

const $ = (sel) => document.querySelector(sel);
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const count = (v) => (isNum(v) ? (v < 0 ? MINUS : "") + F0.format(Math.abs(v)) : DASH);
const signed = (v) => (isNum(v) ? (v > 0 ? "+" : v < 0 ? MINUS : "") + F0.format(Math.abs(v)) : DASH);

const view = { mode: "futures", days: [], chart: null };

function message(text) {
  const p = $(`#${PANEL} > .panel-msg`);
  if (!p) return;
  p.hidden = !text;
  p.textContent = text || "";
}

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

async function load() {
  const key = storedKey();
  let response;
  try {
    response = await fetch("participants", {
      headers: key ? { "X-API-Key": key } : {},
      cache: "no-store",
    });
  } catch {
    message("Participants: the API cannot be reached.");
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const why = body && typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`;
    message(`Participants: ${why}`);
    return;
  }
  view.days = body && Array.isArray(body.days) ? body.days : [];
  message(null); // no days kept is no failure: the facts say so
  draw();
}

function cell(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function drawTable(latest) {
  // A column per net, the day's change under each value: narrow enough for a phone.
  const table = $("#participants-table");
  table.replaceChildren();
  if (!latest) return;
  const head = document.createElement("tr");
  head.append(cell("th", "Net (chg)"));
  for (const m of Object.values(MODES)) head.append(cell("th", m.short));
  table.append(head);
  for (const row of latest.rows) {
    const tr = document.createElement("tr");
    tr.dataset.participant = row.participant;
    tr.append(cell("td", row.participant));
    for (const m of Object.values(MODES)) {
      const change = row.change ? row.change[m.field] : null;
      const td = document.createElement("td");
      td.append(
        cell("span", count(row[m.field]), { "data-field": m.field, "data-value": String(row[m.field]) }),
        document.createElement("br"),
        cell("span", signed(change), {
          class: "chg",
          "data-field": `${m.field}_change`,
          "data-value": change === null ? "" : String(change),
        }),
      );
      tr.append(td);
    }
    table.append(tr);
  }
}

function chartData(field) {
  const xs = view.days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
  const names = view.days.length ? view.days[view.days.length - 1].rows.map((r) => r.participant) : [];
  const series = names.map((name) =>
    view.days.map((d) => {
      const row = d.rows.find((r) => r.participant === name);
      return row ? row[field] : null;
    }),
  );
  return { names, data: [xs, ...series] };
}

function drawChart() {
  const node = $("#participants-chart");
  if (view.chart) {
    view.chart.destroy();
    view.chart = null;
  }
  if (typeof uPlot === "undefined" || view.days.length === 0) return;
  const { names, data } = chartData(MODES[view.mode].field);
  const styles = getComputedStyle(document.documentElement);
  const axis = {
    stroke: styles.getPropertyValue("--muted").trim() || "#888",
    grid: { stroke: styles.getPropertyValue("--grid").trim() || "#ddd", width: 1 },
  };
  const options = {
    width: Math.max(160, Math.floor(node.clientWidth)),
    height: 220,
    scales: { x: { time: true } },
    axes: [
      { ...axis, splits: () => data[0], values: (u, ticks) => ticks.map(dayLabel) },
      { ...axis, size: 84, values: (u, ticks) => ticks.map(count) },
    ],
    series: [
      { label: "Day", value: (u, v) => (v === null ? DASH : dayLabel(v)) },
      ...names.map((name) => ({
        label: name,
        stroke: COLOURS[name] || "#999",
        width: 2,
        points: { show: true },
        value: (u, v) => count(v),
      })),
    ],
  };
  view.chart = new uPlot(options, data, node);
  node.dataset.mode = view.mode; // what is drawn, for a reader (and the tests) to compare
  node.dataset.series = JSON.stringify(Object.fromEntries(names.map((n, i) => [n, data[i + 1]])));
}

function draw() {
  const latest = view.days.length ? view.days[view.days.length - 1] : null;
  const facts = $("#participants-facts");
  facts.textContent = latest ? `as on ${latest.date}` : "no days kept yet (opchain participants fetch)";
  facts.dataset.date = latest ? latest.date : "";
  try {
    drawTable(latest);
    drawChart();
  } catch (err) {
    message(`Could not draw this: ${err && err.message ? err.message : err}`);
  }
}

for (const button of document.querySelectorAll("#participants-mode button")) {
  button.addEventListener("click", () => {
    view.mode = button.dataset.mode;
    for (const b of document.querySelectorAll("#participants-mode button")) {
      b.setAttribute("aria-pressed", String(b === button));
    }
    drawChart();
  });
}
new ResizeObserver(() => {
  if (view.chart) view.chart.setSize({ width: Math.max(160, Math.floor($("#participants-chart").clientWidth)), height: 220 });
}).observe($("#participants-chart"));
$("#key-form").addEventListener("submit", () => setTimeout(load, 0)); // a new key: try again
load();
setInterval(load, 15 * 60 * 1000); // NSE publishes once a day: a page left open catches up
