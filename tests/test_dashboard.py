"""The dashboard at ``/`` in headless Chromium, against a running simulated session (SPEC §3.7).

One ``opchain run --broker sim --speed 60`` serves the API (with a key) for the whole module; each
test opens its own browser context. Playwright drives Debian's ``/usr/bin/chromium``. Values on the
page are compared with what the API answers for the same snapshot (same ``ts``); the page's own
numbers are formatted the Indian way, which :func:`indian` spells out independently.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    WebSocketRoute,
    sync_playwright,
)
from websockets.sync.client import connect

import opchain.api
from opchain.api.app import create_app, docs_html
from opchain.settings import Settings

from .apiserver import running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC = Path(opchain.api.__file__).parent / "static"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
START = "2026-11-20T09:20:00"  # a Friday NSE session
EARLIER_FRIDAYS = ("2026-11-06", "2026-11-13")  # recorded first: the weekday profile's band
KEY = "dashboard-test-key"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
MINUS = "\u2212"

pytestmark = pytest.mark.e2e


# ---------------------------------------------------------------- formatting, independently


def indian(value: float, decimals: int = 2) -> str:
    """``value`` grouped the Indian way (12,34,567.89), rounded half away from zero, with a
    real minus sign: what the dashboard shows for prices and strikes."""
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):f}"
    whole, _, frac = text.partition(".")
    head, tail = whole[:-3], whole[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    body = ",".join([*groups, tail]) + (f".{frac}" if frac else "")
    return (MINUS if rounded < 0 else "") + body


def test_indian_grouping() -> None:
    assert indian(26056.47) == "26,056.47"
    assert indian(12345678.9) == "1,23,45,678.90"
    assert indian(-1234.5) == MINUS + "1,234.50"
    assert indian(0.925) == "0.93"
    assert indian(26050.0, 0) == "26,050"
    assert indian(999.999) == "1,000.00"


# ---------------------------------------------------------------- the vendored chart library


def vendored() -> dict[str, str]:
    """``{path under static/vendor: sha256}`` from the table in ``static/vendor/README.md``."""
    text = (STATIC / "vendor" / "README.md").read_text()
    return dict(re.findall(r"^\| `([^`]+)` \| [^|]+ \| `([0-9a-f]{64})` \|$", text, re.M))


def test_vendored_files_match_their_recorded_sha256() -> None:
    listed = vendored()
    assert listed, "static/vendor/README.md lists no file"
    vendor = STATIC / "vendor"
    present = {str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file()}
    assert present - {"README.md"} == set(listed), "every vendored file, and only those, is listed"
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    pages = (STATIC / "index.html").read_text() + docs_html("", "/openapi.json").body.decode()
    for name in listed:
        if name.endswith((".js", ".css")):
            assert f'vendor/{name}"' in pages, f"neither the dashboard nor /docs loads {name}"


def test_the_api_docs_render_without_any_other_host(browser: Browser, tmp_path: Path) -> None:
    """``/docs`` with every request to another host refused (as without internet): Swagger UI
    comes from the package and shows every operation of the schema."""
    app = create_app(Settings(data_dir=tmp_path))
    operations = sum(len(methods) for methods in app.openapi()["paths"].values())
    with running(app) as server:
        ctx = browser.new_context()
        refused = refuse_other_hosts(ctx, server.url)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"{server.url}/docs", wait_until="load")
        assert refused == [], "the docs page asked another host for these"
        page.wait_for_function(
            "n => document.querySelectorAll('.opblock').length === n", arg=operations
        )
        for path in ("/option-chain/{index}", "/splits/{index}/{bucket}/{offset}/{date}.csv"):
            assert page.locator(f".opblock-summary-path[data-path='{path}']").count() == 1
        assert page.locator(".info .title").inner_text().startswith("opchain")
        screenshot(page, "api-docs")
        ctx.close()
        assert errors == []
        assert refused == []
        assert httpx.get(f"{server.url}/redoc").status_code == 404


# ---------------------------------------------------------------- the running session


@dataclass
class Session:
    base: str
    data_dir: Path
    output: list[str] = field(default_factory=list)

    def get(self, path: str) -> Any:
        response = httpx.get(self.base + path, headers={"X-API-Key": KEY}, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """``opchain run`` on the simulator at 60x with the API on a free port and one key, after two
    earlier Fridays recorded by ``opchain demo``; yields once the API has pushed a snapshot from
    09:22 or later (two whole minutes of today recorded)."""
    data_dir = tmp_path_factory.mktemp("dashboard-data")
    for day in EARLIER_FRIDAYS:
        demo = [sys.executable, "-m", "opchain", "demo", "--date", day, "--cadence", "60"]
        done = subprocess.run(
            [*demo, "--data-dir", str(data_dir)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    env = {
        **os.environ,
        "OPCHAIN_API_HOST": "127.0.0.1",
        "OPCHAIN_API_PORT": "0",
        "OPCHAIN_API_KEYS": KEY,
        "OPCHAIN_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-m", "opchain", "run", "--broker", "sim", "--speed", "60"]
    command += ["--start", START, "--data-dir", str(data_dir), "--sessions", "1"]
    output: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        drain: threading.Thread | None = None
        try:
            assert process.stdout is not None
            base = None
            for line in process.stdout:  # blocks until the API says where it is, or the run ends
                output.append(line)
                found = re.search(r"API at (http://\S+)", line)
                if found:
                    base = found[1].rstrip("/")
                    break
            assert base, "opchain run printed no 'API at' line:\n" + "".join(output)
            drain = threading.Thread(target=output.extend, args=(process.stdout,), daemon=True)
            drain.start()
            ws_url = base.replace("http://", "ws://") + f"/ws/live/NIFTY?key={KEY}"
            with connect(ws_url, open_timeout=60) as socket:
                while True:  # each recv blocks until the next snapshot
                    message = json.loads(socket.recv(timeout=120))
                    if datetime.fromisoformat(message["ts"]).strftime("%H:%M") >= "09:22":
                        break
            yield Session(base, data_dir, output)
        finally:
            process.kill()
            process.wait()
            if drain is not None:
                drain.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "the dashboard tests need Debian's chromium at /usr/bin/chromium"
    with sync_playwright() as playwright:
        yield launch(playwright)


def launch(playwright: Playwright) -> Browser:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    assert browser.version, "chromium did not start"
    return browser


@dataclass
class Tab:
    page: Page
    errors: list[str]
    refused: list[str]

    def check_no_errors(self, allowed: str | None = None) -> None:
        left = [e for e in self.errors if not (allowed and re.search(allowed, e))]
        assert left == [], "errors on the page:\n" + "\n".join(left)
        assert self.refused == [], "the page asked other hosts for these"


def open_tab(
    browser: Browser,
    base: str,
    *,
    key: str | None = KEY,
    sockets: Callable[[WebSocketRoute], None] | None = None,
    **context: Any,
) -> Tab:
    """A new context (its own localStorage) with the key stored, or none; ``sockets`` sees
    every WebSocket the page opens to the API."""
    ctx = browser.new_context(**context)
    refused = refuse_other_hosts(ctx, base)
    if key is not None:
        ctx.add_init_script(f"localStorage.setItem('opchain.apiKey', {json.dumps(key)})")
    page = ctx.new_page()
    if sockets is not None:
        page.route_web_socket(re.compile(r"/ws/live/"), sockets)
    page.set_default_timeout(60_000)
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            errors.append(f"console {message.type}: {message.text} {message.location}")

    page.on("console", console)
    page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
    page.goto(f"{base}/")
    return Tab(page, errors, refused)


def refuse_other_hosts(ctx: BrowserContext, base: str) -> list[str]:
    """Abort every request of ``ctx`` that is not to ``base`` (the page must work without
    internet); the list returned fills with the addresses refused."""
    refused: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(base + "/") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    return refused


def wait_live(page: Page) -> None:
    page.wait_for_function("document.querySelector('#live').dataset.state === 'live'")
    page.wait_for_function("document.querySelectorAll('#chain-body tr').length > 0")


# The page keeps the raw ``ts`` of what each panel shows (``data-ts``). PROBE fetches an API path
# from inside the page in the background (one request at a time) and keeps the newest answer;
# the predicates below, polled by wait_for_function, compare that answer with the page.
PROBE = """(path, key) => {
  const probes = (window.__probes ??= {});
  const probe = (probes[path] ??= {busy: false, api: null});
  if (!probe.busy) {
    probe.busy = true;
    fetch(path, {headers: {'X-API-Key': key}})
      .then(r => (r.ok ? r.json() : null))
      .then(api => { if (api) probe.api = api; })
      .catch(() => {})
      .finally(() => { probe.busy = false; });
  }
  return probe.api;
}"""

SAME_SNAPSHOT = f"""([selector, path, key]) => {{
  const probe = {PROBE};
  const node = document.querySelector(selector);
  if (!node || !node.dataset.ts) return null;
  const bucket = document.querySelector('#chain').dataset.bucket;
  const api = probe(path.replace('{{bucket}}', bucket), key);
  if (!api) return null;
  const ts = api.ts ?? (api.indices || []).find(o => o.index === node.dataset.index)?.ts;
  if (ts !== node.dataset.ts) return null;
  const rows = [...node.querySelectorAll('tbody tr')].map(
    r => ({{...r.dataset, shown: r.getClientRects().length > 0,
           cells: [...r.cells].map(c => c.innerText)}}));
  return {{api, page: {{...node.dataset}}, rows, text: node.closest('section, article').innerText}};
}}"""

SAME_PROFILE = f"""([key]) => {{
  const probe = {PROBE};
  const node = document.querySelector('#straddle-chart');
  if (!node.dataset.date || !node.dataset.lastMinute) return null;
  const bucket = document.querySelector('#chain').dataset.bucket;
  const api = probe(`profiles/NIFTY/${{bucket}}/atm?date=${{node.dataset.date}}`, key);
  if (!api || node.dataset.bucket !== bucket) return null;
  const filled = (api.minutes || []).filter(m => m.today !== null);
  const row = filled[filled.length - 1];
  if (!row || row.minute !== node.dataset.lastMinute) return null;
  if (String(row.today) !== node.dataset.lastToday) return null;
  return {{api, row, page: {{...node.dataset}}, text: node.closest('section').innerText}};
}}"""


def same_snapshot(page: Page, selector: str, path: str) -> dict[str, Any]:
    handle = page.wait_for_function(SAME_SNAPSHOT, arg=[selector, path, KEY], polling=100)
    value = handle.json_value()
    assert isinstance(value, dict)
    return value


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# ---------------------------------------------------------------- the tests


def test_every_panel_shows_the_apis_values(session: Session, browser: Browser) -> None:
    tab = open_tab(browser, session.base, viewport=LAPTOP)
    page = tab.page
    wait_live(page)

    # overview: every index and INDIA VIX, with the price /indices has for the same snapshot
    for index in ("NIFTY", "BANKNIFTY", "SENSEX", "INDIAVIX"):
        card = f"[data-testid=card-{index}]"
        assert page.locator(card).is_visible()
        seen = same_snapshot(page, card, "indices")
        overview = next(o for o in seen["api"]["indices"] if o["index"] == index)
        assert page.locator(f"{card} [data-testid=price]").count() == 1
        assert indian(overview["last_price"]) in seen["text"], (index, seen["text"])
        if index != "INDIAVIX":  # per-bucket ATM IV, PCR, max pain, straddle
            for bucket in overview["buckets"]:
                if bucket["max_pain"] is not None:
                    assert indian(bucket["max_pain"], 0) in seen["text"]

    # the chain: the ATM row is /option-chain's atm_strike, strikes and prices as the API says
    seen = same_snapshot(page, "#chain", "option-chain/NIFTY?bucket={bucket}")
    chain = seen["api"]
    # the rows as the page had them with that snapshot (the next one may replace them any time)
    rows = seen["rows"]
    atm_rows = [row for row in rows if row.get("testid") == "atm-row"]
    assert len(atm_rows) == 1, rows
    assert float(atm_rows[0]["strike"]) == chain["atm_strike"]
    assert float(seen["page"]["atm"]) == chain["atm_strike"]
    assert [float(row["strike"]) for row in rows] == [row["strike"] for row in chain["rows"]]
    atm = next(row for row in chain["rows"] if row["strike"] == chain["atm_strike"])
    assert atm["call"] is not None
    assert atm["put"] is not None
    cells = atm_rows[0]["cells"]
    assert indian(chain["atm_strike"], 0) in cells
    assert indian(atm["call"]["last_price"]) in cells
    assert indian(atm["put"]["last_price"]) in cells
    if atm["call"]["iv"] is not None:
        assert indian(atm["call"]["iv"] * 100, 1) in cells
    assert atm_rows[0]["shown"]

    # OI by strike, with max pain and the walls
    seen = same_snapshot(page, "#oi-chart", "analytics/NIFTY/max-pain?bucket={bucket}")
    mp = seen["api"]
    assert int(seen["page"]["strikes"]) == len(mp["strikes"]) > 0
    for name in ("max_pain", "call_wall", "put_wall"):
        if mp[name] is not None:
            assert indian(mp[name], 0) in seen["text"], name
    assert float(seen["page"]["maxPain"]) == mp["max_pain"]

    # PCR today: one point a cycle of the shown bucket
    seen = same_snapshot(page, "#pcr-chart", "analytics/NIFTY/pcr")
    pcr = seen["api"]
    bucket = page.get_attribute("#chain", "data-bucket")
    ours = [p for p in pcr["series"] if p["bucket"] == bucket]
    assert int(seen["page"]["points"]) == len(ours) > 1
    for b in pcr["buckets"]:
        if b["pcr_oi"] is not None:
            assert indian(b["pcr_oi"]) in seen["text"]

    # IV term structure: a point per bucket, IV30 as a percentage
    seen = same_snapshot(page, "#term-chart", "analytics/NIFTY/term-structure")
    term = seen["api"]
    assert int(seen["page"]["points"]) == len({p["expiry"] for p in term["points"]}) > 0
    for point in term["points"]:
        if point["atm_iv"] is not None:
            assert indian(point["atm_iv"] * 100) + "%" in seen["text"]

    # IV smile of the shown bucket
    seen = same_snapshot(page, "#smile-chart", "analytics/NIFTY/iv-smile?bucket={bucket}")
    smile = seen["api"]
    assert int(seen["page"]["points"]) == len(smile["strikes"]) > 0
    if smile["atm_iv"] is not None:
        assert indian(smile["atm_iv"] * 100) + "%" in seen["text"]

    # straddle today against the weekday and DTE profiles, minute by minute as the API has it
    profile = page.wait_for_function(SAME_PROFILE, arg=[KEY], polling=100).json_value()
    minutes = profile["api"]["minutes"]
    assert int(profile["page"]["points"]) == sum(m["today"] is not None for m in minutes) > 0
    row = profile["row"]
    assert "₹" + indian(row["today"]) in profile["text"]
    # the earlier Fridays, and not today, make the weekday profile: its mean, and a band from
    # min to max
    assert row["weekday_days"] == profile["api"]["weekday_days"] == len(EARLIER_FRIDAYS), row
    assert all(m["weekday_days"] == len(EARLIER_FRIDAYS) for m in minutes if m["today"] is not None)
    assert row["weekday_min"] <= row["weekday_avg"] <= row["weekday_max"]
    days = row["weekday_days"]
    assert f"Fri avg ₹{indian(row['weekday_avg'])} ({days} d)" in profile["text"]
    assert int(profile["page"]["bandPoints"]) == sum(m["weekday_max"] is not None for m in minutes)
    assert profile["page"]["date"] == "2026-11-20"

    # system health, polled
    health = session.get("/health")
    page.wait_for_function(
        "names => names.every(n => document.querySelector(`[data-check='${n}']`))",
        arg=list(health["checks"]),
    )
    assert page.get_attribute("#health-pill", "data-status") in ("ok", "degraded", "down")

    # nothing says it failed
    assert page.locator(".panel-msg:visible").count() == 0
    screenshot(page, "laptop")
    tab.check_no_errors()


def test_the_page_updates_live_in_place(session: Session, browser: Browser) -> None:
    tab = open_tab(browser, session.base, viewport=LAPTOP, color_scheme="dark")
    page = tab.page
    wait_live(page)
    page.wait_for_function("document.querySelector('#oi-chart').dataset.ts")
    shown = page.get_attribute("#snapshot-time", "data-ts")
    assert shown
    assert re.fullmatch(r"\d\d:\d\d:\d\d IST", page.inner_text("#snapshot-time"))
    canvas = page.query_selector("#oi-chart canvas")
    first_row = page.query_selector("#chain-body tr")
    assert canvas is not None
    assert first_row is not None
    oi_ts = page.get_attribute("#oi-chart", "data-ts")

    # a new WebSocket message moves the snapshot time on, and the charts follow
    page.wait_for_function(
        "ts => new Date(document.querySelector('#snapshot-time').dataset.ts) > new Date(ts)",
        arg=shown,
    )
    page.wait_for_function("ts => document.querySelector('#oi-chart').dataset.ts !== ts", arg=oi_ts)
    assert page.inner_text("#live-state") == "live"
    # ... drawn into the same chart, not a new one per message
    assert canvas.evaluate("c => c.isConnected")
    assert page.locator("#oi-chart canvas").count() == 1
    later = page.get_attribute("#snapshot-time", "data-ts") or ""
    assert datetime.fromisoformat(later) > datetime.fromisoformat(shown)
    assert later.endswith("+05:30")
    screenshot(page, "laptop-dark")
    tab.check_no_errors()


def test_it_reconnects_after_the_socket_drops(session: Session, browser: Browser) -> None:
    sockets: list[WebSocketRoute] = []

    def through(socket: WebSocketRoute) -> None:  # passes everything to the real API
        socket.connect_to_server()
        sockets.append(socket)

    tab = open_tab(browser, session.base, viewport=LAPTOP, sockets=through)
    page = tab.page
    wait_live(page)
    assert len(sockets) == 1
    assert "key=" + KEY in sockets[0].url  # the key rides along as the query parameter
    sockets[0].close(code=1011, reason="dropped by the test")
    page.wait_for_function("document.querySelector('#live').dataset.state === 'reconnecting'")
    assert page.inner_text("#live-state") == "reconnecting"
    dropped_at = page.get_attribute("#snapshot-time", "data-ts")
    page.wait_for_function("document.querySelector('#live').dataset.state === 'live'")
    assert len(sockets) == 2
    page.wait_for_function(
        "ts => new Date(document.querySelector('#snapshot-time').dataset.ts) > new Date(ts)",
        arg=dropped_at,
    )
    tab.check_no_errors()


def test_switching_index_and_expiry(session: Session, browser: Browser) -> None:
    tab = open_tab(browser, session.base, viewport=LAPTOP)
    page = tab.page
    wait_live(page)
    page.click("#index-tabs [data-index=BANKNIFTY]")
    page.wait_for_function("document.querySelector('#chain').dataset.index === 'BANKNIFTY'")
    assert page.evaluate("location.hash").startswith("#BANKNIFTY")
    buckets = page.eval_on_selector_all(
        "#bucket-tabs button", "buttons => buttons.map(b => b.dataset.bucket)"
    )
    indices = {o["index"]: o for o in session.get("/indices")["indices"]}
    assert set(buckets) == {b["bucket"] for b in indices["BANKNIFTY"]["buckets"]}
    assert "this_week" not in buckets  # BANKNIFTY has no weeklies
    for bucket in buckets[-1:]:
        page.click(f"#bucket-tabs [data-bucket={bucket}]")
        page.wait_for_function(f"document.querySelector('#chain').dataset.bucket === '{bucket}'")
        seen = same_snapshot(page, "#chain", "option-chain/BANKNIFTY?bucket={bucket}")
        assert float(seen["page"]["atm"]) == seen["api"]["atm_strike"]
        assert seen["api"]["bucket"] == bucket
        label = page.inner_text("#chain-facts")
        assert label.split()[0] in ("M1", "M2", "W1", "W2")
        page.wait_for_function(
            "b => document.querySelector('#oi-chart').dataset.bucket === b", arg=bucket
        )
    tab.check_no_errors()


def test_it_fits_a_phone(session: Session, browser: Browser) -> None:
    tab = open_tab(browser, session.base, viewport=PHONE, is_mobile=True, has_touch=True)
    page = tab.page
    wait_live(page)
    page.wait_for_function("Number(document.querySelector('#straddle-chart').dataset.points) > 0")
    page.wait_for_function("Number(document.querySelector('#oi-chart').dataset.strikes) > 0")
    widths = page.evaluate(
        """() => ({
          page: document.documentElement.scrollWidth,
          body: document.body.scrollWidth,
          view: document.documentElement.clientWidth,
          widest: Math.max(...[...document.querySelectorAll('main *, header *')]
            .filter(e => !e.closest('#chain-scroll') && e.getClientRects().length)
            .map(e => e.getBoundingClientRect().right)),
          chainBox: document.querySelector('#chain-scroll').clientWidth,
          chainTable: document.querySelector('#chain').scrollWidth,
          chainOverflow: getComputedStyle(document.querySelector('#chain-scroll')).overflowX,
        })"""
    )
    assert widths["view"] == PHONE["width"]
    assert widths["page"] <= widths["view"], widths  # no horizontal page scroll
    assert widths["body"] <= widths["view"], widths
    assert widths["widest"] <= widths["view"] + 0.5, widths
    # the chain may be wider than the phone: it scrolls inside its own box
    assert widths["chainBox"] <= widths["view"]
    assert widths["chainOverflow"] == "auto"
    assert page.locator("[data-testid=atm-row]").is_visible()
    screenshot(page, "phone")
    tab.check_no_errors()


def test_a_keyed_api_asks_for_the_key_once(session: Session, browser: Browser) -> None:
    tab = open_tab(browser, session.base, key=None, viewport=LAPTOP)
    page = tab.page
    dialog = page.locator("[data-testid=key-dialog]")
    dialog.wait_for(state="visible")
    assert page.inner_text("#live-state") == "key needed"
    assert page.locator("#chain-body tr").count() == 0

    # a wrong key is refused and asked for again
    page.fill("#key-input", "not-the-key")
    page.press("#key-input", "Enter")
    page.wait_for_function("document.querySelector('#key-why').textContent.includes('refused')")
    dialog.wait_for(state="visible")

    # the right key is kept, sent as X-API-Key and as the WebSocket's key, and the page goes live
    page.fill("#key-input", KEY)
    page.click("#key-dialog button[type=submit]")
    wait_live(page)
    assert dialog.is_hidden()
    assert page.evaluate("localStorage.getItem('opchain.apiKey')") == KEY

    # ... and not asked for again
    page.reload()
    wait_live(page)
    assert dialog.is_hidden()
    tab.check_no_errors(allowed=r"status of 401 \(Unauthorized\)")


def test_a_failing_endpoint_shows_a_message_in_its_panel(
    session: Session, browser: Browser
) -> None:
    tab = open_tab(browser, session.base, viewport=LAPTOP)
    page = tab.page
    detail = "max pain is resting"
    page.route(
        "**/analytics/*/max-pain*",
        lambda route: route.fulfill(
            status=503, content_type="application/json", body=json.dumps({"detail": detail})
        ),
    )
    wait_live(page)
    message = page.locator("#panel-oi > .panel-msg")
    message.wait_for(state="visible")
    assert detail in message.inner_text()
    # the rest of the page goes on
    page.wait_for_function("Number(document.querySelector('#smile-chart').dataset.points) > 0")
    assert page.locator("#panel-chain > .panel-msg").is_hidden()
    assert page.locator("#panel-oi").is_visible()
    tab.check_no_errors(allowed=r"status of 503")


def test_the_charts_follow_the_live_day(session: Session, browser: Browser) -> None:
    """The Charts view picks today (the live snapshots' day) and draws it again as it is
    recorded: a later redraw shows the API's values at the cycle it drew."""
    from .test_dashboard_charts import expected_facts, shown_chart  # it imports this module

    tab = open_tab(browser, session.base, viewport=LAPTOP)
    page = tab.page
    wait_live(page)
    day = START[:10]
    page.wait_for_function(
        "d => (document.querySelector('#charts-view').dataset.drawn || '').startsWith(d)",
        arg=f"NIFTY {day}",
    )
    page.wait_for_function(
        "t => document.querySelector('#charts-day option:checked').textContent === t",
        arg=f"{day} (today, live)",
    )
    first = page.get_attribute("#charts-straddle-chart", "data-ts")
    page.wait_for_function(  # the same offset: ISO times order as text
        "t => document.querySelector('#charts-straddle-chart').dataset.ts > t", arg=first
    )
    # (not the rolling correlation: its point of the minute under way moves until it ends)
    for panel in ("straddle", "oichange", "pcr", "vix"):
        shown = shown_chart(page, panel)
        answer = session.get("/" + shown["path"])
        assert expected_facts(panel, answer, shown["ts"]) == (shown["facts"], shown["ts"]), panel
    tab.check_no_errors()
