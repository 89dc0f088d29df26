"""Raw legs in Parquet: every leg as the broker gave it, including the awkward ones."""

from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from opchain.market.ist import IST
from opchain.model import ChainSlice, DepthLevel, Instrument, Leg, Quote, Snapshot
from opchain.store import raw
from opchain.store.raw import RawStore

TS = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
EXPIRY = date(2026, 11, 23)
INSTRUMENT = Instrument(
    instrument_token=12345, exchange_token="48", tradingsymbol="NIFTY26N2326000CE",
    name="NIFTY", last_price=0.0, expiry=EXPIRY, strike=26000.0, tick_size=0.05, lot_size=65,
    instrument_type="CE", segment="NFO-OPT", exchange="NFO",
)  # fmt: skip


def quote(bids: tuple[DepthLevel, ...], asks: tuple[DepthLevel, ...]) -> Quote:
    return Quote(
        12345, TS - timedelta(seconds=1), TS - timedelta(seconds=3), 120.5, 65, 119.8, 6500,
        1300, 1235, 650000, 660000, 640000, 110.0, 125.0, 105.0, 118.0, bids, asks,
    )  # fmt: skip


def snapshot(ts: datetime, legs: tuple[Leg, ...]) -> Snapshot:
    chain = ChainSlice("NIFTY", "this_week", EXPIRY, 26010.5, 26000.0, legs)
    return Snapshot(ts, ts + timedelta(milliseconds=250), {}, (chain,))


def leg(offset: int, q: Quote | None, flag: str | None, listed: bool = True) -> Leg:
    strike = 26000.0 + 50 * offset if listed else None
    inst = INSTRUMENT if listed else None
    return Leg("NIFTY", "this_week", EXPIRY, offset, "CE", strike, inst, q, flag)


LEGS = (
    leg(0, quote((DepthLevel(120.4, 650, 3),), (DepthLevel(120.6, 130, 1),)), None),
    leg(1, quote((DepthLevel(0.0, 0, 0),), (DepthLevel(120.6, 130, 1),)), "missing_side"),
    leg(2, quote((), ()), "missing_side"),
    leg(-1, None, "missing"),
    leg(-9, None, "not_listed", listed=False),
)


def read(root: Path) -> list[dict[str, object]]:
    return pq.read_table(root, partitioning="hive").sort_by("offset").to_pylist()


def test_every_leg_is_stored_as_given(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    store.add(snapshot(TS, LEGS))
    store.close()
    rows = {r["offset"]: r for r in read(tmp_path)}
    good = rows[0]
    assert good["ts"] == TS and good["received_at"] == TS + timedelta(milliseconds=250)
    assert good["exchange_ts"] == TS - timedelta(seconds=1)
    assert good["last_trade_time"] == TS - timedelta(seconds=3)
    assert (good["bid"], good["ask"], good["bid_qty"], good["ask_qty"]) == (120.4, 120.6, 650, 130)
    assert (good["tradingsymbol"], good["instrument_token"]) == ("NIFTY26N2326000CE", 12345)
    assert (good["last_price"], good["volume"], good["oi"], good["close"]) == (
        120.5, 6500, 650000, 118.0,
    )  # fmt: skip
    assert (good["spot"], good["atm_strike"], good["index"]) == (26010.5, 26000.0, "NIFTY")
    assert good["flag"] is None
    # An empty side of the book: no price; its quantity as the broker said.
    assert (rows[1]["bid"], rows[1]["bid_qty"], rows[1]["ask"]) == (None, 0, 120.6)
    assert (rows[2]["bid"], rows[2]["bid_qty"], rows[2]["ask"]) == (None, None, None)
    # No quote at all, and no contract at all: the leg is still there, with its reason.
    assert rows[-1]["last_price"] is None and rows[-1]["flag"] == "missing"
    assert rows[-1]["tradingsymbol"] == "NIFTY26N2326000CE"
    assert rows[-9]["tradingsymbol"] is None and rows[-9]["strike"] is None
    assert rows[-9]["flag"] == "not_listed"


def test_chunks_and_windows_do_not_change_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshots = [snapshot(TS + timedelta(seconds=30 * k), LEGS) for k in range(40)]
    whole = RawStore(tmp_path / "whole", window=timedelta(hours=1))
    for s in snapshots:
        whole.add(s)
    whole.close()
    monkeypatch.setattr(raw, "CHUNK_ROWS", 7)  # a batch every two snapshots
    pieces = RawStore(tmp_path / "pieces", window=timedelta(minutes=5))
    for s in snapshots:
        pieces.add(s)
    pieces.close()
    assert pieces.parts_written == 4 and whole.parts_written == 1
    order = [("ts", "ascending"), ("offset", "ascending")]
    tables = [pq.read_table(tmp_path / n, partitioning="hive") for n in ("whole", "pieces")]
    assert tables[0].sort_by(order).to_pylist() == tables[1].sort_by(order).to_pylist()


def test_a_failed_write_is_reported_not_lost_silently(tmp_path: Path) -> None:
    (tmp_path / "date=2026-11-20").write_text("a file where a folder must go")
    store = RawStore(tmp_path, window=timedelta(minutes=5))
    store.add(snapshot(TS, LEGS))
    store.add(snapshot(TS + timedelta(minutes=5), LEGS))  # closes the first window
    with pytest.raises(OSError):
        store.close()
