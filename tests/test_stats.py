"""The per-bucket analytics file, checked against the raw legs it was computed from, across two
days (OI change since the close, IV rank over earlier closes), and the jump flags."""

import asyncio
import csv
import math
from collections import deque
from datetime import date, datetime, timedelta
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
from opchain.merge.stats import ANOMALY_WINDOW, BucketStats, History
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


def test_a_jump_in_the_straddle_is_flagged(session_open: datetime) -> None:
    """Thirty-one calm cycles, then the straddle moves by ten times its usual change."""
    clock = VirtualClock(session_open + timedelta(minutes=30))
    broker = SimBroker(clock)

    async def snap() -> tuple[list[BucketStats], History]:
        from opchain.collect.cycle import Collector
        from opchain.collect.watch import plan_watches

        watches, _ = plan_watches(await broker.instruments(), ("NIFTY",), clock.now())
        collector = Collector(broker, clock, watches, range(-2, 3))
        snapshot = await collector.snapshot(clock.now())
        return merge(snapshot)[1], History()

    rows, history = asyncio.run(snap())
    row = rows[0]
    rng = np.random.default_rng(3)
    calm = row.straddle + np.cumsum(rng.choice([-0.1, -0.05, 0.05, 0.1], ANOMALY_WINDOW + 1))
    ivs = row.atm_iv + np.cumsum(rng.normal(0, 2e-4, ANOMALY_WINDOW + 1))
    key = (row.index, row.bucket)
    for straddle, expected in ((calm[-1] + 0.1, ""), (calm[-1] + 2.0, "straddle")):
        history.recent[key] = deque(zip(ivs.tolist(), calm.tolist(), strict=True))
        moved = row._replace(straddle=straddle, atm_iv=float(ivs[-1]))
        assert _flags(moved, history) == expected


def _flags(row: BucketStats, history: History) -> str:
    from opchain.merge.stats import _jumps  # the flagging step alone, on a given row

    return _jumps([history.recent[row.index, row.bucket]], [row])[0]


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
        (float(r["atm_iv"]), float(r["straddle"]))
        for r in rows
        if datetime.fromisoformat(r["ts"]) <= until.astimezone(IST)
    ][-(ANOMALY_WINDOW + 1) :]
    assert list(reloaded) == kept and len(kept) == ANOMALY_WINDOW + 1
