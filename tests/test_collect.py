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


def _collect(
    broker: ScriptedBroker, clock: VirtualClock, cycles: int, full_chain: bool = False
) -> list[Snapshot]:
    async def go() -> list[Snapshot]:
        dump = await broker.instruments()
        watches, warnings = plan_watches(dump, ("NIFTY", "BANKNIFTY", "SENSEX"), clock.now())
        assert warnings == []
        collector = Collector(broker, clock, watches, range(-2, 3), full_chain=full_chain)
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
    for chain in (c for s in snaps for c in s.chains):
        assert {(leg.offset, leg.side) for leg in chain.legs} >= {
            (o, side) for o in range(-2, 3) for side in ("CE", "PE")
        }
    assert set(snaps[0].indices) == {"NIFTY", "BANKNIFTY", "SENSEX", "INDIAVIX"}


def test_far_expiries_get_the_strikes_around_their_forward(session_open: datetime) -> None:
    """A two-month forward lies strikes above the spot's ATM: from the second cycle on, the
    slice also holds priced strikes on both sides of it (for the ATM IV), in the same one call."""
    clock = VirtualClock(session_open)
    broker = ScriptedBroker(clock, {})
    snaps = _collect(broker, clock, 5)
    assert len(broker.calls) == 6
    beyond = 0
    for snap in snaps[1:]:
        for chain in snap.chains:
            priced = {leg.strike: leg.price for leg in chain.legs if leg.side == "CE"}
            puts = {leg.strike: leg.price for leg in chain.legs if leg.side == "PE"}
            at = chain.atm_strike
            forward = at + priced[at] - puts[at]  # type: ignore[operator]
            strikes = [k for k, p in priced.items() if k is not None and p is not None]
            assert min(strikes) <= forward <= max(strikes), (chain.index, chain.bucket)
            beyond += forward > at + 2 * (sorted(strikes)[1] - sorted(strikes)[0])
    assert beyond > 0  # some forward did lie past the watched offsets


def test_full_chain_quotes_every_listed_strike(session_open: datetime) -> None:
    clock = VirtualClock(session_open)
    broker = ScriptedBroker(clock, {})
    snaps = _collect(broker, clock, 2, full_chain=True)
    dump = asyncio.run(broker.instruments())
    watches, _ = plan_watches(dump, ("NIFTY", "BANKNIFTY", "SENSEX"), session_open)
    listed = {(w.index, w.bucket): set(w.strikes) for w in watches}
    for chain in snaps[-1].chains:
        assert {leg.strike for leg in chain.legs} == listed[chain.index, chain.bucket]
        assert all(leg.quote is not None for leg in chain.legs)  # far strikes may not trade
    # Buckets that share an expiry (NIFTY's this_week is also its this_month) share contracts.
    keys = {leg.instrument.key for c in snaps[-1].chains for leg in c.legs if leg.instrument}
    assert len(keys) > 2_000
    batch = broker.max_quote_batch
    first = 1 + -(-len(keys) // batch)  # the index levels, then every leg
    assert len(broker.calls) == first + -(-(len(keys) + 4) // batch)


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
