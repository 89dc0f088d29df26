"""The per-bucket analytics file, checked against the raw legs it was computed from, across two
days (OI change since the close, IV rank over earlier closes), and the jump flags."""

import asyncio
import csv
import math
from collections import deque
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from opchain.analytics.history import iv_percentile, iv_rank
from opchain.analytics.oi import max_pain, oi_walls
from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.merge.rows import merge
from opchain.merge.stats import ANOMALY_WINDOW, BucketStats
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings
from opchain.store.stats import COLUMNS, format_stats, iv30_closes

from .sessions import DAY

BEFORE = date(2026, 11, 19)  # the session before DAY


def record_day(data_dir: Path, day: date, minutes: int, **overrides: object) -> SessionReport:
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    until = session.open + timedelta(minutes=minutes)
    return asyncio.run(record_session(settings, broker, clock, day, until=until))


def stats_rows(data_dir: Path, index: str, bucket: str, day: date) -> list[dict[str, str]]:
    path = data_dir / "analytics" / index / bucket / f"{day}.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def raw_legs(data_dir: Path, day: date, index: str) -> list[dict[str, object]]:
    table = pq.read_table(data_dir / "raw" / f"date={day}" / f"index={index}")
    return [r for r in table.to_pylist() if r["flag"] != "not_listed"]


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two_days")
    record_day(root, BEFORE, 20, full_chain=True)
    record_day(root, DAY, 10, full_chain=True)
    return root


def test_each_row_is_the_analytics_of_the_raw_legs_of_its_cycle(two_days: Path) -> None:
    legs = raw_legs(two_days, DAY, "SENSEX")
    rows = stats_rows(two_days, "SENSEX", "next_month", DAY)
    assert len(rows) == 20  # ten minutes at 30 s
    for row in rows[::5]:
        ts = datetime.fromisoformat(row["ts"])
        mine = [g for g in legs if g["ts"] == ts and g["bucket"] == "next_month"]
        oi: dict[tuple[float, str], int] = {(g["strike"], g["side"]): g["oi"] for g in mine}  # type: ignore[misc]
        strikes = sorted({k for k, _ in oi})
        assert int(row["strikes"]) == len(strikes) > 100
        call = np.array([oi.get((k, "CE"), 0) for k in strikes], dtype=float)
        put = np.array([oi.get((k, "PE"), 0) for k in strikes], dtype=float)
        assert float(row["pcr_oi"]) == pytest.approx(put.sum() / call.sum(), abs=5e-5)
        assert float(row["max_pain"]) == max_pain(strikes, call, put)
        walls = oi_walls(strikes, call, put, float(row["spot"]), top=1)
        assert float(row["call_wall"]) == walls.resistance[0]
        assert float(row["put_wall"]) == walls.support[0]
        forward = float(row["forward"])
        nearest = min(strikes, key=lambda k: abs(k - forward))
        price = {(g["strike"], g["side"]): g["last_price"] for g in mine}
        assert float(row["straddle"]) == pytest.approx(
            price[nearest, "CE"] + price[nearest, "PE"],
            abs=0.005,  # type: ignore[operator]
        )
        assert float(row["gex"]) != 0 and math.isfinite(float(row["zero_gamma"]))
        assert 0.05 < float(row["atm_iv"]) < 0.6 and 0.05 < float(row["iv30"]) < 0.6


def test_oi_change_is_against_the_previous_close(two_days: Path) -> None:
    before = raw_legs(two_days, BEFORE, "NIFTY")
    last = max(g["ts"] for g in before)  # type: ignore[type-var]
    close = {(g["expiry"], g["strike"], g["side"]): g["oi"] for g in before if g["ts"] == last}
    legs = raw_legs(two_days, DAY, "NIFTY")
    row = stats_rows(two_days, "NIFTY", "next_week", DAY)[-1]
    ts = datetime.fromisoformat(row["ts"])
    changes = {"CE": 0, "PE": 0}
    for g in legs:
        key = (g["expiry"], g["strike"], g["side"])
        if g["ts"] == ts and g["bucket"] == "next_week" and key in close:
            changes[g["side"]] += g["oi"] - close[key]  # type: ignore[index, operator]
    assert int(row["call_oi_change"]) == changes["CE"] != 0
    assert int(row["put_oi_change"]) == changes["PE"] != 0
    first_day = stats_rows(two_days, "NIFTY", "next_week", BEFORE)
    assert first_day[-1]["call_oi_change"] == ""  # nothing recorded before the first day


def test_iv_rank_is_against_earlier_closes(two_days: Path) -> None:
    closes = iv30_closes(two_days / "analytics", "BANKNIFTY", DAY)
    yesterday = stats_rows(two_days, "BANKNIFTY", "this_month", BEFORE)[-1]
    assert closes == [float(yesterday["iv30"])]
    assert iv30_closes(two_days / "analytics", "BANKNIFTY", BEFORE) == []
    for row in stats_rows(two_days, "BANKNIFTY", "this_month", DAY):
        iv30 = float(row["iv30"])
        assert float(row["iv_rank"]) == round(iv_rank(iv30, closes), 2)
        assert float(row["iv_percentile"]) == round(iv_percentile(iv30, closes), 2)
    ranks = {row["iv_rank"] for row in stats_rows(two_days, "BANKNIFTY", "next_month", DAY)}
    assert ranks <= {"0.0", "100.0"}  # one earlier close: today is either the low or the high


def calm_bucket(session_open: datetime) -> tuple[BucketStats, float]:
    """A real NIFTY this_week row from the simulator, and its years to expiry."""
    clock = VirtualClock(session_open + timedelta(minutes=30))
    broker = SimBroker(clock)

    async def snap() -> list[BucketStats]:
        from opchain.collect.cycle import Collector
        from opchain.collect.watch import plan_watches

        watches, _ = plan_watches(await broker.instruments(), ("NIFTY",), clock.now())
        collector = Collector(broker, clock, watches, range(-2, 3))
        return merge(await collector.snapshot(clock.now()))[1]

    row = next(r for r in asyncio.run(snap()) if r.bucket == "this_week")
    expiry = datetime.combine(date.fromisoformat(row.expiry), time(15, 30), IST)
    return row, (expiry - clock.now()).total_seconds() / (365 * 86_400)


def flags_after(
    row: BucketStats,
    years: float,
    straddles: list[float],
    moved: float,
    forward: float,
    now: float | None = None,
) -> str:
    """The flags of ``row`` with its straddle ``moved`` from the last of ``straddles``, after
    cycles with those straddles at ``forward`` (the IV steady); the forward is ``now``
    (default: unchanged) at the row."""
    from opchain.merge.stats import _jumps  # the flagging step alone, on a given row

    rng = np.random.default_rng(3)
    ivs = (row.atm_iv + np.cumsum(rng.normal(0, 1e-5, len(straddles)))).round(6).tolist()
    before = deque((iv, straddle, forward) for iv, straddle in zip(ivs, straddles, strict=True))
    latest = row._replace(
        straddle=straddles[-1] + moved, atm_iv=ivs[-1], forward=forward if now is None else now
    )
    return _jumps([before], [latest], np.array([years]), np.array([ivs[-1]]))[0]


def test_a_two_rupee_straddle_move_is_no_jump(session_open: datetime) -> None:
    """Thirty-one calm cycles (the straddle ticking by 5 to 10 paise), then a move of two
    rupees: twenty times its usual change, but 0.7 % of a 290 straddle, so no jump (it was
    flagged before). Ten rupees (3.4 %) is one."""
    row, years = calm_bucket(session_open)
    rng = np.random.default_rng(3)
    steps = rng.choice([-0.1, -0.05, 0.05, 0.1], ANOMALY_WINDOW + 1)
    calm = (290.0 + np.cumsum(steps)).round(2).tolist()
    assert flags_after(row, years, calm, 0.1, row.forward) == ""
    assert flags_after(row, years, calm, 2.0, row.forward) == ""
    assert flags_after(row, years, calm, 10.0, row.forward) == "straddle"
    assert flags_after(row, years, calm, -10.0, row.forward) == "straddle"


def test_a_strike_roll_or_the_forward_s_own_move_is_no_jump(session_open: datetime) -> None:
    """The same ten rupees are no jump when the forward crossed to another strike (it is
    another straddle), nor in the last minutes before expiry when the forward moved 30 points
    (the straddle is then mostly intrinsic value and follows the forward)."""
    row, years = calm_bucket(session_open)
    steps = np.random.default_rng(4).choice([-0.1, -0.05, 0.05, 0.1], ANOMALY_WINDOW + 1)
    calm = (290.0 + np.cumsum(steps)).round(2).tolist()
    forward = round(row.forward / 50) * 50 + 20.0
    assert flags_after(row, years, calm, 10.0, forward) == "straddle"
    # six points on, the strike nearest the forward is 50 higher: another straddle
    assert flags_after(row, years, calm, 10.0, forward, now=forward + 6) == ""
    minutes = 10 / (365 * 24 * 60)
    assert flags_after(row, years, calm, 10.0, forward, now=forward - 30) == "straddle"
    assert flags_after(row, minutes, calm, 10.0, forward, now=forward - 30) == ""


def test_format_writes_integers_blanks_and_rounded_values() -> None:
    nan = math.nan
    row = BucketStats(
        "2026-11-20T09:15:00+05:30", "NIFTY", "this_week", "2026-11-23", 5, 26000.05,
        26010.123, 0.1234567, 0.8, nan, 26000.0, 290.123, 1.1157, 123456789.6, nan,
        26100.0, 25900.0, -1500.0, 2250.0, 0.13, np.float64(45.678), nan, "straddle",
    )  # fmt: skip
    assert format_stats(row) == (
        "2026-11-20T09:15:00+05:30,NIFTY,this_week,2026-11-23,5,26000.05,26010.12,0.123457,"
        "0.8,,26000.0,290.12,1.1157,123456790,,26100.0,25900.0,-1500,2250,0.13,45.68,,straddle"
    )


def test_resumed_history_equals_the_kept_one(tmp_path: Path) -> None:
    """Jump flags need the day's earlier cycles: a run resumed mid-day reloads them from the
    file, so it writes what an uninterrupted run writes (the crash test compares whole trees)."""
    from opchain.store.stats import recent_cycles

    record_day(tmp_path, DAY, 25)
    session = calendar.session("NSE", DAY)
    assert session is not None
    until = session.open + timedelta(minutes=20)
    reloaded = recent_cycles(tmp_path / "analytics", "NIFTY", "this_week", DAY, until)
    rows = stats_rows(tmp_path, "NIFTY", "this_week", DAY)
    kept = [
        (float(r["atm_iv"]), float(r["straddle"]), float(r["forward"]))
        for r in rows
        if datetime.fromisoformat(r["ts"]) <= until.astimezone(IST)
    ][-(ANOMALY_WINDOW + 1) :]
    assert list(reloaded) == kept and len(kept) == ANOMALY_WINDOW + 1
