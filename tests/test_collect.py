"""Collection: validation reasons, one quote call per cycle, bad quotes isolated."""

import asyncio
import math
from datetime import datetime, timedelta

import pytest

from opchain.collect.cycle import Collector
from opchain.collect.validate import validate
from opchain.collect.watch import Watch, plan_watches
from opchain.market.clock import VirtualClock
from opchain.model import DepthLevel, Quote, Snapshot

from .sessions import ScriptedBroker

NOW = datetime.fromisoformat("2026-11-20T10:00:00+05:30")


def quote(**changes: object) -> Quote:
    base = Quote(
        1, NOW, NOW, 100.0, 65, 99.0, 6500, 100, 100, 650, 700, 600, 95.0, 110.0, 90.0, 98.0,
        (DepthLevel(99.95, 65, 1),), (DepthLevel(100.05, 65, 1),),
    )  # fmt: skip
    return base._replace(**changes)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"last_price": math.nan}, "nan_price"),
        ({"last_price": -1.0}, "negative_price"),
        ({"last_price": 0.0}, "no_trade"),
        ({"bids": (DepthLevel(100.1, 65, 1),)}, "crossed_book"),
        ({"bids": ()}, "missing_side"),
        ({"asks": (DepthLevel(0.0, 0, 0),)}, "missing_side"),
        ({"timestamp": NOW - timedelta(minutes=5)}, "stale"),
    ],
)
def test_validation_reasons(changes: dict[str, object], reason: str | None) -> None:
    assert validate(quote(**changes), NOW) == reason


def test_missing_quote() -> None:
    assert validate(None, NOW) == "missing"


def _collect(broker: ScriptedBroker, clock: VirtualClock, cycles: int) -> list[Snapshot]:
    async def go() -> list[Snapshot]:
        dump = await broker.instruments()
        watches, warnings = plan_watches(dump, ("NIFTY", "BANKNIFTY", "SENSEX"), clock.now())
        assert warnings == []
        collector = Collector(broker, clock, watches, range(-2, 3))
        snaps = []
        for k in range(cycles):
            ts = clock.now() + timedelta(seconds=30 * (k > 0))
            await clock.sleep_until(ts)
            snaps.append(await collector.snapshot(ts))
        return snaps

    return asyncio.run(go())


def test_one_call_per_cycle_after_the_first(session_open: datetime) -> None:
    clock = VirtualClock(session_open)
    broker = ScriptedBroker(clock, {})
    snaps = _collect(broker, clock, 20)
    assert len(broker.calls) == 21
    assert max(broker.calls) <= broker.max_quote_batch
    assert all(len(s.chains) == 10 for s in snaps)
    assert all(len(c.legs) == 10 for s in snaps for c in s.chains)
    assert set(snaps[0].indices) == {"NIFTY", "BANKNIFTY", "SENSEX", "INDIAVIX"}


def test_a_bad_quote_costs_nobody_else(session_open: datetime) -> None:
    clock = VirtualClock(session_open)
    probe = _collect(ScriptedBroker(clock, {}), clock, 1)[0]
    nifty = next(c for c in probe.chains if c.index == "NIFTY" and c.bucket == "next_week")
    atm_call = next(leg for leg in nifty.legs if leg.offset == 0 and leg.side == "CE")
    assert atm_call.instrument is not None
    key = atm_call.instrument.key

    clock = VirtualClock(session_open)
    damaged = _collect(ScriptedBroker(clock, {key: None}), clock, 1)[0]
    chain = next(c for c in damaged.chains if c.index == "NIFTY" and c.bucket == "next_week")
    flags = {(leg.offset, leg.side): leg.flag for leg in chain.legs}
    assert flags.pop((0, "CE")) == "missing"
    assert set(flags.values()) == {None}


def test_a_bad_index_level_skips_only_that_index(session_open: datetime) -> None:
    clock = VirtualClock(session_open)
    broker = ScriptedBroker(clock, {"NSE:NIFTY BANK": quote(last_price=math.nan)})
    snap = _collect(broker, clock, 1)[0]
    assert {c.index for c in snap.chains} == {"NIFTY", "SENSEX"}
    assert "BANKNIFTY" not in snap.indices


def test_offsets_past_the_listed_strikes_are_flagged_not_listed(session_open: datetime) -> None:
    clock = VirtualClock(session_open)
    broker = ScriptedBroker(clock, {})
    dump = asyncio.run(broker.instruments())
    watches, _ = plan_watches(dump, ("NIFTY",), session_open)
    narrow = [Watch(w.index, w.bucket, w.expiry, w.strikes[-2:], w.contracts) for w in watches]
    collector = Collector(broker, clock, narrow, range(-2, 3))
    snap = asyncio.run(collector.snapshot(session_open))
    legs = [leg for c in snap.chains for leg in c.legs]
    assert {leg.flag for leg in legs if leg.strike is None} == {"not_listed"}
    listed = [leg for leg in legs if leg.strike is not None]
    assert listed and all(leg.flag != "not_listed" and leg.quote is not None for leg in listed)
