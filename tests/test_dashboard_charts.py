"""The dashboard's Charts view in headless Chromium (Debian's ``/usr/bin/chromium``, as
``tests/test_dashboard.py`` drives it) over a recorded stretch of the simulated session: each
chart's facts line shows the last values of the API answer it drew (the path it keeps in
``data-path``, fetched again here), formatted the Indian way independently; the pickers ask for
what was typed; what was not recorded shows the API's sentence in the panel."""

from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from opchain.api.app import create_app
from opchain.market.clock import VirtualClock
from opchain.market.ist import at
from opchain.settings import Settings

from .apidata import KEY, recorded
from .apiserver import running
from .sessions import DAY
from .test_dashboard import CHROMIUM, LAPTOP, MINUS, Tab, indian, launch, open_tab, screenshot

pytestmark = pytest.mark.e2e
DASH = "—"
PANELS = ("straddle", "oi", "oichange", "pcr", "pcrdays", "vix", "corr")


def lakhs(value: float | None, signed: bool = False) -> str:
    """OI as the dashboard shows it: lakhs (L) and crores (Cr) once that large."""
    if value is None:
        return DASH
    sign = ("+" if value > 0 else MINUS if value < 0 else "") if signed else ""
    sign = sign or (MINUS if value < 0 else "")
    a = abs(value)
    if a >= 1e7:
        return sign + indian(a / 1e7) + " Cr"
    if a >= 1e5:
        return sign + indian(a / 1e5) + " L"
    return sign + indian(a, 0)


def rupee(value: float | None) -> str:
    if value is None:
        return DASH
    return (MINUS if value < 0 else "") + "₹" + indian(abs(value))


def plain(value: float | None) -> str:
    return DASH if value is None else indian(value)


def strike(value: float | None) -> str:
    return DASH if value is None else indian(value, 0)


def r4(value: float | None) -> str:
    return DASH if value is None else (MINUS if value < 0 else "") + f"{abs(value):.4f}"


def hhmmss(ts: str) -> str:
    return ts[11:19]


def last(values: list[Any]) -> Any:
    return next((v for v in reversed(values) if v is not None), None)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = recorded(tmp_path_factory)
    config = Settings(data_dir=data, api_keys=KEY, api_burst=10**9, api_rate=10**9)  # type: ignore[arg-type]
    with running(create_app(config, clock=VirtualClock(at(DAY, time(15))))) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "the dashboard tests need Debian's chromium at /usr/bin/chromium"
    with sync_playwright() as playwright:
        yield launch(playwright)


def _get(base: str, path: str) -> Any:
    answer = httpx.get(f"{base}/{path}", headers={"X-API-Key": KEY}, timeout=30)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def shown_chart(page: Page, panel: str) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        """(panel) => {
          const chart = document.querySelector(`#charts-${panel}-chart`);
          const facts = document.querySelector(`#charts-${panel}-facts`);
          return {path: chart.dataset.path || '', ts: chart.dataset.ts || '',
                  facts: [...facts.children].map(s => s.innerText.replace(/\\s+/g, ' ').trim()),
                  drawn: !!chart.querySelector('canvas')};
        }""",
        panel,
    )
    return found


def _drawn(page: Page, marker: str, after: str = "") -> str:
    """Wait until the view has drawn every chart for ``marker`` (index, day, expiry) since
    ``after`` (the view's ``data-drawn`` before); its ``data-drawn`` now."""
    page.wait_for_function(
        """([m, after]) => {
          const drawn = document.querySelector('#charts-view').dataset.drawn || '';
          return drawn.startsWith(m) && drawn !== after;
        }""",
        arg=[marker, after],
    )
    drawn: str = page.evaluate("document.querySelector('#charts-view').dataset.drawn")
    return drawn


def _expected(base: str, panel: str, path: str) -> tuple[list[str], str]:
    """The facts line the API's answer at ``path`` makes, and its last ts."""
    return expected_facts(panel, _get(base, path))


def _upto(d: dict[str, Any], key: str, at: str | None) -> dict[str, Any]:
    """The answer as it was at its cycle ``at`` (None: as it is): every series cut after it
    (what was computed for a cycle never changes later)."""
    if at is None:
        return d
    n = d[key].index(at) + 1

    def cut(value: Any) -> Any:
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return [cut(v) for v in value]
        if isinstance(value, list):
            return value[:n] if len(value) == len(d[key]) else value
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        return value

    return {k: cut(v) for k, v in d.items()}


def expected_facts(panel: str, d: dict[str, Any], at: str | None = None) -> tuple[list[str], str]:
    """The facts line a panel shows for the API's answer ``d`` (at its cycle ``at``: a live
    day's answer has grown since the page drew it), and that cycle's ts."""
    d = (
        _upto(d, "minutes" if panel == "corr" else "ts", at)
        if panel not in ("oi", "pcrdays")
        else d
    )
    if panel == "straddle":
        lines = [*d["strategies"], d["atm"]]
        atm = last(d["atm"]["strike"])
        texts = [
            f"{f'ATM {strike(atm)}' if p['kind'] == 'rolling' else p['label']} "
            f"{rupee(last(p['premium']))} · VWAP {rupee(last(p['vwap']))}"
            for p in lines
        ]
        return texts, d["ts"][-1]
    if panel == "oi":
        total = {k: sum(r[k] or 0 for r in d["rows"]) for k in d["rows"][0] if k != "strike"}
        return [
            f"From {hhmmss(d['start'])}", f"to {hhmmss(d['end'])}",
            f"Call OI {lakhs(total['call_oi'])}", f"Put OI {lakhs(total['put_oi'])}",
            f"Call chg {lakhs(total['call_oi_change'], True)}",
            f"Put chg {lakhs(total['put_oi_change'], True)}",
        ], d["end"]  # fmt: skip
    if panel == "oichange":
        return [
            f"{strike(s['strike'])} {s['side']} {lakhs(last(s['change']), True)} (from "
            f"{'prev close' if s['base_is'] == 'previous_close' else 'first cycle'})"
            for s in d["series"]
        ], d["ts"][-1]
    if panel == "pcr":
        return [
            f"PCR {plain(last(d['pcr_oi']))}", f"by volume {plain(last(d['pcr_volume']))}",
            f"Max pain {strike(last(d['max_pain']))}",
        ], d["ts"][-1]  # fmt: skip
    if panel == "pcrdays":
        return [
            f"Days {len(d['dates'])}", f"last {d['dates'][-1]}",
            f"PCR {plain(last(d['pcr_oi']))}", f"Max pain {strike(last(d['max_pain']))}",
        ], d["ts"][-1]  # fmt: skip
    if panel == "vix":
        return [
            f"ATM IV {plain(last(d['atm_iv']))}", f"iv30 {plain(last(d['iv30']))}",
            f"VIX {plain(last(d['vix']))}", f"ATM IV − VIX {plain(last(d['atm_spread']))}",
            f"iv30 − VIX {plain(last(d['iv30_spread']))}",
        ], d["ts"][-1]  # fmt: skip
    assert panel == "corr"
    return [
        f"Window {d['window']} min", f"ATM IV {r4(last(d['atm_correlation']))}",
        f"iv30 {r4(last(d['iv30_correlation']))}",
    ], d["minutes"][-1]  # fmt: skip


def _check_all(base: str, tab: Tab) -> dict[str, str]:
    paths = {}
    for panel in PANELS:
        shown = shown_chart(tab.page, panel)
        assert shown["path"], f"{panel}: nothing drawn"
        assert shown["drawn"], f"{panel}: no chart"
        facts, ts = _expected(base, panel, shown["path"])
        assert shown["facts"] == facts, panel
        assert shown["ts"] == ts, panel
        paths[panel] = shown["path"]
    return paths


def test_every_chart_shows_the_apis_values(base: str, browser: Browser) -> None:
    tab = open_tab(browser, base, key=KEY, viewport=LAPTOP)
    page = tab.page
    _drawn(page, f"NIFTY {DAY}")
    paths = _check_all(base, tab)
    # defaults: the ATM straddle and a strangle two strikes out; the ATM strike's OI change
    contracts = _get(base, "charts/NIFTY/contracts")
    nearest = contracts["expiries"][0]
    atm = last(_get(base, f"charts/NIFTY/straddles?date={DAY}")["atm"]["strike"])
    at = nearest["strikes"].index(atm)
    low, high = nearest["strikes"][at - 2], nearest["strikes"][at + 2]
    assert paths["straddle"].endswith(f"&s={atm:g}&s={low:g}-{high:g}")
    assert paths["oichange"].endswith(f"&strikes={atm:g}")
    assert page.locator("#charts-day option").all_inner_texts() == [str(DAY)]
    assert page.locator("#charts-expiry option").count() == len(contracts["expiries"])
    screenshot(page, "charts")

    # another expiry, strategies, strikes and a window, as typed
    other = contracts["expiries"][1]
    strikes = other["strikes"]
    middle = len(strikes) // 2
    page.select_option("#charts-expiry", other["expiry"])
    drawn = _drawn(page, f"NIFTY {DAY} {other['expiry']}")
    chosen = [f"{strikes[middle]:g}", f"{strikes[middle - 1]:g}-{strikes[middle + 1]:g}"]
    page.fill("#charts-strategies", ", ".join(chosen))
    page.fill("#charts-strikes", f"{strikes[middle]:g} {strikes[middle + 3]:g}")
    page.fill("#charts-from", "09:16")
    page.fill("#charts-to", "09:19")
    page.fill("#charts-window", "3")
    page.select_option("#charts-oi-mode", "change")
    page.click("#charts-form button[type=submit]")
    _drawn(page, f"NIFTY {DAY} {other['expiry']}", drawn)
    paths = _check_all(base, tab)
    assert paths["straddle"].endswith("".join(f"&s={s}" for s in chosen))
    assert "&from=09%3A16&to=09%3A19" in paths["oi"]
    assert paths["oichange"].endswith(
        f"&strikes={strikes[middle]:g}&strikes={strikes[middle + 3]:g}"
    )
    assert f"expiry={other['expiry']}" in paths["oi"]
    assert paths["corr"].endswith("window=3")

    # a strike never recorded: the panel says what the API said
    page.fill("#charts-strategies", "1")
    page.click("#charts-form button[type=submit]")
    message = page.locator("#charts-straddle > .panel-msg")
    message.wait_for(state="visible")
    assert message.inner_text() == (
        f"Straddles: strike 1 of NIFTY {other['expiry']} was not recorded on {DAY}"
    )
    # no live session here: /health is 503 and the live panels' reads 404, as the charts' was
    tab.check_no_errors(allowed=r"^console error: Failed to load resource: .* status of (404|503)")
