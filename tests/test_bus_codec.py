"""The bus codec: a snapshot comes back exactly (floats bit for bit, datetimes with their zone),
from generated snapshots and from the simulator's band and full-chain cycles; garbage is a
ValueError saying so."""

import asyncio
import contextlib
import math
import struct
import zlib
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opchain.brokers.sim import SimBroker
from opchain.bus.codec import (
    MAGIC,
    decode_loop,
    decode_snapshot,
    encode_loop,
    encode_snapshot,
)
from opchain.collect.cycle import Collector
from opchain.collect.watch import plan_watches
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.model import ChainSlice, DepthLevel, Instrument, Leg, Quote, Snapshot

from .sessions import DAY

NOW = datetime.fromisoformat("2026-11-20T10:00:00+05:30").astimezone(IST)


def same(a: Any, b: Any) -> None:
    """Equal, and more: floats bit for bit (NaN too), datetimes with the same offset and text,
    and the same types all the way down."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b)
    elif isinstance(a, datetime):
        assert a == b and a.utcoffset() == b.utcoffset() and a.isoformat() == b.isoformat()
        assert a.tzname() == b.tzname()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            same(a[key], b[key])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    elif isinstance(a, Snapshot | ChainSlice):
        for name in a.__slots__:
            same(getattr(a, name), getattr(b, name))
    else:
        assert a == b


# Generated snapshots.

INSTRUMENTS = {
    token: Instrument(
        instrument_token=token,
        exchange_token=str(token // 256),
        tradingsymbol=f"NIFTY26N{token}CE",
        name="NIFTY",
        last_price=0.0,
        expiry=date(2026, 11, 24),
        strike=float(token),
        tick_size=0.05,
        lot_size=65,
        instrument_type="CE",
        segment="NFO-OPT",
        exchange="NFO",
    )
    for token in (1, 256, 9_604_354, 2**40)
}

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 101.05])
zones = st.sampled_from(
    [IST, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3), "X")]
)
moments = st.builds(
    lambda micros, zone: (
        datetime(2026, 11, 20, tzinfo=UTC) + timedelta(microseconds=micros)
    ).astimezone(zone),
    st.integers(min_value=-(10**15), max_value=10**15),
    zones,
)
levels = st.builds(DepthLevel, floats, ints, ints)
quotes = st.builds(
    Quote,
    *(
        [ints, st.none() | moments, st.none() | moments, floats, ints, floats]
        + [ints] * 6
        + [floats] * 4
    ),
    st.tuples() | st.lists(levels, max_size=5).map(tuple),
    st.lists(levels, max_size=5).map(tuple),
)
texts = st.text(max_size=12)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
legs = st.builds(
    Leg,
    index=texts,
    bucket=st.sampled_from(["this_week", "next_week", "month"]),
    expiry=days,
    offset=st.integers(-(2**40), 2**40),
    side=st.sampled_from(["CE", "PE"]),
    strike=st.none() | floats,
    instrument=st.none() | st.sampled_from(list(INSTRUMENTS.values())),
    quote=st.none() | quotes,
    flag=st.none() | st.sampled_from(["missing", "stale", "crossed_book", "no_trade", "é"]),
)
chains = st.builds(
    ChainSlice,
    index=texts,
    bucket=texts,
    expiry=days,
    spot=floats,
    atm_strike=floats,
    legs=st.lists(legs, max_size=6).map(tuple),
)
snapshots = st.builds(
    Snapshot,
    ts=moments,
    received_at=moments,
    indices=st.dictionaries(texts, quotes, max_size=4),
    chains=st.lists(chains, max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots)
def test_generated_snapshots_come_back_exactly(snapshot: Snapshot) -> None:
    data = encode_snapshot(snapshot)
    back = decode_snapshot(data, INSTRUMENTS)
    same(back, snapshot)
    if not _has_nan(snapshot):
        assert back == snapshot
    assert encode_snapshot(back) == data


def _has_nan(snapshot: Snapshot) -> bool:
    return "nan" in repr(snapshot)


def test_a_nan_keeps_its_sign_and_payload() -> None:
    odd = struct.unpack("<d", bytes.fromhex("01000000000ff8ff"))[0]  # negative NaN, a payload
    assert math.isnan(odd)
    quote = Quote(1, NOW, None, odd, 0, 0.0, 0, 0, 0, 0, 0, 0, -0.0, 0.0, 0.0, 0.0)
    snapshot = Snapshot(ts=NOW, received_at=NOW, indices={"NIFTY": quote}, chains=())
    same(decode_snapshot(encode_snapshot(snapshot), {}), snapshot)


# Real cycles of the simulator.


async def _cycle(full_chain: bool) -> tuple[Snapshot, dict[int, Instrument]]:
    clock = VirtualClock(NOW)
    broker = SimBroker(clock, glitch_rate=0.05)
    dump = await broker.instruments()
    watches, _ = plan_watches(dump, ("NIFTY", "BANKNIFTY", "SENSEX"), clock.now())
    collector = Collector(broker, clock, watches, range(-5, 6), full_chain=full_chain)
    await collector.snapshot(clock.now())
    ts = clock.now() + timedelta(seconds=30)
    await clock.sleep_until(ts)
    return await collector.snapshot(ts), {i.instrument_token: i for i in dump}


@pytest.mark.parametrize("full_chain", [False, True], ids=["band", "full_chain"])
def test_simulator_cycles_come_back_exactly(full_chain: bool) -> None:
    snapshot, contracts = asyncio.run(_cycle(full_chain))
    assert snapshot.ts.date() == DAY and snapshot.ts.tzinfo is IST
    legs = [leg for chain in snapshot.chains for leg in chain.legs]
    assert len(legs) > (2000 if full_chain else 100)
    assert any(leg.quote is None for leg in legs) or any(leg.flag for leg in legs)
    data = encode_snapshot(snapshot)
    back = decode_snapshot(data, contracts)
    assert back == snapshot
    same(back, snapshot)
    assert back.received_at.isoformat() == snapshot.received_at.isoformat()
    assert all(
        b.instrument is contracts[b.instrument.instrument_token]
        for c in back.chains
        for b in c.legs
        if b.instrument is not None
    )
    assert len(data) < len(zlib.compress(repr(snapshot).encode(), 1)) / 2


def test_an_unknown_instrument_token_is_named() -> None:
    snapshot, contracts = asyncio.run(_cycle(False))
    data = encode_snapshot(snapshot)
    token = next(
        leg.instrument.instrument_token for leg in snapshot.chains[0].legs if leg.instrument
    )
    del contracts[token]
    with pytest.raises(ValueError, match=f"instrument token {token} is not in the day's"):
        decode_snapshot(data, contracts)


# Garbage.


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world",
        MAGIC,
        MAGIC + b"\x00" * 40,
        MAGIC + zlib.compress(b"\x05\x00\x00\x00{}"),
        MAGIC + zlib.compress(b"\xff\xff\xff\x00{}"),
        MAGIC + zlib.compress(b"\x02\x00\x00\x00{}"),
    ],
)
def test_garbage_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="bus snapshot"):
        decode_snapshot(data, INSTRUMENTS)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=10_000))
def test_damaged_snapshots_are_value_errors(noise: bytes, at: int) -> None:
    quote = Quote(1, NOW, NOW, 1.5, 1, 1.0, 1, 1, 1, 1, 1, 1, 1.0, 2.0, 0.5, 1.0,
                  (DepthLevel(1.45, 65, 1),), (DepthLevel(1.55, 65, 2),))  # fmt: skip
    leg = Leg("NIFTY", "this_week", DAY, 0, "CE", 1.0, INSTRUMENTS[1], quote)
    chain = ChainSlice("NIFTY", "this_week", DAY, 1.0, 1.0, (leg,))
    good = encode_snapshot(Snapshot(NOW, NOW, {"NIFTY": quote}, (chain,)))
    raw = zlib.decompress(good[len(MAGIC) :])
    at %= len(raw)
    damaged = MAGIC + zlib.compress(raw[:at] + noise + raw[at + len(noise) :])
    with contextlib.suppress(ValueError):  # the only way it may fail
        decode_snapshot(damaged, INSTRUMENTS)


def test_loop_stats_round_trip() -> None:
    fields = {"duration": 0.125, "calls": 3, "late": 0, "big": 2**53 + 1}
    assert decode_loop(encode_loop(fields)) == fields
    with pytest.raises(ValueError, match="loop stats"):
        decode_loop(b"\xff")
    with pytest.raises(ValueError, match="loop stats"):
        decode_loop(b'{"a": "b"}')
