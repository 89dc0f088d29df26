"""A recorded day read back as it was collected: each cycle's chains from the raw legs, its index
quotes from the overview files, its analytics rows from the analytics files.

For what rebuilds a day's cycles from the files (``opchain influx backfill``). Only reads: the
raw parts and the journals beside them (a day being recorded, or one a killed run left) are
read as they are, never folded or moved (``store.raw`` does that when it records), so this
runs beside a recorder. A damaged line of a CSV costs that line (:mod:`opchain.store.csvrows`);
a raw part that cannot be read raises :class:`~opchain.store.appendlog.FileFormatError`.
"""

import math
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import pyarrow as pa

from opchain.market.ist import IST
from opchain.merge.stats import BucketStats
from opchain.model import ChainSlice, DepthLevel, Leg, Quote
from opchain.store import layout
from opchain.store import rawparts as parts
from opchain.store.csvrows import aware, read_all
from opchain.store.stats import COLUMNS as STATS_COLUMNS

_LEG_COLUMNS = [
    "ts", "received_at", "bucket", "expiry", "offset", "side", "strike", "instrument_token",
    "exchange_ts", "last_trade_time", "last_price", "bid", "ask", "bid_qty", "ask_qty",
    "volume", "average_price", "oi", "oi_day_high", "oi_day_low", "open", "high", "low",
    "close", "spot", "atm_strike", "flag",
]  # fmt: skip
_STAMPS = ("ts", "received_at", "exchange_ts", "last_trade_time")


class RawCycle:
    """One cycle's legs as the raw store holds them: chains in the order they were journaled
    (index by index, each index's slices in the order of the snapshot)."""

    __slots__ = ("chains", "received_at", "ts")

    def __init__(self, ts: datetime, received_at: datetime, chains: list[ChainSlice]) -> None:
        self.ts, self.received_at, self.chains = ts, received_at, chains


def raw_days(raw_root: Path) -> list[date]:
    """The days the raw store holds legs of, oldest first."""
    found = set()
    for folder in raw_root.glob(layout.RAW_FOLDERS):
        try:
            found.add(date.fromisoformat(layout.raw_folder_key(folder)[0]))
        except ValueError:
            continue
    return sorted(found)


def raw_cycles(raw_root: Path, day: date) -> Iterator[RawCycle]:
    """Every cycle of ``day`` in the raw store, in time order, window by window (a day is
    never in memory whole)."""
    on_day = day.isoformat()
    folders = sorted(
        p for p in raw_root.glob(layout.RAW_FOLDERS) if layout.raw_folder_key(p)[0] == on_day
    )
    windows = {folder: set(parts.window_labels(folder)) for folder in folders}
    for label in sorted(set().union(*windows.values())):
        found: dict[datetime, RawCycle] = {}
        for folder in folders:
            if label not in windows[folder]:
                continue
            index = layout.raw_folder_key(folder)[1]
            table = parts.read_window(folder, label, _LEG_COLUMNS)
            for ts, received_at, chains in _cycles(index, table):
                cycle = found.get(ts)
                if cycle is None:
                    found[ts] = RawCycle(ts=ts, received_at=received_at, chains=chains)
                else:
                    cycle.chains += chains
        yield from (found[ts] for ts in sorted(found))


def _cycles(index: str, table: pa.Table) -> Iterator[tuple[datetime, datetime, list[ChainSlice]]]:
    """The chains of one index in a window's rows, cycle by cycle.

    Every leg of the window is built in one comprehension (a replay builds a whole day's, two
    and a half million at a 1-second cadence: a function call per leg and per book level was
    most of its reading time), then cut into chains where the cycle, bucket or expiry change."""
    c: dict[str, list[Any]] = {}
    for name in _LEG_COLUMNS:
        column = table.column(name)
        c[name] = _times(column) if name in _STAMPS else column.to_pylist()
    legs = [
        Leg(index=index, bucket=bucket, expiry=expiry, offset=offset, side=side, strike=strike,
            instrument=None, flag=flag, quote=None if last is None else Quote(
                instrument_token=token, timestamp=exchange_ts, last_trade_time=traded,
                last_price=last, last_quantity=0, average_price=average, volume=volume,
                buy_quantity=0, sell_quantity=0, oi=oi, oi_day_high=oi_high,
                oi_day_low=oi_low, open=open_, high=high, low=low, close=close,
                # the best level the raw legs keep of each side of the book (none: empty)
                bids=() if bid is None else (DepthLevel(price=bid, quantity=bid_qty, orders=0),),
                asks=() if ask is None else (DepthLevel(price=ask, quantity=ask_qty, orders=0),),
            ))
        for (bucket, expiry, offset, side, strike, token, exchange_ts, traded, last, bid, ask,
             bid_qty, ask_qty, volume, average, oi, oi_high, oi_low, open_, high, low, close,
             flag) in zip(*(c[name] for name in _LEG_COLUMNS[2:-3]), c["flag"], strict=True)
    ]  # fmt: skip
    ts, received, spot, atm = c["ts"], c["received_at"], c["spot"], c["atm_strike"]
    slices = list(zip(ts, c["bucket"], c["expiry"], strict=True))
    chains: list[ChainSlice] = []
    start = 0
    for (when, bucket, expiry), group in groupby(range(len(legs)), key=slices.__getitem__):
        end = start + sum(1 for _ in group)
        chains.append(
            ChainSlice(index=index, bucket=bucket, expiry=expiry, spot=spot[start],
                       atm_strike=atm[start], legs=tuple(legs[start:end]))
        )  # fmt: skip
        if end == len(legs) or ts[end] != when:
            yield when, received[start], chains
            chains = []
        start = end


def _times(column: "pa.ChunkedArray[Any]") -> list[datetime | None]:
    """A timestamp column as IST datetimes, through integers (converting Arrow's timestamps
    with a time zone imports pandas), each distinct value converted once."""
    memo: dict[int | None, datetime | None] = {None: None}
    out = []
    for millis in column.cast(pa.int64()).to_pylist():
        if millis is not None and millis not in memo:
            memo[millis] = datetime.fromtimestamp(millis // 1000, IST) + timedelta(
                milliseconds=millis % 1000
            )
        out.append(memo[millis])
    return out


def read_overview(path: Path) -> list[tuple[datetime, Quote]]:
    """An overview file's rows as index quotes (the fields the file keeps; the rest zero)."""
    return read_all(path, _overview_parser)


def _overview_parser(header: list[str]) -> Callable[[list[str]], tuple[datetime, Quote]]:
    names = ("ts", "last_price", "open", "high", "low", "prev_close", "exchange_ts")
    missing = [n for n in names if n not in header]
    if missing:
        raise ValueError(f"not an overview file: no column {', '.join(missing)}")
    ts, last, open_, high, low, close, stamp = (header.index(n) for n in names)

    def parse(cells: list[str]) -> tuple[datetime, Quote]:
        exchange = aware(cells[stamp]) if cells[stamp] else None
        quote = Quote(
            instrument_token=0, timestamp=exchange, last_trade_time=None,
            last_price=float(cells[last]), last_quantity=0, average_price=0.0, volume=0,
            buy_quantity=0, sell_quantity=0, oi=0, oi_day_high=0, oi_day_low=0,
            open=float(cells[open_]), high=float(cells[high]), low=float(cells[low]),
            close=float(cells[close]),
        )  # fmt: skip
        return aware(cells[ts]), quote

    return parse


def read_stats(path: Path) -> list[BucketStats]:
    """An analytics file's rows (an empty cell NaN, as it was before it was written)."""
    return read_all(path, _stats_parser)


_STATS_TEXT = {"ts", "index", "bucket", "expiry", "anomaly"}


def _stats_parser(header: list[str]) -> Callable[[list[str]], BucketStats]:
    missing = [c for c in STATS_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"not an analytics file: no column {', '.join(missing)}")
    at = [header.index(c) for c in STATS_COLUMNS]
    kinds = [str if c in _STATS_TEXT else int if c == "strikes" else _number for c in STATS_COLUMNS]

    def parse(cells: list[str]) -> BucketStats:
        aware(cells[at[0]])  # a row's time must be one
        return BucketStats._make(kind(cells[i]) for kind, i in zip(kinds, at, strict=True))

    return parse


def _number(text: str) -> float:
    value = float(text) if text else math.nan
    if math.isinf(value):
        raise ValueError(f"not a finite number: {text}")
    return value
