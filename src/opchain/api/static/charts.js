// The Charts view: /charts/{index}/... of docs/api.md ("Charts") for a recorded day, or for
// today as it is recorded (redrawn every 15 s while today is picked). Each chart keeps the API
// path it drew in data-path and its last ts in data-ts; its facts line shows the last values.
/* global uPlot */
import {
  $, api, ApiError, axis, Chart, cssVar, DASH, el, enc, facts, F0, hhmm, isNum,
  istDate, istMinutes, istTime, lakhs, lineSeries, minuteAxis, num, panelMessage, rupee, state, strike,
} from "./app.js";

const PALETTE = ["#2f7dd1", "#d1572f", "#2f9e5a", "#8a4fd1", "#c99a1a", "#1aa3b5"];
const LIVE_MS = 15000;
const STRATEGY = /^\d+(\.\d+)?(-\d+(\.\d+)?)?$/;
const view = { index: null, day: null, contracts: null, gen: 0, atm: null, draws: 0 };

const dayPick = $("#charts-day");
const expiryPick = $("#charts-expiry");
const strategiesIn = $("#charts-strategies");
const strikesIn = $("#charts-strikes");
const fromIn = $("#charts-from");
const toIn = $("#charts-to");
const windowIn = $("#charts-window");

// Today: the day of the newest live snapshot (the collector's clock), else the browser's.
const todayIst = () => istDate(state.latestTs) || istDate(new Date().toISOString());
const ts0 = (d) => (Array.isArray(d.ts) ? d.ts : []);
const xsOf = (list) => list.map((t) => istMinutes(t));
const col = (a, n) => Array.from({ length: n }, (_, i) => (Array.isArray(a) && isNum(a[i]) ? a[i] : null));
const lastNum = (a) => {
  for (let i = (a || []).length - 1; i >= 0; i -= 1) if (isNum(a[i])) return a[i];
  return null;
};
const pts = (v) => num(v); // vol points, a real minus sign
const r4 = (v) => (isNum(v) ? (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(4) : DASH);

/** A chart whose series change with the request: rebuilt when their number changes. */
class Lines {
  constructor(id, yValues, opts = {}) {
    this.node = $(`#${id}`);
    this.series = [];
    this.chart = new Chart(this.node, () => ({
      scales: { x: { time: false, ...(opts.x || {}) }, ...(opts.scales || {}) },
      axes: [
        axis(opts.xValues || minuteAxis, opts.xAxis || {}),
        axis((u, s) => s.map(yValues), { size: 60 }),
        ...(opts.axes || []),
      ],
      series: [{ label: opts.xLabel || "IST", value: opts.xValue || ((u, v) => hhmm(v)) }, ...this.series],
      cursor: { drag: { x: false, y: false } },
    }), [[]]);
  }

  draw(series, data) {
    const rebuild = series.length !== this.series.length
      || series.some((s, i) => s.label !== this.series[i].label);
    this.series = series;
    if (rebuild || !this.chart.u) {
      this.chart.data = data;
      this.chart.build();
    } else {
      this.chart.set(data);
    }
  }

  mark(path, ts) {
    Object.assign(this.node.dataset, { path, ts: ts || "" });
  }
}

const money = (u, v) => rupee(v);
const straddles = new Lines("charts-straddle-chart", (v) => F0.format(v));
const halfStep = (u, min, max) => {
  const xs = u.data[0] || [];
  const step = xs.length > 1 ? (xs[xs.length - 1] - xs[0]) / (xs.length - 1) : 50;
  return [min - step * 0.7, max + step * 0.7];
};
const padded = (u, min, max) => {
  const pad = (max - min) * 0.1 || Math.abs(max) * 0.01 || 1;
  return [min - pad, max + pad];
};
const oiWindow = new Lines("charts-oi-chart", (v) => lakhs(v), {
  x: { range: halfStep },
  xLabel: "Strike", xValue: (u, v) => strike(v), xValues: (u, s) => s.map((v) => F0.format(v)),
});
const oiChange = new Lines("charts-oichange-chart", (v) => lakhs(v, true));
const pcrDay = new Lines("charts-pcr-chart", (v) => v.toFixed(2), {
  scales: { mp: { range: padded } },
  axes: [axis((u, s) => s.map((v) => F0.format(v)), { scale: "mp", side: 1, size: 60, grid: { show: false } })],
});
let dayLabels = [];
const pcrDays = new Lines("charts-pcrdays-chart", (v) => v.toFixed(2), {
  xLabel: "Day", xValue: (u, v) => dayLabels[v] || DASH,
  xValues: (u, s) => s.map((v) => (Number.isInteger(v) ? (dayLabels[v] || "").slice(5) : "")),
  xAxis: { incrs: [1, 2, 5, 10] },
  scales: { mp: { range: padded } },
  axes: [axis((u, s) => s.map((v) => F0.format(v)), { scale: "mp", side: 1, size: 60, grid: { show: false } })],
});
const vixLevels = new Lines("charts-vix-chart", (v) => v.toFixed(1));
const vixCorr = new Lines("charts-corr-chart", (v) => v.toFixed(1), { scales: { y: { range: [-1, 1] } } });

function say(panel, text) {
  panelMessage(panel, text);
}

async function fetchFor(panel, path, what) {
  const gen = view.gen;
  try {
    const body = await api(path);
    if (gen !== view.gen) return null;
    say(panel, null);
    return body;
  } catch (err) {
    if (gen === view.gen) say(panel, `${what}: ${err instanceof ApiError ? err.message : String(err)}`);
    return null;
  }
}

function parseList(text, pattern) {
  return (text || "").split(/[\s,]+/).map((s) => s.trim()).filter((s) => pattern.test(s));
}

function currentExpiry() {
  const list = view.contracts ? view.contracts.expiries : [];
  return list.find((e) => e.expiry === expiryPick.value) || list[0] || null;
}

// ---- pickers

async function loadContracts() {
  const q = view.day ? `?date=${enc(view.day)}` : "";
  const c = await fetchFor("charts-view", `charts/${enc(view.index)}/contracts${q}`, "Charts");
  if (!c) return false;
  view.contracts = c;
  view.day = c.date;
  dayPick.replaceChildren(...[...c.days].reverse().map((d) =>
    el("option", { value: d, text: d, selected: d === c.date })));
  labelDays();
  const keep = expiryPick.value;
  expiryPick.replaceChildren(...c.expiries.map((e) =>
    el("option", { value: e.expiry, text: `${e.expiry} (${e.bucket.replace("_", " ")})` })));
  if (c.expiries.some((e) => e.expiry === keep)) expiryPick.value = keep;
  return true;
}

/** Today's day marked live (today is known once a live snapshot came). */
function labelDays() {
  const today = todayIst();
  for (const o of dayPick.options) {
    const text = o.value === today ? `${o.value} (today, live)` : o.value;
    if (o.textContent !== text) o.textContent = text;
  }
}

// ---- the charts

function drawStraddles(d) {
  const ts = ts0(d);
  const xs = xsOf(ts);
  const lines = [...(d.strategies || []), d.atm].filter(Boolean);
  const series = [];
  const data = [xs];
  lines.forEach((p, i) => {
    const colour = p.kind === "rolling" ? cssVar("--text") : PALETTE[i % PALETTE.length];
    series.push(lineSeries(p.label, colour, { width: 2, value: money }));
    series.push(lineSeries(`${p.label} VWAP`, colour, { dash: [5, 4], value: money }));
    data.push(col(p.premium, xs.length), col(p.vwap, xs.length));
  });
  straddles.draw(series, data);
  straddles.mark(straddles.path, ts[ts.length - 1]);
  const atm = d.atm ? lastNum(d.atm.strike) : null;
  if (isNum(atm)) view.atm = atm;
  facts($("#charts-straddle-facts"), lines.map((p) => [
    p.kind === "rolling" ? `ATM ${strike(atm)}` : p.label,
    `${rupee(lastNum(p.premium))} · VWAP ${rupee(lastNum(p.vwap))}`,
  ]));
}

function drawOi(d) {
  const rows = Array.isArray(d.rows) ? d.rows : [];
  const xs = rows.map((r) => r.strike);
  const pick = (k) => rows.map((r) => (isNum(r[k]) ? r[k] : null));
  const change = $("#charts-oi-mode").value === "change";
  const [c, p] = change ? ["call_oi_change", "put_oi_change"] : ["call_oi", "put_oi"];
  const bars = (label, colour, align) => ({
    label, stroke: colour, fill: colour, width: 0, points: { show: false },
    paths: uPlot.paths.bars({ size: [0.42, 40, 1], align }), value: (u, v) => lakhs(v, change),
  });
  oiWindow.draw([
    bars(change ? "Call OI change" : "Call OI", cssVar("--call"), -1),
    bars(change ? "Put OI change" : "Put OI", cssVar("--put"), 1),
  ], [xs, pick(c), pick(p)]);
  oiWindow.mark(oiWindow.path, d.end);
  const sum = (k) => rows.reduce((a, r) => a + (isNum(r[k]) ? r[k] : 0), 0);
  facts($("#charts-oi-facts"), [
    ["From", istTime(d.start)], ["to", istTime(d.end)],
    ["Call OI", lakhs(sum("call_oi"))], ["Put OI", lakhs(sum("put_oi"))],
    ["Call chg", lakhs(sum("call_oi_change"), true)], ["Put chg", lakhs(sum("put_oi_change"), true)],
  ]);
}

function drawOiChange(d) {
  const ts = ts0(d);
  const xs = xsOf(ts);
  const list = Array.isArray(d.series) ? d.series : [];
  const series = list.map((s, i) => lineSeries(`${strike(s.strike)} ${s.side}`,
    PALETTE[Math.floor(i / 2) % PALETTE.length], { width: 2, dash: s.side === "PE" ? [5, 4] : undefined,
      value: (u, v) => lakhs(v, true) }));
  oiChange.draw(series, [xs, ...list.map((s) => col(s.change, xs.length))]);
  oiChange.mark(oiChange.path, ts[ts.length - 1]);
  facts($("#charts-oichange-facts"), list.map((s) => [
    `${strike(s.strike)} ${s.side}`,
    `${lakhs(lastNum(s.change), true)} (from ${s.base_is === "previous_close" ? "prev close" : "first cycle"})`,
  ]));
}

function pcrSeries(dots = false) {
  const points = { show: dots, size: 5 };
  return [
    lineSeries("PCR (OI)", cssVar("--call"), { width: 2, points, value: (u, v) => num(v) }),
    lineSeries("PCR (volume)", cssVar("--alt"), { dash: [5, 4], points, value: (u, v) => num(v) }),
    lineSeries("Max pain", cssVar("--put"), { scale: "mp", points, value: (u, v) => strike(v) }),
  ];
}

function drawPcr(d) {
  const ts = ts0(d);
  const xs = xsOf(ts);
  pcrDay.draw(pcrSeries(), [xs, col(d.pcr_oi, xs.length), col(d.pcr_volume, xs.length), col(d.max_pain, xs.length)]);
  pcrDay.mark(pcrDay.path, ts[ts.length - 1]);
  facts($("#charts-pcr-facts"), [
    ["PCR", num(lastNum(d.pcr_oi))], ["by volume", num(lastNum(d.pcr_volume))],
    ["Max pain", strike(lastNum(d.max_pain))],
  ]);
}

function drawPcrDays(d) {
  dayLabels = Array.isArray(d.dates) ? d.dates : [];
  const xs = dayLabels.map((_, i) => i);
  pcrDays.draw(pcrSeries(true), [xs, col(d.pcr_oi, xs.length), col(d.pcr_volume, xs.length), col(d.max_pain, xs.length)]);
  pcrDays.mark(pcrDays.path, ts0(d)[xs.length - 1]);
  facts($("#charts-pcrdays-facts"), [
    ["Days", String(xs.length)], ["last", dayLabels[xs.length - 1] || DASH],
    ["PCR", num(lastNum(d.pcr_oi))], ["Max pain", strike(lastNum(d.max_pain))],
  ]);
}

function drawVix(d) {
  const ts = ts0(d);
  const xs = xsOf(ts);
  const n = xs.length;
  vixLevels.draw([
    lineSeries("ATM IV", cssVar("--call"), { width: 2, value: (u, v) => pts(v) }),
    lineSeries("iv30", cssVar("--alt"), { width: 2, value: (u, v) => pts(v) }),
    lineSeries("INDIA VIX", cssVar("--put"), { width: 2, value: (u, v) => pts(v) }),
    lineSeries("ATM IV − VIX", cssVar("--call"), { dash: [2, 3], value: (u, v) => pts(v) }),
    lineSeries("iv30 − VIX", cssVar("--alt"), { dash: [2, 3], value: (u, v) => pts(v) }),
  ], [xs, col(d.atm_iv, n), col(d.iv30, n), col(d.vix, n), col(d.atm_spread, n), col(d.iv30_spread, n)]);
  vixLevels.mark(vixLevels.path, ts[n - 1]);
  const minutes = Array.isArray(d.minutes) ? d.minutes : [];
  const mx = xsOf(minutes);
  vixCorr.draw([
    lineSeries("ATM IV ~ VIX", cssVar("--call"), { width: 2, value: (u, v) => r4(v) }),
    lineSeries("iv30 ~ VIX", cssVar("--alt"), { width: 2, value: (u, v) => r4(v) }),
  ], [mx, col(d.atm_correlation, mx.length), col(d.iv30_correlation, mx.length)]);
  vixCorr.mark(vixLevels.path, minutes[minutes.length - 1]);
  facts($("#charts-vix-facts"), [
    ["ATM IV", pts(lastNum(d.atm_iv))], ["iv30", pts(lastNum(d.iv30))], ["VIX", pts(lastNum(d.vix))],
    ["ATM IV − VIX", pts(lastNum(d.atm_spread))], ["iv30 − VIX", pts(lastNum(d.iv30_spread))],
  ]);
  facts($("#charts-corr-facts"), [
    ["Window", `${d.window} min`], ["ATM IV", r4(lastNum(d.atm_correlation))],
    ["iv30", r4(lastNum(d.iv30_correlation))],
  ]);
}

async function one(chart, panel, path, what, draw) {
  chart.path = path;
  const d = await fetchFor(panel, path, what);
  if (d) {
    try {
      draw(d);
    } catch (err) {
      say(panel, `Could not draw this: ${err && err.message ? err.message : err}`);
    }
  }
}

/** Draw every chart for the pickers' choices. */
async function drawAll() {
  const e = currentExpiry();
  if (!e || !view.day) return; // the pickers are not filled yet
  const { gen, index, day: picked } = view; // a change of index or day meanwhile: given up
  const base = `charts/${enc(index)}`;
  const day = `date=${enc(picked)}`;
  const exp = `${day}&expiry=${enc(e.expiry)}`;
  const chosen = () => parseList(strategiesIn.value, STRATEGY).slice(0, 6);
  const straddlesOf = (list) => `${base}/straddles?${exp}${list.map((x) => `&s=${enc(x)}`).join("")}`;
  if (!chosen().length) { // the ATM straddle alone first: its strike picks the defaults
    await one(straddles, "charts-straddle", straddlesOf([]), "Straddles", drawStraddles);
    if (isNum(view.atm)) strategiesIn.value = defaultStrategies(e);
  }
  if (chosen().length) await one(straddles, "charts-straddle", straddlesOf(chosen()), "Straddles", drawStraddles);
  if (gen !== view.gen) return;
  if (!strikesIn.value && isNum(view.atm)) strikesIn.value = String(view.atm);
  const window = [fromIn.value && `&from=${enc(fromIn.value)}`, toIn.value && `&to=${enc(toIn.value)}`].filter(Boolean).join("");
  const strikes = parseList(strikesIn.value, /^\d+(\.\d+)?$/).slice(0, 10).map((x) => `&strikes=${enc(x)}`).join("");
  const bucket = `bucket=${enc(e.bucket)}`;
  const corr = Math.min(375, Math.max(2, Number(windowIn.value) || 30));
  await Promise.all([
    one(oiWindow, "charts-oi", `${base}/oi?${exp}${window}`, "OI", drawOi),
    strikes ? one(oiChange, "charts-oichange", `${base}/oi-change?${exp}${strikes}`, "OI change", drawOiChange) : null,
    one(pcrDay, "charts-pcr", `${base}/pcr?${bucket}&${day}`, "PCR", drawPcr),
    one(pcrDays, "charts-pcrdays", `${base}/pcr-days?${bucket}&to=${enc(picked)}`, "PCR by day", drawPcrDays),
    one(vixLevels, "charts-vix", `${base}/vix?${bucket}&${day}&window=${corr}`, "IV and VIX", drawVix),
  ]);
  if (gen !== view.gen) return;
  view.draws += 1;
  $("#charts-view").dataset.drawn = `${index} ${picked} ${e.expiry} #${view.draws}`;
}

/** The ATM straddle and a strangle two strikes out on each side, where recorded. */
function defaultStrategies(e) {
  const at = e.strikes.indexOf(view.atm);
  const out = [String(view.atm)];
  if (at >= 2 && at + 2 < e.strikes.length) out.push(`${e.strikes[at - 2]}-${e.strikes[at + 2]}`);
  return out.join(", ");
}

async function reload() {
  view.gen += 1;
  if (await loadContracts()) await drawAll();
}

function follow() {
  labelDays();
  if (state.index && state.index !== view.index) {
    view.index = state.index;
    view.day = null;
    view.contracts = null;
    view.atm = null;
    strategiesIn.value = "";
    strikesIn.value = "";
    reload();
  }
}

dayPick.addEventListener("change", () => {
  view.day = dayPick.value;
  view.atm = null;
  reload();
});
expiryPick.addEventListener("change", () => {
  view.gen += 1;
  view.atm = null;
  strategiesIn.value = "";
  strikesIn.value = "";
  drawAll();
});
$("#charts-oi-mode").addEventListener("change", () => {
  view.gen += 1;
  drawAll();
});
$("#charts-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  view.gen += 1;
  drawAll();
});
setInterval(follow, 1000);
setInterval(() => {
  if (view.day && view.day === todayIst() && !document.hidden) drawAll();
}, LIVE_MS);
follow();
