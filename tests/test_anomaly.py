"""Jump flags that mean something: the simulator's days without jumps and with jumps of a
known size and time, a whole jump-free day within the false-flag rate of BENCHMARKS.md, and an
injected jump of the size BENCHMARKS.md calls catchable caught in every bucket."""

import asyncio
import math
import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.analytics.black76 import black76_price
from opchain.analytics.history import straddle_move_bound
from opchain.brokers.sim import Jump, SimBroker, SimMarket
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle
from opchain.model import SplitRow
from opchain.pipeline import record_session
from opchain.profiles.minutes import SESSION_MINUTES
from opchain.settings import Settings
from opchain.store import eod
from opchain.store.splits import COLUMNS, format_row

DAY = date(2026, 11, 16)  # a Monday: no NIFTY expiry that day
# BENCHMARKS.md, "Jump flags": at most this many false flags per bucket and day on days
# without jumps, and a jump of the options' vols of this size (of the IV) caught everywhere
FALSE_FLAGS_PER_BUCKET_DAY = 0.1
CATCHABLE = 0.03


def test_the_default_market_keeps_its_jumps_and_a_day_without_them_differs_only_there() -> None:
    default = SimMarket(1, DAY, 0.0)
    calm = SimMarket(1, DAY, 0.0, jumps=())
    again = SimMarket(1, DAY, 0.0, jumps=None)
    assert np.array_equal(default.paths, again.paths)
    steps = np.diff(np.log(default.paths[:3]), axis=-1)
    calm_steps = np.diff(np.log(calm.paths[:3]), axis=-1)
    differ = np.flatnonzero(~np.isclose(steps[0], calm_steps[0], rtol=0, atol=1e-12))
    assert 0 < len(differ) < 10  # the model's rare jumps, and nothing else
    assert np.allclose(np.delete(steps, differ, axis=-1), np.delete(calm_steps, differ, axis=-1))


def test_an_injected_jump_has_its_size_and_time() -> None:
    calm = SimMarket(1, DAY, 0.0, jumps=())
    noise = calm.noise(5_000, 30)
    jumped = SimMarket(1, DAY, 0.0, jumps=[Jump(5_000, spot=10 * noise)])
    extra = np.diff(np.log(jumped.paths[0])) - np.diff(np.log(calm.paths[0]))
    assert np.flatnonzero(np.abs(extra) > 1e-12).tolist() == [4_999]  # into second 5,000
    assert extra[4_999] == pytest.approx(10 * noise)  # NIFTY takes the whole market move
    assert 1e-4 < noise < 2e-3  # a 30 s move of the index: a few basis points
    # every option's vol is 5 % higher from second 9,000 on, and INDIA VIX with them: the
    # call nearest the money, about proportional to its vol, is worth some 5 % more; a second
    # earlier nothing has changed
    spot = float(calm.paths[0, 9_000])
    calls = [i for i in calm.instruments if i.name == "NIFTY" and i.instrument_type == "CE"]
    near = min(i.expiry for i in calls if i.expiry)
    key = min((i for i in calls if i.expiry == near), key=lambda i: abs(i.strike - spot)).key
    vol = SimMarket(1, DAY, 0.0, jumps=[Jump(9_000, vol=0.05)])
    assert np.array_equal(vol.paths[:3], calm.paths[:3])  # the indices do not move
    vix = vol.paths[-1] / calm.paths[-1]
    assert np.allclose(vix[:9_000], 1.0) and np.allclose(vix[9_000:], math.exp(0.05))
    for second, factor in ((8_999, 1.0), (9_000, math.exp(0.05))):
        moment = calm.open_at + timedelta(seconds=second)
        before, after = calm.quotes([key], moment)[key], vol.quotes([key], moment)[key]
        assert before.last_price > 0
        assert after.last_price / before.last_price == pytest.approx(factor, abs=0.01)


def record_day(
    tmp_path: Path, jumps: list[Jump], until: datetime | None = None
) -> dict[tuple[str, str], dict[datetime, str]]:
    """The NIFTY analytics flags of DAY at 30 s, per bucket and cycle."""
    session = calendar.session("NSE", DAY)
    assert session is not None
    flags: dict[tuple[str, str], dict[datetime, str]] = {}

    def seen(cycle: Cycle) -> None:
        for row in cycle.stats:
            flags.setdefault((row.index, row.bucket), {})[datetime.fromisoformat(row.ts)] = (
                row.anomaly
            )

    settings = Settings(data_dir=tmp_path, indices=("NIFTY",), durable_writes=False)
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, 1, settings.sim_glitch_rate, jumps=jumps)
    asyncio.run(record_session(settings, broker, clock, DAY, on_cycle=seen, until=until))
    return flags


def test_a_day_without_jumps_stays_under_the_false_flag_rate(tmp_path: Path) -> None:
    """On main: 101 flags in these four bucket-days (a straddle crossing between strikes, or
    moving a rupee or two after a calm quarter hour); none now."""
    flags = record_day(tmp_path, [])
    assert len(flags) == 4 and all(len(rows) == 750 for rows in flags.values())
    found = [(key, ts, f) for key, rows in flags.items() for ts, f in rows.items() if f]
    assert len(found) <= FALSE_FLAGS_PER_BUCKET_DAY * len(flags), found


def test_a_jump_of_the_catchable_size_is_caught_in_every_bucket(tmp_path: Path) -> None:
    """The options' vols jump by CATCHABLE at 11:40:10: the 11:40:30 row of every bucket
    flags its ATM IV (and its straddle where the forward stayed nearest the same strike), and
    no other row of the morning flags anything."""
    second = 2 * 3600 + 25 * 60 + 10
    at = datetime.fromisoformat("2026-11-16T11:40:30+05:30")
    jump = [Jump(second, vol=math.log1p(CATCHABLE))]
    flags = record_day(tmp_path, jump, until=at + timedelta(minutes=3))
    assert len(flags) == 4
    for key, rows in flags.items():
        assert rows[at] in ("atm_iv", "atm_iv straddle"), key
        assert [ts for ts, f in rows.items() if f] == [at], key
    assert flags["NIFTY", "next_week"][at] == "atm_iv straddle"


def test_the_eod_report_keeps_to_moves_of_some_size(tmp_path: Path) -> None:
    """A straddle ticking by five paise for half an hour, then moving by 1 % (a rupee and a
    half, some thirty times its usual change: an outlier on main) and later by 5 %: only
    the 5 % minute is an outlier."""
    rng = random.Random(7)
    open_ = datetime.combine(DAY, time(9, 15), IST)
    lines = [",".join(COLUMNS)]
    total = 150.0
    for k, _ in enumerate(SESSION_MINUTES):
        total += rng.choice([-0.05, 0.0, 0.05]) + {60: 1.5, 200: 7.5}.get(k, 0.0)
        call = round(total / 2, 2)
        row = SplitRow(
            open_ + timedelta(minutes=k), "NIFTY", "this_week", DAY, "atm", 26_000.0,
            26_000.0, 26_000.0, 26_000.0, call, round(total - call, 2), None, None, 1, 1, 1,
            1, round(total, 2), 1,
        )  # fmt: skip
        lines.append(format_row(row))
    path = tmp_path / "NIFTY" / "this_week" / "atm" / f"{DAY}.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    (score,) = eod.quality(tmp_path, DAY)
    assert score.outliers == (SESSION_MINUTES[200],)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.05, 0.6),  # vol
    st.floats(0.2, 60.0),  # days to expiry
    st.floats(-0.5, 0.5),  # where the forward sits between strikes, in steps
    st.floats(-0.02, 0.02),  # the forward's move, relative
)
def test_the_bound_holds_for_any_move_of_the_forward(
    vol: float, days: float, place: float, move: float
) -> None:
    """A straddle at the strike nearest the forward, repriced with Black-76 after the forward
    moves (vol unchanged), moves by no more than ``straddle_move_bound`` (the discount and a
    second-order term in the move aside: 1 % slack)."""
    step, t = 50.0, days / 365
    strike = 26_000.0
    forward = strike + place * step
    moved = forward * (1 + move)
    before, after = (
        float(black76_price(f, strike, t, vol, True) + black76_price(f, strike, t, vol, False))
        for f in (forward, moved)
    )
    bound = float(straddle_move_bound(moved - forward, forward, vol, t, step))
    assert abs(after - before) <= bound * 1.01 + 1e-9
