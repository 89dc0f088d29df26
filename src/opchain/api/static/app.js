// opchain live dashboard: one ES module, no build step. It reads the API of docs/api.md from
// the origin that serves it, and the WebSocket /ws/live/{index} for the live snapshot.
/* global uPlot */

// The configured indices in the API's order, learnt from /indices (INDIA VIX aside): the server's
// index table and OPCHAIN_INDICES decide, not this page.
const INDICES = [];
const VIX = "INDIAVIX";
// Friendlier card names where known; any other index shows the name the API gives it.
const NAMES = { NIFTY: "Nifty 50", BANKNIFTY: "Nifty Bank", SENSEX: "BSE Sensex", INDIAVIX: "India VIX" };
const BUCKETS = ["this_week", "next_week", "this_month", "next_month"];
const BUCKET_TAG = { this_week: "W1", next_week: "W2", this_month: "M1", next_month: "M2" };
const KEY_STORE = "opchain.apiKey";
const GREEKS_STORE = "opchain.greeks";
const WEEKDAY = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri" };

// ---------------------------------------------------------------- formatting (Indian market)

const nf = (lo, hi) =>
  new Intl.NumberFormat("en-IN", { minimumFractionDigits: lo, maximumFractionDigits: hi });
const F0 = nf(0, 0);
const F1 = nf(1, 1);
const F2 = nf(2, 2);
const F4 = nf(4, 4);
const STRIKE = nf(0, 2);
const MINUS = "\u2212";
const DASH = "—";

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const sign = (v) => (v > 0 ? "+" : v < 0 ? MINUS : "");
const num = (v, f = F2) => (isNum(v) ? (v < 0 ? MINUS : "") + f.format(Math.abs(v)) : DASH);
const signed = (v, f = F2) => (isNum(v) ? sign(v) + f.format(Math.abs(v)) : DASH);
const rupee = (v) => (isNum(v) ? (v < 0 ? MINUS : "") + "₹" + F2.format(Math.abs(v)) : DASH);
const pct = (v, f = F2) => (isNum(v) ? num(v * 100, f) + "%" : DASH); // v is a fraction
const strike = (v) => (isNum(v) ? STRIKE.format(v) : DASH);

/** Open interest and volume: lakhs (L) and crores (Cr) once they are that large. */
function lakhs(v, signedOut = false) {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  const s = signedOut ? sign(v) : v < 0 ? MINUS : "";
  if (a >= 1e7) return s + F2.format(a / 1e7) + " Cr";
  if (a >= 1e5) return s + F2.format(a / 1e5) + " L";
  return s + F0.format(a);
}

const IST_TIME = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const IST_DATE = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Asia/Kolkata", year: "numeric", month: "2-digit", day: "2-digit",
});
const DAY_MONTH = new Intl.DateTimeFormat("en-IN", { day: "numeric", month: "short", timeZone: "UTC" });
const IST_OFFSET_MS = 330 * 60 * 1000; // India has one offset all year

const parseTs = (ts) => (ts ? new Date(ts) : null);
const validDate = (d) => d instanceof Date && !Number.isNaN(d.getTime());
function istTime(ts) {
  const d = parseTs(ts);
  return validDate(d) ? IST_TIME.format(d) : DASH;
}
function istDate(ts) {
  const d = parseTs(ts);
  return validDate(d) ? IST_DATE.format(d) : null;
}
/** Minutes since IST midnight, with the seconds as a fraction: the x of the intraday charts. */
function istMinutes(ts) {
  const d = parseTs(ts);
  if (!validDate(d)) return null;
  const m = (d.getTime() + IST_OFFSET_MS) / 60000;
  return ((m % 1440) + 1440) % 1440;
}
function hhmm(minutes) {
  if (!isNum(minutes)) return DASH;
  const m = Math.round(minutes);
  return String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
}
function minuteOf(text) {
  const m = /^(\d{1,2}):(\d{2})/.exec(text || "");
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}
function expiryLabel(iso) {
  const d = iso ? new Date(iso.slice(0, 10) + "T00:00:00Z") : null;
  return validDate(d) ? DAY_MONTH.format(d) : DASH;
}
const bucketTag = (b) => BUCKET_TAG[b] || b;

// ---------------------------------------------------------------- small DOM helpers

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}
function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}
function setChange(node, value, text) {
  setText(node, text);
  node.classList.toggle("up", isNum(value) && value > 0);
  node.classList.toggle("down", isNum(value) && value < 0);
}
/** Facts line of a panel: [["Label", "value"], ...]. */
function facts(node, pairs) {
  node.replaceChildren(
    ...pairs.filter(Boolean).map(([k, v, cls]) => el("span", {}, k ? k + " " : "", el("b", { class: cls }, v))),
  );
}
function panelMessage(panelId, text) {
  const p = $(`#${panelId}-msg`) || $(`#${panelId} > .panel-msg`);
  if (!p) return;
  p.hidden = !text;
  setText(p, text || "");
}
const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// ---------------------------------------------------------------- state

const state = {
  index: "NIFTY",
  bucket: null, // null: the API's nearest
  gen: 0, // bumped on every index/bucket change; late answers for an older one are dropped
  overview: new Map(), // index -> Overview
  chains: new Map(), // bucket -> Chain (live)
  latestTs: null,
  lastMessageAt: 0,
  messageGap: 30000,
  live: "connecting",
  marketOpen: null,
  needKey: false,
  holdUntil: 0, // after a 429: no requests before this
  chainKey: "",
  chainScrolled: "",
  lastProfileMinute: null,
};

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

const storedKey = () => {
  try {
    return localStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
};

async function api(path) {
  if (state.needKey) throw new ApiError(401, "Waiting for an API key.");
  if (performance.now() < state.holdUntil) throw new ApiError(429, "Too many requests; waiting.");
  const key = storedKey();
  let response;
  try {
    response = await fetch(path, { headers: key ? { "X-API-Key": key } : {}, cache: "no-store" });
  } catch {
    throw new ApiError(0, "The API cannot be reached.");
  }
  if (response.status === 401) {
    askForKey(Boolean(key));
    throw new ApiError(401, "This API wants a key.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 429) {
    const wait = Number(response.headers.get("Retry-After")) || 1;
    state.holdUntil = performance.now() + wait * 1000;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

const enc = encodeURIComponent;

/** Run ``fn`` at most once per ``gapMs``; a call during the gap or a run is kept for later. */
function refresher(fn, gapMs) {
  let running = false;
  let again = false;
  let last = -Infinity;
  let timer = null;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    const wait = last + gapMs - performance.now();
    if (wait > 0) {
      if (!timer) timer = setTimeout(() => ((timer = null), run()), wait);
      return;
    }
    running = true;
    last = performance.now();
    try {
      await fn();
    } catch {
      // every fn shows its own failure in its panel
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      }
    }
  };
  return run;
}

/** Fetch for a panel: the panel shows a short message on failure and keeps what it had. */
async function load(panelId, path, what) {
  const gen = state.gen;
  try {
    const body = await api(path);
    if (gen !== state.gen) return null;
    panelMessage(panelId, null);
    return body;
  } catch (err) {
    if (gen === state.gen) {
      const why = err instanceof ApiError ? err.message : String(err);
      panelMessage(panelId, `${what}: ${why}`);
    }
    return null;
  }
}

/** Draw without letting one bad answer break the page. */
function safely(panelId, fn) {
  try {
    fn();
  } catch (err) {
    panelMessage(panelId, `Could not draw this: ${err && err.message ? err.message : err}`);
  }
}

// ---------------------------------------------------------------- API key

const keyDialog = $("#key-dialog");

function askForKey(refused) {
  state.needKey = true;
  setText($("#key-why"), refused
    ? "The API refused the stored key. Enter another; it is kept in this browser only."
    : "This opchain API wants a key. It is kept in this browser only.");
  if (!keyDialog.open) {
    $("#key-input").value = "";
    keyDialog.showModal();
  }
  closeSocket();
  setLive("key", "key needed");
}

keyDialog.addEventListener("cancel", (e) => e.preventDefault()); // no data without a key
$("#key-form").addEventListener("submit", () => {
  const key = $("#key-input").value.trim();
  if (!key) return;
  try {
    localStorage.setItem(KEY_STORE, key);
  } catch {
    // private mode: the key lasts as long as the page
  }
  state.needKey = false;
  reloadAll();
});

// ---------------------------------------------------------------- live indicator

function setLive(kind, label = kind) {
  state.live = kind;
  $("#live").dataset.state = kind;
  setText($("#live-state"), label);
}

function showSnapshotTime(ts) {
  if (!ts) return;
  const d = parseTs(ts);
  if (!validDate(d)) return;
  if (state.latestTs && parseTs(state.latestTs) > d) return;
  state.latestTs = ts;
  const node = $("#snapshot-time");
  node.dataset.ts = ts;
  setText(node, istTime(ts) + " IST");
  node.title = `Last snapshot ${istDate(ts)} ${istTime(ts)} IST`;
}

setInterval(() => {
  if (state.live !== "live" && state.live !== "stale" && state.live !== "closed") return;
  const silent = performance.now() - state.lastMessageAt;
  const limit = Math.max(3 * state.messageGap, 15000);
  if (silent > limit) setLive(state.marketOpen === false ? "closed" : "stale");
}, 1000);

// ---------------------------------------------------------------- WebSocket

let socket = null;
let socketIndex = null;
let retries = 0;
let retryTimer = null;

function closeSocket() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (socket) {
    const s = socket;
    socket = null;
    s.onclose = s.onmessage = s.onerror = s.onopen = null;
    s.close();
  }
}

function openSocket() {
  closeSocket();
  if (state.needKey) return;
  const url = new URL(`ws/live/${enc(state.index)}`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  const key = storedKey();
  if (key) url.searchParams.set("key", key);
  const s = new WebSocket(url);
  socket = s;
  socketIndex = state.index;
  if (state.live !== "live") setLive(retries ? "reconnecting" : "connecting");
  s.onopen = () => {
    if (socket === s && state.live !== "live") setLive("waiting", "waiting for data");
  };
  s.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    retries = 0;
    onLive(msg);
  };
  s.onclose = (event) => {
    if (socket !== s) return;
    socket = null;
    if (event.code === 1008 || event.code === 4401 || event.code === 4001) {
      // the key was refused: let a REST call ask for one, then reconnect
      refreshChain();
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  if (state.needKey) return;
  setLive("reconnecting");
  const base = Math.min(30000, 500 * 2 ** Math.min(retries, 6));
  retries += 1;
  const wait = base * (0.75 + Math.random() * 0.5);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    retryTimer = null;
    if (!state.needKey) openSocket();
  }, wait);
}

function onLive(msg) {
  if (!msg || msg.type !== "snapshot" || msg.index !== socketIndex || msg.index !== state.index) return;
  const now = performance.now();
  if (state.lastMessageAt) {
    const gap = Math.min(Math.max(now - state.lastMessageAt, 250), 120000);
    state.messageGap = 0.8 * state.messageGap + 0.2 * gap;
  }
  state.lastMessageAt = now;
  setLive("live");
  if (msg.overview) {
    state.overview.set(msg.index, msg.overview);
    safely("overview", () => renderCard(msg.overview));
  }
  if (Array.isArray(msg.chains)) {
    for (const c of msg.chains) if (c && c.bucket) state.chains.set(c.bucket, c);
    renderBucketTabs();
  }
  const chain = state.chains.get(currentBucket());
  if (chain) safely("panel-chain", () => renderChain(chain));
  showSnapshotTime(msg.ts);
  afterSnapshot(msg.ts);
}

// ---------------------------------------------------------------- index and bucket

function bucketsOf(index) {
  const o = state.overview.get(index);
  const fromLive = index === state.index ? [...state.chains.keys()] : [];
  const fromOverview = o && Array.isArray(o.buckets) ? o.buckets.map((b) => b.bucket) : [];
  const all = new Set([...fromOverview, ...fromLive]);
  return BUCKETS.filter((b) => all.has(b)).concat([...all].filter((b) => !BUCKETS.includes(b)));
}

function currentBucket() {
  if (state.bucket) return state.bucket;
  return bucketsOf(state.index)[0] || null;
}

function expiryOf(index, bucket) {
  const c = index === state.index ? state.chains.get(bucket) : null;
  if (c && c.expiry) return c.expiry;
  const o = state.overview.get(index);
  const b = o && Array.isArray(o.buckets) ? o.buckets.find((x) => x.bucket === bucket) : null;
  return b ? b.expiry : null;
}

function renderIndexTabs() {
  const nav = $("#index-tabs");
  if (nav.children.length !== INDICES.length) {
    nav.replaceChildren(...INDICES.map((name) => el("button", {
      type: "button", role: "tab", "data-index": name, text: name, onclick: () => selectIndex(name),
    })));
  }
  for (const b of nav.children) b.setAttribute("aria-selected", String(b.dataset.index === state.index));
}

function renderBucketTabs() {
  const nav = $("#bucket-tabs");
  const buckets = bucketsOf(state.index);
  const cur = currentBucket();
  const want = buckets.join(",");
  if (nav.dataset.buckets !== want) {
    nav.dataset.buckets = want;
    nav.replaceChildren(...buckets.map((b) =>
      el("button", { type: "button", role: "tab", "data-bucket": b, onclick: () => selectBucket(b) },
        bucketTag(b), el("span", { class: "sub" }))));
  }
  for (const btn of nav.children) {
    const b = btn.dataset.bucket;
    btn.setAttribute("aria-selected", String(b === cur));
    setText(btn.querySelector(".sub"), expiryLabel(expiryOf(state.index, b)));
    btn.title = b.replace("_", " ");
  }
}

function writeHash() {
  const want = `#${state.index}` + (state.bucket ? `/${state.bucket}` : "");
  if (location.hash !== want) history.replaceState(null, "", want);
}

function readHash() {
  const [index, bucket] = location.hash.replace(/^#\/?/, "").split("/");
  if (/^[A-Z0-9]+$/.test(index || "") && index !== VIX) state.index = index; // checked by learnIndices
  state.bucket = BUCKETS.includes(bucket) ? bucket : null;
}

function selectIndex(name) {
  if (!INDICES.includes(name) || name === state.index) return;
  state.index = name;
  if (state.bucket && !bucketsOf(name).includes(state.bucket)) state.bucket = null;
  changed();
  openSocket();
}

function selectBucket(bucket) {
  if (bucket === currentBucket()) return;
  state.bucket = bucket;
  changed();
  const chain = state.chains.get(bucket);
  if (chain) safely("panel-chain", () => renderChain(chain));
}

function changed() {
  state.gen += 1;
  state.chains = state.index === socketIndex ? state.chains : new Map();
  state.chainKey = "";
  state.chainScrolled = "";
  state.lastProfileMinute = null;
  state.latestTs = null;
  writeHash();
  renderIndexTabs();
  renderBucketTabs();
  for (const [name, o] of state.overview) safely("overview", () => renderCard(o, name));
  clearPanels();
  refreshChain();
  refreshAll();
}

// ---------------------------------------------------------------- overview cards

const cards = new Map();

function card(index, fullName = "") {
  let c = cards.get(index);
  if (c) return c;
  const vix = index === VIX;
  const root = el("article", {
    class: "card" + (vix ? " vix" : ""),
    "data-index": index,
    "data-testid": `card-${index}`,
    tabindex: vix ? null : "0",
    role: vix ? null : "button",
    onclick: vix ? null : () => selectIndex(index),
    onkeydown: vix ? null : (e) => (e.key === "Enter" || e.key === " ") && selectIndex(index),
  });
  c = {
    root,
    name: el("div", { class: "card-name" }, index, el("span", { class: "long", text: NAMES[index] || (fullName === index ? "" : fullName) })),
    ts: el("div", { class: "card-ts" }),
    price: el("span", { class: "price", "data-testid": "price" }),
    change: el("span", { class: "chg" }),
    range: el("div", { class: "card-range" }),
    table: el("table", { class: "mini" }),
  };
  root.append(
    el("div", { class: "card-top" }, c.name, c.ts),
    el("div", { class: "card-price" }, c.price, c.change),
    c.range,
  );
  if (!vix) root.append(c.table);
  // cards keep the API's order: the configured indices, then INDIA VIX
  const host = $("#overview");
  const order = [...INDICES, VIX];
  const pos = order.indexOf(index);
  const after = [...host.children].find((n) => order.indexOf(n.dataset.index) > pos || order.indexOf(n.dataset.index) < 0);
  host.insertBefore(root, after || null);
  cards.set(index, c);
  return c;
}

function renderCard(o, name = o.index) {
  if (!o || !name) return;
  const c = card(name, o.name || "");
  c.root.setAttribute("aria-current", String(name === state.index));
  c.root.dataset.ts = o.ts || "";
  setText(c.ts, o.ts ? istTime(o.ts) : "");
  setText(c.price, num(o.last_price));
  setChange(c.change, o.net_change, `${signed(o.net_change)} (${signed(o.net_change_pct)}%)`);
  setText(c.range, `O ${num(o.open)}  H ${num(o.high)}  L ${num(o.low)}  PC ${num(o.prev_close)}`);
  if (Array.isArray(o.buckets) && name !== VIX) {
    const cur = name === state.index ? currentBucket() : null;
    const rows = o.buckets.map((b) =>
      el("tr", { class: b.bucket === cur ? "sel" : null, "data-bucket": b.bucket },
        el("td", { text: `${bucketTag(b.bucket)} ${expiryLabel(b.expiry)}` }),
        el("td", { text: pct(b.atm_iv) }),
        el("td", { text: num(b.pcr_oi) }),
        el("td", { text: strike(b.max_pain) }),
        el("td", { text: rupee(b.straddle) })));
    c.table.replaceChildren(
      el("thead", {}, el("tr", {}, ...["Expiry", "ATM IV", "PCR", "Max pain", "Straddle"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows));
  }
}

/** Add the indices the API lists to the tabs; leave an index it does not serve for its first. */
function learnIndices(names) {
  let added = false;
  for (const name of names) {
    if (name !== VIX && !INDICES.includes(name)) {
      INDICES.push(name);
      added = true;
    }
  }
  if (!added) return;
  renderIndexTabs();
  if (!INDICES.includes(state.index)) selectIndex(INDICES[0]);
}

async function refreshIndices() {
  const body = await load("overview", "indices", "Indices");
  if (!body) return;
  learnIndices((body.indices || []).map((o) => o.index));
  for (const o of body.indices || []) {
    // the live socket is newer for the index it follows
    const live = state.overview.get(o.index);
    if (live && o.index === state.index && live.ts && o.ts && parseTs(live.ts) > parseTs(o.ts)) continue;
    state.overview.set(o.index, o);
    safely("overview", () => renderCard(o));
  }
  renderBucketTabs();
}

// ---------------------------------------------------------------- option chain

const chainBody = $("#chain-body");
const chainTable = $("#chain");
let chainRows = new Map(); // strike -> {tr, cells}

const CALL_COLS = ["oi", "oi_change", "volume", "iv", "delta", "gamma", "theta", "vega", "last_price"];
const PUT_COLS = [...CALL_COLS].reverse();
const COL_CLASS = { oi: "oi", oi_change: "chg", volume: "vol", delta: "dl", gamma: "gk", theta: "gk", vega: "gk" };

function cellText(col, side) {
  if (!side) return "";
  const v = side[col];
  switch (col) {
    case "oi": case "volume": return lakhs(v);
    case "oi_change": return lakhs(v, true);
    case "iv": return isNum(v) ? F1.format(v * 100) : DASH;
    case "delta": return num(v, F2);
    case "gamma": return num(v, F4);
    case "theta": return num(v, F2);
    case "vega": return num(v, F2);
    case "last_price": return num(v, F2);
    default: return String(v ?? "");
  }
}

function buildChainRows(rows) {
  chainRows = new Map();
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const tr = el("tr", { "data-strike": String(r.strike) });
    const cells = { c: {}, p: {} };
    for (const col of CALL_COLS) {
      const td = el("td", { class: `c ${COL_CLASS[col] || ""}`.trim() });
      if (col === "oi") td.append(el("div", { class: "bar" }), el("span"));
      cells.c[col] = td;
      tr.append(td);
    }
    const st = el("td", { class: "strike", text: strike(r.strike) });
    tr.append(st);
    for (const col of PUT_COLS) {
      const td = el("td", { class: `p ${COL_CLASS[col] || ""}`.trim() });
      if (col === "oi") td.append(el("div", { class: "bar" }), el("span"));
      cells.p[col] = td;
      tr.append(td);
    }
    chainRows.set(r.strike, { tr, cells });
    frag.append(tr);
  }
  chainBody.replaceChildren(frag);
}

function fillSide(cells, side, maxOi) {
  for (const [col, td] of Object.entries(cells)) {
    const text = cellText(col, side);
    if (col === "oi") {
      setText(td.lastChild, text);
      const w = side && isNum(side.oi) && maxOi > 0 ? (100 * side.oi) / maxOi : 0;
      td.firstChild.style.width = `${w.toFixed(1)}%`;
    } else if (col === "oi_change") {
      setChange(td, side ? side.oi_change : null, text);
    } else {
      setText(td, text);
    }
  }
  const flag = side && side.flag ? String(side.flag) : "";
  for (const td of Object.values(cells)) td.classList.toggle("flagged", Boolean(flag));
  const ltp = cells.last_price;
  ltp.title = side
    ? `bid ${num(side.bid)} × ${side.bid_qty ?? DASH}  ask ${num(side.ask)} × ${side.ask_qty ?? DASH}` + (flag ? `  (${flag})` : "")
    : "";
}

function renderChain(chain) {
  if (!chain || !Array.isArray(chain.rows)) return;
  if (state.bucket && chain.bucket !== state.bucket) return;
  const rows = chain.rows;
  const key = `${chain.index}|${chain.bucket}|${rows.map((r) => r.strike).join(",")}`;
  if (key !== state.chainKey) {
    buildChainRows(rows);
    state.chainKey = key;
  }
  let maxOi = 0;
  for (const r of rows) {
    for (const s of [r.call, r.put]) if (s && isNum(s.oi) && s.oi > maxOi) maxOi = s.oi;
  }
  const spot = chain.spot;
  let spotMarked = false;
  for (const r of rows) {
    const row = chainRows.get(r.strike);
    if (!row) continue;
    fillSide(row.cells.c, r.call, maxOi);
    fillSide(row.cells.p, r.put, maxOi);
    const atm = r.strike === chain.atm_strike;
    row.tr.classList.toggle("atm", atm);
    if (atm) row.tr.dataset.testid = "atm-row";
    else delete row.tr.dataset.testid;
    row.tr.classList.toggle("itm-call", isNum(spot) && r.strike < spot);
    row.tr.classList.toggle("itm-put", isNum(spot) && r.strike > spot);
    const first = !spotMarked && isNum(spot) && r.strike > spot;
    if (first) spotMarked = true;
    row.tr.classList.toggle("spot-line", first && !atm);
  }
  chainTable.dataset.ts = chain.ts || "";
  chainTable.dataset.bucket = chain.bucket || "";
  chainTable.dataset.index = chain.index || "";
  chainTable.dataset.atm = String(chain.atm_strike ?? "");
  const s = chain.stats || {};
  facts($("#chain-facts"), [
    ["", `${bucketTag(chain.bucket)} ${expiryLabel(chain.expiry)}`],
    ["DTE", isNum(chain.dte) ? F0.format(chain.dte) : DASH],
    ["Spot", num(spot)],
    ["Fwd", num(chain.forward)],
    ["ATM IV", pct(s.atm_iv)],
    ["PCR", num(s.pcr_oi)],
    ["Straddle", rupee(s.straddle)],
    ["at", istTime(chain.ts)],
  ]);
  // centre the ATM row once per index and bucket, inside the table's own box
  const scrollKey = `${chain.index}|${chain.bucket}`;
  if (state.chainScrolled !== scrollKey && chainRows.has(chain.atm_strike)) {
    const box = $("#chain-scroll");
    const tr = chainRows.get(chain.atm_strike).tr;
    box.scrollTop = Math.max(0, tr.offsetTop - box.clientHeight / 2 + tr.offsetHeight / 2);
    state.chainScrolled = scrollKey;
  }
  if (!state.bucket && chain.bucket) renderBucketTabs();
}

async function refreshChainNow() {
  const b = state.bucket;
  const path = `option-chain/${enc(state.index)}` + (b ? `?bucket=${enc(b)}` : "");
  const chain = await load("panel-chain", path, "Option chain");
  if (!chain) return false;
  const live = state.chains.get(chain.bucket);
  if (!live || !live.ts || parseTs(chain.ts) >= parseTs(live.ts)) state.chains.set(chain.bucket, chain);
  renderBucketTabs();
  safely("panel-chain", () => renderChain(state.chains.get(currentBucket()) || chain));
  showSnapshotTime(chain.ts);
  return true;
}
const refreshChain = refresher(refreshChainNow, 1000);

const greeksToggle = $("#greeks-toggle");
greeksToggle.checked = (() => {
  try {
    return localStorage.getItem(GREEKS_STORE) === "1";
  } catch {
    return false;
  }
})();
/** Keep "Calls" and "Puts" over their own columns when some are hidden (Greeks, phone). */
function syncChainHeader() {
  const heads = [...chainTable.tHead.rows[1].cells];
  const mid = heads.findIndex((th) => th.classList.contains("strike"));
  const shown = (list) => list.filter((th) => getComputedStyle(th).display !== "none").length;
  chainTable.querySelector(".calls-h").colSpan = Math.max(1, shown(heads.slice(0, mid)));
  chainTable.querySelector(".puts-h").colSpan = Math.max(1, shown(heads.slice(mid + 1)));
}
chainTable.classList.toggle("greeks", greeksToggle.checked);
syncChainHeader();
window.matchMedia("(max-width: 720px)").addEventListener("change", syncChainHeader);
greeksToggle.addEventListener("change", () => {
  chainTable.classList.toggle("greeks", greeksToggle.checked);
  syncChainHeader();
  try {
    localStorage.setItem(GREEKS_STORE, greeksToggle.checked ? "1" : "0");
  } catch {
    // not kept
  }
});

// ---------------------------------------------------------------- charts (uPlot, updated in place)

const charts = [];
const FONT = () => `11px ${getComputedStyle(document.body).fontFamily}`;

function axis(values, extra = {}) {
  return {
    stroke: cssVar("--muted"),
    font: FONT(),
    grid: { stroke: cssVar("--grid"), width: 1 },
    ticks: { stroke: cssVar("--grid"), width: 1, size: 4 },
    values,
    ...extra,
  };
}

/** Vertical markers drawn over a chart: [{x, label, color, dash}]. */
function markersPlugin(getMarkers) {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { top, height, left, width } = u.bbox;
        const px = uPlot.pxRatio;
        const panel = cssVar("--panel");
        ctx.save();
        ctx.font = `${10 * px}px ${getComputedStyle(document.body).fontFamily}`;
        ctx.textBaseline = "top";
        ctx.textAlign = "left";
        let row = 0;
        for (const m of getMarkers()) {
          if (!isNum(m.x)) continue;
          const x = Math.round(u.valToPos(m.x, "x", true));
          if (x < left || x > left + width) continue;
          ctx.strokeStyle = m.color;
          ctx.fillStyle = m.color;
          ctx.lineWidth = px;
          ctx.setLineDash((m.dash || []).map((d) => d * px));
          ctx.beginPath();
          ctx.moveTo(x + 0.5, top);
          ctx.lineTo(x + 0.5, top + height);
          ctx.stroke();
          if (m.label) {
            const w = ctx.measureText(m.label).width;
            const tx = Math.min(Math.max(x + 3 * px, left), left + width - w);
            const ty = top + (2 + 13 * row) * px;
            ctx.fillStyle = panel;
            ctx.globalAlpha = 0.85;
            ctx.fillRect(tx - 2 * px, ty - px, w + 4 * px, 12 * px);
            ctx.globalAlpha = 1;
            ctx.fillStyle = m.color;
            ctx.fillText(m.label, tx, ty);
            row = (row + 1) % 4;
          }
        }
        ctx.restore();
      },
    },
  };
}

class Chart {
  constructor(node, options, empty) {
    this.node = node;
    this.options = options; // () => uPlot options, read again when the colour scheme changes
    this.data = empty;
    this.u = null;
    this.width = 0;
    charts.push(this);
    new ResizeObserver(() => this.fit()).observe(node);
  }

  size() {
    const h = parseFloat(getComputedStyle(this.node).getPropertyValue("--chart-h")) || 220;
    return { width: Math.max(160, Math.floor(this.node.clientWidth)), height: h };
  }

  build() {
    if (typeof uPlot === "undefined") throw new Error("the chart library did not load");
    if (this.u) this.u.destroy();
    const { width, height } = this.size();
    this.width = width;
    const options = this.options();
    this.u = new uPlot({ ...options, width, height }, this.data, this.node);
    this.u.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
      if (options.series[i] && options.series[i].hideInLegend) row.classList.add("hide-in-legend");
    });
  }

  set(data) {
    this.data = data;
    if (!this.u) this.build();
    else this.u.setData(data);
  }

  redraw() {
    if (this.u) this.u.redraw(false);
  }

  fit() {
    if (!this.u) return;
    const { width, height } = this.size();
    if (width !== this.width || height !== this.u.height) {
      this.width = width;
      this.u.setSize({ width, height });
    }
  }
}

const minuteAxis = (u, splits) => splits.map(hhmm);
const strikeAxis = (u, splits) => splits.map((v) => F0.format(v));
/** Ticks on listed strikes only, as many as fit. */
const strikeSplits = (u) => {
  const xs = u.data[0] || [];
  const fit = Math.max(2, Math.floor(u.bbox.width / uPlot.pxRatio / 64));
  const every = Math.max(1, Math.ceil(xs.length / fit));
  return xs.filter((_, i) => i % every === 0);
};
const SESSION = [555, 930]; // 09:15 to 15:30 IST
const lineSeries = (label, stroke, extra = {}) => ({
  label, stroke, width: 1.5, points: { show: false }, spanGaps: false, ...extra,
});

// ---- straddle today against the weekday and DTE profiles

let straddleInfo = null;
const straddleChart = new Chart($("#straddle-chart"), () => {
  const text = cssVar("--text");
  const wk = cssVar("--call");
  const dte = cssVar("--alt");
  const val = (u, v) => rupee(v);
  return {
    scales: { x: { time: false, range: SESSION } },
    axes: [axis(minuteAxis, { incrs: [15, 30, 60, 120] }), axis((u, s) => s.map((v) => F0.format(v)), { size: 52 })],
    series: [
      { label: "IST", value: (u, v) => hhmm(v) },
      lineSeries("Today", text, { width: 2, value: val }),
      lineSeries("Weekday avg", wk, { dash: [5, 4], value: val }),
      lineSeries("Weekday min", cssVar("--call-soft"), { width: 1, hideInLegend: true, value: val }),
      lineSeries("Weekday max", cssVar("--call-soft"), { width: 1, hideInLegend: true, value: val }),
      lineSeries("DTE avg", dte, { dash: [2, 3], value: val }),
      lineSeries("DTE min", cssVar("--alt-soft"), { width: 1, hideInLegend: true, value: val }),
      lineSeries("DTE max", cssVar("--alt-soft"), { width: 1, hideInLegend: true, value: val }),
    ],
    bands: [
      { series: [4, 3], fill: cssVar("--call-band") },
      { series: [7, 6], fill: cssVar("--alt-band") },
    ],
    cursor: { drag: { x: false, y: false } },
  };
}, [[], [], [], [], [], [], [], []]);

function renderStraddle(p) {
  const minutes = Array.isArray(p.minutes) ? p.minutes : [];
  const cols = ["today", "weekday_avg", "weekday_min", "weekday_max", "dte_avg", "dte_min", "dte_max"];
  const xs = [];
  const ys = cols.map(() => []);
  for (const m of minutes) {
    const x = minuteOf(m.minute);
    if (x == null) continue;
    xs.push(x);
    cols.forEach((c, i) => ys[i].push(isNum(m[c]) ? m[c] : null));
  }
  straddleChart.set([xs, ...ys]);
  let last = null;
  for (const m of minutes) if (isNum(m.today)) last = m;
  const wd = WEEKDAY[p.weekday] || p.weekday || "Weekday";
  straddleInfo = { last, wd };
  // the profiles count the days before this one only: per minute, else in all
  const days = (n, all) => (isNum(n) ? ` (${n} d)` : isNum(all) ? ` (${all} d)` : "");
  facts($("#straddle-facts"), [
    ["Today", last ? rupee(last.today) : DASH],
    [`${wd} avg`, last ? rupee(last.weekday_avg) + days(last.weekday_days, p.weekday_days) : DASH],
    [`DTE ${isNum(p.dte) ? p.dte : DASH} avg`, last ? rupee(last.dte_avg) + days(last.dte_days, p.dte_days) : DASH],
    last ? ["at", last.minute] : null,
  ]);
  Object.assign($("#straddle-chart").dataset, {
    date: p.date || "",
    bucket: p.bucket || "",
    points: String(ys[0].filter(isNum).length),
    bandPoints: String(ys[3].filter(isNum).length),
    lastMinute: last ? last.minute : "",
    lastToday: last ? String(last.today) : "",
  });
}

async function refreshStraddleNow() {
  const bucket = currentBucket();
  const date = istDate(state.latestTs);
  if (!bucket) return;
  const q = date ? `?date=${enc(date)}` : "";
  const p = await load("panel-straddle", `profiles/${enc(state.index)}/${enc(bucket)}/atm${q}`, "Straddle profile");
  if (p) safely("panel-straddle", () => renderStraddle(p));
}
const refreshStraddle = refresher(refreshStraddleNow, 4000);

// ---- open interest by strike, with max pain and the walls

let oiMode = "oi";
let oiData = null;
let oiMarkers = [];
const oiChart = new Chart($("#oi-chart"), () => {
  const call = cssVar("--call");
  const put = cssVar("--put");
  const bars = (align) => uPlot.paths.bars({ size: [0.42, 40, 1], align });
  return {
    scales: {
      x: {
        time: false,
        range: (u, min, max) => {
          const xs = u.data[0];
          const step = xs.length > 1 ? (xs[xs.length - 1] - xs[0]) / (xs.length - 1) : 50;
          return [min - step * 0.7, max + step * 0.7];
        },
      },
      y: { range: (u, min, max) => {
        const lo = Math.min(0, min ?? 0);
        const hi = Math.max(0, max ?? 1);
        const pad = (hi - lo) * 0.08 || 1;
        return [lo < 0 ? lo - pad : 0, hi + pad];
      } },
    },
    axes: [axis(strikeAxis, { splits: strikeSplits }), axis((u, s) => s.map((v) => lakhs(v)), { size: 58 })],
    series: [
      { label: "Strike", value: (u, v) => strike(v) },
      { label: "Calls", stroke: call, fill: call, width: 0, paths: bars(-1), points: { show: false }, value: (u, v) => lakhs(v, oiMode === "chg") },
      { label: "Puts", stroke: put, fill: put, width: 0, paths: bars(1), points: { show: false }, value: (u, v) => lakhs(v, oiMode === "chg") },
    ],
    plugins: [markersPlugin(() => oiMarkers)],
    cursor: { drag: { x: false, y: false }, points: { show: false } },
  };
}, [[], [], []]);

function renderOi() {
  const d = oiData;
  if (!d) return;
  const strikes = Array.isArray(d.strikes) ? d.strikes : [];
  const pick = (a) => strikes.map((_, i) => (Array.isArray(a) && isNum(a[i]) ? a[i] : null));
  const calls = pick(oiMode === "chg" ? d.call_oi_change : d.call_oi);
  const puts = pick(oiMode === "chg" ? d.put_oi_change : d.put_oi);
  const text = cssVar("--text");
  const muted = cssVar("--muted");
  oiMarkers = [
    { x: d.spot, label: "Spot", color: muted },
    { x: d.max_pain, label: "Max pain", color: text, dash: [4, 3] },
    { x: d.call_wall, label: "Call wall", color: cssVar("--call"), dash: [2, 3] },
    { x: d.put_wall, label: "Put wall", color: cssVar("--put"), dash: [2, 3] },
  ];
  oiChart.set([strikes, calls, puts]);
  facts($("#oi-facts"), [
    ["Max pain", strike(d.max_pain)],
    ["Call wall", strike(d.call_wall)],
    ["Put wall", strike(d.put_wall)],
  ]);
  Object.assign($("#oi-chart").dataset, {
    ts: d.ts || "", bucket: d.bucket || "", maxPain: String(d.max_pain ?? ""), strikes: String(strikes.length),
  });
}

async function refreshOiNow() {
  const bucket = currentBucket();
  if (!bucket) return;
  const d = await load("panel-oi", `analytics/${enc(state.index)}/max-pain?bucket=${enc(bucket)}`, "Open interest");
  if (d) {
    oiData = d;
    safely("panel-oi", renderOi);
  }
}
const refreshOi = refresher(refreshOiNow, 2000);

for (const btn of $("#oi-mode").children) {
  btn.addEventListener("click", () => {
    oiMode = btn.dataset.mode;
    for (const b of $("#oi-mode").children) b.setAttribute("aria-pressed", String(b === btn));
    safely("panel-oi", renderOi);
  });
}

// ---- PCR through the day

const pcrChart = new Chart($("#pcr-chart"), () => ({
  scales: { x: { time: false, range: SESSION } },
  axes: [axis(minuteAxis, { incrs: [30, 60, 120] }), axis((u, s) => s.map((v) => F2.format(v)), { size: 44 })],
  series: [
    { label: "IST", value: (u, v) => hhmm(v) },
    lineSeries("PCR OI", cssVar("--text"), { width: 1.75, value: (u, v) => num(v) }),
    lineSeries("PCR volume", cssVar("--muted"), { dash: [4, 3], width: 1, value: (u, v) => num(v) }),
  ],
  cursor: { drag: { x: false, y: false } },
}), [[], [], []]);

function renderPcr(d) {
  const bucket = currentBucket();
  const series = (Array.isArray(d.series) ? d.series : []).filter((p) => p.bucket === bucket);
  const xs = [];
  const oi = [];
  const vol = [];
  let prev = -1;
  for (const p of series) {
    const x = istMinutes(p.ts);
    if (x == null || x <= prev) continue; // uPlot wants x ascending
    prev = x;
    xs.push(x);
    oi.push(isNum(p.pcr_oi) ? p.pcr_oi : null);
    vol.push(isNum(p.pcr_volume) ? p.pcr_volume : null);
  }
  pcrChart.set([xs, oi, vol]);
  const now = (Array.isArray(d.buckets) ? d.buckets : []).map((b) => [
    `${bucketTag(b.bucket)}`, num(b.pcr_oi), b.bucket === bucket ? "sel" : null,
  ]);
  facts($("#pcr-facts"), now);
  Object.assign($("#pcr-chart").dataset, { ts: d.ts || "", points: String(xs.length) });
}

async function refreshPcrNow() {
  const d = await load("panel-pcr", `analytics/${enc(state.index)}/pcr`, "PCR");
  if (d) safely("panel-pcr", () => renderPcr(d));
}
const refreshPcr = refresher(refreshPcrNow, 3000);

// ---- IV term structure

const termChart = new Chart($("#term-chart"), () => ({
  scales: { x: { time: false, range: (u, min, max) => [0, Math.max(7, (max ?? 7) * 1.08)] } },
  axes: [axis((u, s) => s.map((v) => `${F0.format(v)}d`)), axis((u, s) => s.map((v) => F1.format(v) + "%"), { size: 48 })],
  series: [
    { label: "Days", value: (u, v) => (isNum(v) ? `${F1.format(v)} d` : DASH) },
    lineSeries("ATM IV", cssVar("--text"), {
      width: 1.75, points: { show: true, size: 6, fill: cssVar("--panel") }, value: (u, v) => (isNum(v) ? F2.format(v) + "%" : DASH),
    }),
  ],
  cursor: { drag: { x: false, y: false } },
}), [[], []]);

function renderTerm(d) {
  // in an expiry week this_week and this_month are one contract: one point, both names
  const byExpiry = new Map();
  for (const p of Array.isArray(d.points) ? d.points : []) {
    if (!isNum(p.years)) continue;
    const seen = byExpiry.get(p.expiry);
    if (seen) seen.buckets.push(p.bucket);
    else byExpiry.set(p.expiry, { ...p, buckets: [p.bucket] });
  }
  const order = (b) => (BUCKETS.indexOf(b) + 1 || 99);
  const points = [...byExpiry.values()].sort((a, b) => a.years - b.years);
  for (const p of points) p.buckets.sort((a, b) => order(a) - order(b));
  termChart.set([points.map((p) => p.years * 365), points.map((p) => (isNum(p.atm_iv) ? p.atm_iv * 100 : null))]);
  facts($("#term-facts"), [
    ["IV30", pct(d.iv30)],
    ["IV rank", isNum(d.iv_rank) ? F0.format(d.iv_rank <= 1 ? d.iv_rank * 100 : d.iv_rank) : DASH],
    ["IV pctl", isNum(d.iv_percentile) ? F0.format(d.iv_percentile <= 1 ? d.iv_percentile * 100 : d.iv_percentile) : DASH],
  ]);
  const cur = currentBucket();
  $("#term-table").replaceChildren(
    el("thead", {}, el("tr", {}, ...["Expiry", "DTE", "ATM IV", "Straddle", "Move"].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...points.map((p) => el("tr", { class: p.buckets.includes(cur) ? "sel" : null },
      el("td", { text: `${p.buckets.map(bucketTag).join("·")} ${expiryLabel(p.expiry)}` }),
      el("td", { text: isNum(p.years) ? F1.format(p.years * 365) : DASH }),
      el("td", { text: pct(p.atm_iv) }),
      el("td", { text: rupee(p.straddle) }),
      el("td", { text: isNum(p.expected_move_pct) ? "±" + F2.format(p.expected_move_pct) + "%" : DASH })))),
  );
  Object.assign($("#term-chart").dataset, { ts: d.ts || "", points: String(points.length) });
}

async function refreshTermNow() {
  const d = await load("panel-term", `analytics/${enc(state.index)}/term-structure`, "Term structure");
  if (d) safely("panel-term", () => renderTerm(d));
}
const refreshTerm = refresher(refreshTermNow, 5000);

// ---- IV smile

let smileMarkers = [];
const smileChart = new Chart($("#smile-chart"), () => ({
  scales: { x: { time: false } },
  axes: [axis(strikeAxis, { splits: strikeSplits }), axis((u, s) => s.map((v) => F1.format(v) + "%"), { size: 48 })],
  series: [
    { label: "Strike", value: (u, v) => strike(v) },
    lineSeries("OTM IV", cssVar("--text"), { width: 1.75, value: (u, v) => (isNum(v) ? F2.format(v) + "%" : DASH) }),
    { label: "Call IV", stroke: cssVar("--call"), width: 0, paths: () => null, points: { show: true, size: 4, fill: cssVar("--call") }, value: (u, v) => (isNum(v) ? F2.format(v) + "%" : DASH) },
    { label: "Put IV", stroke: cssVar("--put"), width: 0, paths: () => null, points: { show: true, size: 4, fill: cssVar("--put") }, value: (u, v) => (isNum(v) ? F2.format(v) + "%" : DASH) },
  ],
  plugins: [markersPlugin(() => smileMarkers)],
  cursor: { drag: { x: false, y: false } },
}), [[], [], [], []]);

function renderSmile(d) {
  const strikes = Array.isArray(d.strikes) ? d.strikes : [];
  const col = (a) => strikes.map((_, i) => (Array.isArray(a) && isNum(a[i]) ? a[i] * 100 : null));
  smileMarkers = [{ x: d.forward, label: "Fwd", color: cssVar("--muted"), dash: [3, 3] }];
  smileChart.set([strikes, col(d.otm_iv), col(d.call_iv), col(d.put_iv)]);
  facts($("#smile-facts"), [
    ["", `${bucketTag(d.bucket)} ${expiryLabel(d.expiry)}`],
    ["ATM IV", pct(d.atm_iv)],
    ["Fwd", num(d.forward)],
  ]);
  Object.assign($("#smile-chart").dataset, { ts: d.ts || "", bucket: d.bucket || "", points: String(strikes.length) });
}

async function refreshSmileNow() {
  const bucket = currentBucket();
  if (!bucket) return;
  const d = await load("panel-smile", `analytics/${enc(state.index)}/iv-smile?bucket=${enc(bucket)}`, "IV smile");
  if (d) safely("panel-smile", () => renderSmile(d));
}
const refreshSmile = refresher(refreshSmileNow, 3000);

// ---------------------------------------------------------------- health and market status

async function refreshHealthNow() {
  let h = null;
  try {
    h = await api("health");
    panelMessage("panel-health", null);
  } catch (err) {
    panelMessage("panel-health", `Health: ${err.message}`);
  }
  const pill = $("#health-pill");
  if (!h) {
    pill.dataset.status = "down";
    setText($("#health-pill-text"), "API unreachable");
    return;
  }
  safely("panel-health", () => {
    pill.dataset.status = h.status || "";
    setText($("#health-pill-text"), h.status || "unknown");
    const checks = h.checks && typeof h.checks === "object" ? Object.entries(h.checks) : [];
    $("#health-checks").replaceChildren(...(checks.length ? checks : [["opchain", { status: h.status, detail: "no component has reported yet" }]])
      .map(([name, c]) => el("li", { "data-status": c.status || "", "data-check": name },
        el("span", { class: "dot" }),
        el("span", { class: "name", text: name }),
        el("span", { class: "since", text: c.since ? `since ${istTime(c.since)}` : (c.status || "") }),
        el("span", { class: "detail", text: [c.status, c.detail].filter(Boolean).join(" · ") }))));
  });
}
const refreshHealth = refresher(refreshHealthNow, 2000);

async function refreshMarketNow() {
  let m = null;
  try {
    m = await api("market-status");
  } catch {
    return;
  }
  state.marketOpen = typeof m.is_open === "boolean" ? m.is_open : null;
  const s = m.session;
  facts($("#market-facts"), [
    [m.exchange || "Market", m.is_open ? "open" : "closed"],
    s && s.close && m.is_open ? ["closes", istTime(s.close).slice(0, 5)] : null,
    !m.is_open && m.next_open ? ["opens", `${istDate(m.next_open)} ${istTime(m.next_open).slice(0, 5)}`] : null,
  ]);
}
const refreshMarket = refresher(refreshMarketNow, 5000);

// ---------------------------------------------------------------- refresh plan

const refreshIndicesThrottled = refresher(refreshIndices, 2000);

function refreshAnalytics() {
  refreshOi();
  refreshPcr();
  refreshTerm();
  refreshSmile();
  refreshStraddle();
}

function refreshAll() {
  refreshIndicesThrottled();
  refreshAnalytics();
  refreshHealth();
  refreshMarket();
}

function afterSnapshot(ts) {
  refreshOi();
  refreshPcr();
  refreshTerm();
  refreshSmile();
  const m = Math.floor(istMinutes(ts) ?? -1);
  if (m !== state.lastProfileMinute) {
    state.lastProfileMinute = m;
    refreshStraddle();
  }
}

function clearPanels() {
  oiData = null;
  oiMarkers = [];
  smileMarkers = [];
  for (const c of charts) c.set(c.data.map(() => []));
  chainBody.replaceChildren();
  chainRows = new Map();
  for (const id of ["chain-facts", "straddle-facts", "oi-facts", "pcr-facts", "term-facts", "smile-facts"]) {
    $(`#${id}`).replaceChildren();
  }
  $("#term-table").replaceChildren();
  for (const p of document.querySelectorAll(".panel > .panel-msg")) p.hidden = true;
}

async function reloadAll() {
  setLive("connecting");
  refreshHealth();
  const ok = await refreshChainNow();
  refreshAll();
  if (ok) openSocket();
  else if (!state.needKey) scheduleReconnect();
}

// ---------------------------------------------------------------- start

function start() {
  readHash();
  writeHash();
  renderIndexTabs();
  for (const c of charts) {
    try {
      c.build();
    } catch (err) {
      panelMessage(c.node.closest(".panel").id, `Charts are unavailable: ${err.message}`);
    }
  }
  const scheme = window.matchMedia("(prefers-color-scheme: dark)");
  scheme.addEventListener("change", () => {
    for (const c of charts) {
      try {
        c.build();
      } catch {
        // keep the old chart
      }
    }
  });
  window.addEventListener("hashchange", () => {
    const before = [state.index, state.bucket];
    readHash();
    if (before[0] !== state.index) {
      const next = state.index;
      state.index = before[0];
      selectIndex(next);
    } else if (before[1] !== state.bucket) {
      changed();
    }
  });
  setInterval(() => refreshIndicesThrottled(), 5000);
  setInterval(() => refreshHealth(), 10000);
  setInterval(() => refreshMarket(), 30000);
  // when the socket is down, keep the panels fresh over REST
  setInterval(() => {
    if (state.live !== "live" && !state.needKey) {
      refreshChain();
      refreshAnalytics();
    }
  }, 15000);
  reloadAll();
}

start();

// What the Charts view (charts.js) draws with.
export {
  $, api, ApiError, axis, Chart, cssVar, DASH, el, enc, facts, F0, hhmm, isNum, istDate,
  istMinutes, istTime, lakhs, lineSeries, minuteAxis, num, panelMessage, rupee, state, strike,
};
