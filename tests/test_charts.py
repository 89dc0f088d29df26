"""The charts (``history.charts`` and ``/charts/{index}/...``).

A small day is written by hand as the raw store holds one (a part and, for its last cycle, the
journal of a window being recorded), so every premium, VWAP and OI change below is worked out
here in the comments. The PCR, max pain and VIX charts are checked against a recorded
stretch of the simulated session, its files read here with the csv module and the
correlation with numpy; the rolling ATM straddle of that day against its split files."""

import csv
import math
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

from opchain.api.app import create_app
from opchain.history import charts
from opchain.history.charts import ChartError, Strategy
from opchain.market.clock import VirtualClock
from opchain.market.ist import at
from opchain.settings import Settings
from opchain.store import layout
from opchain.store import rawparts as parts
from opchain.store.journal import Journal

from .apidata import KEY, recorded
from .apiserver import running
from .sessions import DAY

EXPIRY = date(2026, 11, 24)
T0, T1, T2 = (at(DAY, time(9, 15)), at(DAY, time(9, 15, 30)), at(DAY, time(9, 30)))
# (strike, side): per cycle T0, T1, T2 (last price, cumulative volume, OI); ATM 100, 110, 110
LEGS: dict[tuple[float, str], list[tuple[float | None, int | None, int | None]]] = {
    (100.0, "CE"): [(10.00, 1000, 5000), (11.00, 1500, 5100), (11.03, 1400, 5300)],
    (100.0, "PE"): [(5.00, 200, 3000), (4.50, 700, 2900), (6.00, 1700, 2800)],
    (110.0, "CE"): [(4.00, 50, 100), (4.55, 50, 120), (0.0, None, 150)],  # T2: untraded
    (110.0, "PE"): [(12.05, 10, 700), (10.10, 30, None), (11.00, 40, 650)],
}
ATM = [100.0, 110.0, 110.0]
HEADERS = {"X-API-Key": KEY}


def _rows(day: date, cycles: list[tuple[int, datetime]]) -> pa.Table:
    rows = []
    for i, ts in cycles:
        for (strike, side), values in LEGS.items():
            last, volume, oi = values[i]
            stamp = ts.replace(year=day.year, month=day.month, day=day.day)
            rows.append(
                {"ts": stamp, "received_at": stamp, "bucket": "this_week", "expiry": EXPIRY,
                 "offset": 0, "side": side, "strike": strike, "last_price": last,
                 "volume": volume, "oi": oi, "atm_strike": ATM[i], "spot": ATM[i]}
            )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=parts.FILE_SCHEMA)


def write_day(data: Path, day: date = DAY, journal: bool = True) -> None:
    """T0 and T1 in the part of the 09:15 window; T2 in the journal of the 09:30 window (the
    day still being recorded), or in a part of its own."""
    folder = layout.raw_folder(layout.raw_root(data), day, "NIFTY")
    folder.mkdir(parents=True)
    parts.write_part(folder / "part-0915.parquet", _rows(day, [(0, T0), (1, T1)]))
    last = _rows(day, [(2, T2)])
    if journal:
        writer = Journal(parts.journal_path(folder, T2), parts.FILE_SCHEMA)
        for batch in last.to_batches():
            writer.append(batch)
        writer.close()
    else:
        parts.write_part(folder / "part-0930.parquet", last)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_day(tmp_path)
    return tmp_path


def _raw(data: Path) -> Path:
    return layout.raw_root(data)


# ------------------------------------------------------------------------------ straddles


def test_straddle_strangle_and_rolling_atm_worked_by_hand(data: Path) -> None:
    found = charts.straddles(
        _raw(data), DAY, "NIFTY", None, [Strategy(100.0, 100.0), Strategy(100.0, 110.0)]
    )
    assert (found.expiry, found.bucket, found.ts) == (EXPIRY, "this_week", [T0, T1, T2])
    straddle, strangle = found.strategies
    assert (straddle.label, straddle.kind) == ("100 straddle", "straddle")
    # 10.00+5.00, 11.00+4.50, 11.03+6.00
    assert straddle.premium == [15.00, 15.50, 17.03]
    # weights: T0 none (the first cycle); T1 (1500-1000)+(700-200) = 1000; T2 the CE's volume
    # fell (no volume) + the PE's 1700-700 = 1000: (15.50×1000 + 17.03×1000)/2000 = 16.265,
    # half up to the paisa (not to the even one)
    assert straddle.vwap == [None, 15.50, 16.27]
    assert (strangle.label, strangle.kind) == ("100PE/110CE strangle", "strangle")
    assert (strangle.put_strike, strangle.call_strike) == (100.0, 110.0)
    # 5.00+4.00, 4.50+4.55, 6.00 + an untraded CE (0): no premium
    assert strangle.premium == [9.00, 9.05, None]
    # T1: PE 500 + CE 0; T2 has no premium, so no weight: the VWAP stays
    assert strangle.vwap == [None, 9.05, 9.05]
    atm = found.atm
    assert (atm.kind, atm.strike) == ("rolling", ATM)
    # T0 the 100 straddle; T1 the 110's 4.55+10.10 weighted by the 110 legs' own volume since
    # their last recorded cycle (T0, when they were not ATM): CE 0 + PE 20; T2 the CE untraded
    assert atm.premium == [15.00, 14.65, None]
    assert atm.vwap == [None, 14.65, 14.65]


def test_a_finished_day_reads_the_same_as_one_being_recorded(tmp_path: Path) -> None:
    live, done = tmp_path / "live", tmp_path / "done"
    write_day(live, journal=True)
    write_day(done, journal=False)
    pick = [Strategy(100.0, 100.0)]
    assert charts.straddles(_raw(live), DAY, "NIFTY", None, pick) == charts.straddles(
        _raw(done), DAY, "NIFTY", None, pick
    )


@pytest.mark.parametrize(
    ("expiry", "chosen", "day", "message"),
    [
        (None, [Strategy(100.0, 100.0)] * 7, DAY, "at most 6 strategies at once, not 7"),
        (date(2026, 11, 25), [], DAY, "expiry 2026-11-25 of NIFTY was not recorded on 2026-11-20"),
        (None, [Strategy(105.0, 110.0)], DAY, "strike 105 of NIFTY 2026-11-24 was not recorded"),
        (None, [], date(2026, 11, 19), "there are no recorded legs of NIFTY on 2026-11-19"),
    ],
)
def test_what_was_not_recorded_is_one_sentence(
    data: Path, expiry: date | None, chosen: list[Strategy], day: date, message: str
) -> None:
    with pytest.raises(ChartError, match=message):
        charts.straddles(_raw(data), day, "NIFTY", expiry, chosen)


# ------------------------------------------------------------------------------------- OI


def test_oi_by_strike_over_the_day_and_over_a_window(data: Path) -> None:
    day = charts.oi_window(_raw(data), DAY, "NIFTY", None)
    assert (day.start, day.end) == (T0, T2)
    assert [vars(r) for r in day.rows] == [
        {"strike": 100.0, "call_oi": 5300, "put_oi": 2800, "call_oi_change": 300,
         "put_oi_change": -200},
        {"strike": 110.0, "call_oi": 150, "put_oi": 650, "call_oi_change": 50,
         "put_oi_change": -50},
    ]  # fmt: skip
    one = charts.oi_window(_raw(data), DAY, "NIFTY", EXPIRY, T1, at(DAY, time(9, 20)))
    assert (one.start, one.end) == (T1, T1)
    assert [(r.call_oi, r.put_oi, r.call_oi_change, r.put_oi_change) for r in one.rows] == [
        (5100, 2900, 0, 0),
        (120, None, 0, None),  # the 110 PE's OI was not reported at T1
    ]
    with pytest.raises(ChartError, match="no cycle of NIFTY was recorded between those times"):
        charts.oi_window(_raw(data), DAY, "NIFTY", None, at(DAY, time(10)), None)


def test_oi_change_from_the_first_cycle_or_the_previous_close(data: Path) -> None:
    found = charts.oi_change(_raw(data), DAY, "NIFTY", None, [100.0, 110.0])
    assert [(s.strike, s.side, s.base, s.base_is, s.change) for s in found.series] == [
        (100.0, "CE", 5000, "first_cycle", [0, 100, 300]),
        (100.0, "PE", 3000, "first_cycle", [0, -100, -200]),
        (110.0, "CE", 100, "first_cycle", [0, 20, 50]),
        (110.0, "PE", 700, "first_cycle", [0, None, -50]),
    ]
    # the day before, recorded: its last window's last OI of each contract is the close
    before = date(2026, 11, 19)
    write_day(data, before, journal=False)
    found = charts.oi_change(_raw(data), DAY, "NIFTY", None, [100.0, 110.0])
    assert [(s.base, s.base_is, s.change) for s in found.series] == [
        (5300, "previous_close", [-300, -200, 0]),
        (2800, "previous_close", [200, 100, 0]),
        (150, "previous_close", [-50, -30, 0]),
        (650, "previous_close", [50, None, 0]),
    ]
    with pytest.raises(ChartError, match="strike 120 of NIFTY 2026-11-24 was not recorded"):
        charts.oi_change(_raw(data), DAY, "NIFTY", None, [120.0])


# ------------------------------------------------------------- a recorded simulated day


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded(tmp_path_factory)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(text: str) -> float | None:
    return float(text) if text else None


def test_rolling_atm_straddle_is_the_split_files(sim: Path) -> None:
    for bucket in ("this_week", "next_month"):
        split = _csv(layout.split_root(sim) / "NIFTY" / bucket / "atm" / f"{DAY}.csv")
        expiry = date.fromisoformat(split[0]["expiry"])
        found = charts.straddles(layout.raw_root(sim), DAY, "NIFTY", expiry, [])
        assert [t.isoformat() for t in found.ts] == [r["ts"] for r in split]
        assert found.atm.strike == [float(r["atm_strike"]) for r in split]
        assert found.atm.premium == [_num(r["total_premium"]) for r in split]
        assert any(v is not None for v in found.atm.vwap)


def test_pcr_and_max_pain_through_the_day_and_across_days(sim: Path, tmp_path: Path) -> None:
    root = layout.analytics_root(sim)
    rows = _csv(layout.analytics_file(root, "NIFTY", "this_week", DAY))
    points = charts.pcr_day(root, "NIFTY", "this_week", DAY)
    assert [(p.ts.isoformat(), p.pcr_oi, p.pcr_volume, p.max_pain) for p in points] == [
        (r["ts"], _num(r["pcr_oi"]), _num(r["pcr_volume"]), _num(r["max_pain"])) for r in rows
    ]
    # two more days: copies of the file, the later one cut short after its third row
    copy = tmp_path / "analytics"
    for day, keep in ((date(2026, 11, 23), len(rows)), (date(2026, 11, 24), 3)):
        target = layout.analytics_file(copy, "NIFTY", "this_week", day)
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = layout.analytics_file(root, "NIFTY", "this_week", DAY).read_text().splitlines()
        shifted = [line.replace(str(DAY), str(day), 1) for line in lines[1 : keep + 1]]
        target.write_text("\n".join([lines[0], *shifted]) + "\n")
    days = charts.pcr_days(copy, "NIFTY", "this_week", date(2026, 11, 21), date(2026, 11, 30))
    assert [(d, p.pcr_oi, p.max_pain) for d, p in days] == [
        (date(2026, 11, 23), _num(rows[-1]["pcr_oi"]), _num(rows[-1]["max_pain"])),
        (date(2026, 11, 24), _num(rows[2]["pcr_oi"]), _num(rows[2]["max_pain"])),
    ]
    with pytest.raises(ChartError, match="no analytics of NIFTY this_week from 2026-12-01"):
        charts.pcr_days(copy, "NIFTY", "this_week", date(2026, 12, 1), date(2026, 12, 31))


def test_atm_iv_and_iv30_against_vix(sim: Path) -> None:
    analytics = layout.analytics_root(sim)
    rows = _csv(layout.analytics_file(analytics, "NIFTY", "this_week", DAY))
    vix = {
        r["ts"]: float(r["last_price"]) for r in _csv(layout.overview_path(sim, "INDIAVIX", DAY))
    }
    window = 3
    found = charts.vix_day(analytics, layout.overview_root(sim), "NIFTY", "this_week", DAY, window)
    assert [t.isoformat() for t in found.ts] == [r["ts"] for r in rows]
    atm = [round(float(r["atm_iv"]) * 100, 4) for r in rows]  # vol points, as VIX
    assert found.atm_iv == atm
    assert found.vix == [vix[r["ts"]] for r in rows]
    assert found.atm_spread == [round(a - vix[r["ts"]], 4) for a, r in zip(atm, rows, strict=True)]
    assert all(10 < v < 20 for v in found.vix if v is not None)  # same units: a few points apart
    assert all(abs(s) < 5 for s in found.atm_spread if s is not None)
    # each minute's last cycle; Pearson's r of the last `window` minute changes
    last: dict[str, int] = {}
    for i, r in enumerate(rows):
        last[r["ts"][:16]] = i
    picked = list(last.values())
    assert [t.isoformat() for t in found.minutes] == [rows[i]["ts"] for i in picked]
    da = np.diff([atm[i] for i in picked])
    dv = np.diff([vix[rows[i]["ts"]] for i in picked])
    expected: list[float | None] = [None] * window
    for end in range(window, len(picked)):
        r = np.corrcoef(da[end - window : end], dv[end - window : end])[0, 1]
        expected.append(None if math.isnan(r) else round(float(r), 4))
    assert len(found.atm_correlation) == len(picked) >= window + 2
    assert found.atm_correlation == pytest.approx(expected, abs=1e-4)
    assert any(v is not None for v in found.atm_correlation)


def test_rolling_correlation_by_hand() -> None:
    # changes: x +1, +2, +3; y +2, +4, +6 (r = 1), then x +1 while y −5
    xs, ys = [0.0, 1.0, 3.0, 6.0, 7.0], [0.0, 2.0, 6.0, 12.0, 7.0]
    assert charts.rolling_correlation(xs, ys, 3)[:4] == [None, None, None, 1.0]
    assert charts.rolling_correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], 2) == [None, None, None]
    assert charts.rolling_correlation([1.0, None, 2.0, 3.0], [1.0, 2.0, 3.0, 5.0], 2)[3] is None


# ------------------------------------------------------------------------------------ API


def _client(data: Path) -> Any:
    config = Settings(data_dir=data, api_keys=KEY, api_burst=10**9, api_rate=10**9)  # type: ignore[arg-type]
    return running(create_app(config, clock=VirtualClock(at(DAY, time(15)))))


@pytest.fixture
def api(data: Path) -> Iterator[httpx.Client]:
    with _client(data) as server, httpx.Client(base_url=server.url, headers=HEADERS) as c:
        yield c


def test_api_straddles_and_oi(api: httpx.Client) -> None:
    answer = api.get("/charts/NIFTY/straddles", params={"s": ["100", "100-110"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["date"], body["expiry"], body["bucket"]) == (str(DAY), str(EXPIRY), "this_week")
    assert body["ts"] == [t.isoformat() for t in (T0, T1, T2)]
    assert [s["vwap"] for s in body["strategies"]] == [[None, 15.5, 16.27], [None, 9.05, 9.05]]
    assert body["atm"]["premium"] == [15.0, 14.65, None]
    oi = api.get("/charts/NIFTY/oi", params={"from": "09:15:30", "to": "09:20"}).json()
    assert (oi["start"], oi["end"]) == (T1.isoformat(), T1.isoformat())
    assert oi["rows"][1] == {
        "strike": 110.0, "call_oi": 120, "put_oi": None, "call_oi_change": 0,
        "put_oi_change": None,
    }  # fmt: skip
    change = api.get("/charts/NIFTY/oi-change", params={"strikes": ["100"]}).json()
    assert [(s["side"], s["base_is"], s["change"]) for s in change["series"]] == [
        ("CE", "first_cycle", [0, 100, 300]),
        ("PE", "first_cycle", [0, -100, -200]),
    ]
    contracts = api.get("/charts/NIFTY/contracts").json()
    assert contracts["days"] == [str(DAY)]
    assert contracts["expiries"] == [
        {"expiry": str(EXPIRY), "bucket": "this_week", "strikes": [100.0, 110.0]}
    ]


def test_api_days_and_the_previous_close(data: Path, api: httpx.Client) -> None:
    write_day(data, date(2026, 11, 19), journal=False)
    contracts = api.get("/charts/NIFTY/contracts").json()
    assert (contracts["date"], contracts["days"]) == (str(DAY), ["2026-11-19", str(DAY)])
    before = api.get("/charts/NIFTY/straddles", params={"date": "2026-11-19", "s": "100"}).json()
    assert before["date"] == "2026-11-19"
    assert before["ts"][0].startswith("2026-11-19T09:15:00")
    change = api.get("/charts/NIFTY/oi-change", params={"strikes": "100"}).json()
    assert [(s["base"], s["base_is"], s["change"]) for s in change["series"]] == [
        (5300, "previous_close", [-300, -200, 0]),
        (2800, "previous_close", [200, 100, 0]),
    ]


@pytest.mark.parametrize(
    ("url", "params", "status", "detail"),
    [
        ("straddles", {"s": ["100"] * 7}, 422, "s: List should have at most 6 items"),
        ("straddles", {"s": "100-"}, 422, "s.0: String should match pattern"),
        ("straddles", {"expiry": "2026-11-25"}, 404, "expiry 2026-11-25 of NIFTY was not"),
        ("straddles", {"s": "105"}, 404, "strike 105 of NIFTY 2026-11-24 was not recorded"),
        ("straddles", {"date": "2026-11-19"}, 404, "there are no recorded legs of NIFTY on"),
        ("oi", {"from": "09:31"}, 404, "no cycle of NIFTY was recorded between those times"),
        ("oi", {"from": "09:31", "to": "09:00"}, 404, "no cycle of NIFTY was recorded"),
        ("oi", {"to": "24:00"}, 422, "to: String should match pattern"),
        ("oi-change", {}, 422, "strikes: Field required"),
        ("oi-change", {"strikes": "120"}, 404, "strike 120 of NIFTY 2026-11-24 was not"),
        ("pcr", {}, 404, "there are no analytics of NIFTY this_week"),
        ("vix", {"window": 1}, 422, "window: Input should be greater than or equal to 2"),
    ],
)
def test_api_bad_input_is_one_clear_line(
    api: httpx.Client, url: str, params: dict[str, Any], status: int, detail: str
) -> None:
    answer = api.get(f"/charts/NIFTY/{url}", params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith(detail)


def test_api_pcr_and_vix_are_the_computed_ones(sim: Path) -> None:
    with _client(sim) as server, httpx.Client(base_url=server.url, headers=HEADERS) as c:
        pcr = c.get("/charts/NIFTY/pcr").json()
        days = c.get("/charts/NIFTY/pcr-days", params={"to": str(DAY)}).json()
        vix = c.get("/charts/NIFTY/vix", params={"window": 3}).json()
    analytics = layout.analytics_root(sim)
    points = charts.pcr_day(analytics, "NIFTY", "this_week", DAY)
    assert pcr["pcr_oi"] == [p.pcr_oi for p in points]
    assert pcr["max_pain"] == [p.max_pain for p in points]
    assert (days["dates"], days["pcr_oi"]) == ([str(DAY)], [points[-1].pcr_oi])
    found = charts.vix_day(analytics, layout.overview_root(sim), "NIFTY", "this_week", DAY, 3)
    assert vix["atm_spread"] == found.atm_spread
    assert vix["atm_correlation"] == found.atm_correlation
    assert vix["minutes"] == [t.isoformat() for t in found.minutes]
