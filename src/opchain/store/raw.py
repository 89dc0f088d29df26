"""Raw legs, the audit trail: every collected leg as it came from the broker, in compressed
Parquet partitioned by date and index (``raw/date=YYYY-MM-DD/index=NIFTY/part-HHMM.parquet``;
read the folder with DuckDB's ``hive_partitioning`` or pyarrow's ``partitioning="hive"``).

Parquet files cannot be appended to, so legs are kept in memory for one window of the session
(15 minutes by default) and written as one part when the window closes, through a temporary
file and a rename. A part is therefore whole or absent. On a clean stop the open window is
written too, and a later run that continues the window rewrites that part with the old rows
and the new. :meth:`RawStore.cursor` says how far the parts on disk reach.

Memory stays flat over the day: legs are gathered as plain column lists per index and turned
into compact Arrow batches every :data:`CHUNK_ROWS` rows. A closed window is compressed and
written on a background thread (Arrow releases the GIL while it does), so the next cycles are
collected meanwhile; at most one write is in flight, and its error, if any, surfaces on the
next call.
"""

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opchain.market.ist import IST, to_ist, trading_date
from opchain.merge.stats import OiKey
from opchain.model import ChainSlice, DepthLevel, Quote, Snapshot

_TS = pa.timestamp("ms", tz="Asia/Kolkata")
CHUNK_ROWS = 20_000  # rows gathered as Python lists before they become one Arrow batch

_FIELDS: list[tuple[str, pa.DataType]] = [
    ("ts", _TS),
    ("received_at", _TS),
    ("bucket", pa.string()),
    ("expiry", pa.date32()),
    ("offset", pa.int16()),
    ("side", pa.string()),
    ("strike", pa.float64()),
    ("tradingsymbol", pa.string()),
    ("instrument_token", pa.int64()),
    ("exchange_ts", _TS),
    ("last_trade_time", _TS),
    ("last_price", pa.float64()),
    ("bid", pa.float64()),
    ("ask", pa.float64()),
    ("bid_qty", pa.int64()),
    ("ask_qty", pa.int64()),
    ("volume", pa.int64()),
    ("average_price", pa.float64()),
    ("oi", pa.int64()),
    ("oi_day_high", pa.int64()),
    ("oi_day_low", pa.int64()),
    ("open", pa.float64()),
    ("high", pa.float64()),
    ("low", pa.float64()),
    ("close", pa.float64()),
    ("spot", pa.float64()),
    ("atm_strike", pa.float64()),
    ("flag", pa.string()),
]
FILE_SCHEMA = pa.schema(_FIELDS)
"""One part's columns. The index is not among them: it is in the part's path (hive style)."""

# Columns gathered one value per leg (the timestamps of the cycle are gathered once per chain).
_QUOTE_FIELDS = (
    "timestamp",
    "last_trade_time",
    "last_price",
    "volume",
    "average_price",
    "oi",
    "oi_day_high",
    "oi_day_low",
    "open",
    "high",
    "low",
    "close",
)
_GATHERED = (
    "bucket",
    "expiry",
    "offset",
    "side",
    "strike",
    "tradingsymbol",
    "instrument_token",
    *_QUOTE_FIELDS,
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
    "spot",
    "atm_strike",
    "flag",
)
_QUOTE_AT = [Quote._fields.index(name) for name in _QUOTE_FIELDS]
_NO_QUOTE = Quote(*([None] * len(Quote._fields)))  # type: ignore[arg-type]
_NO_LEVEL = DepthLevel(None, None, None)  # type: ignore[arg-type]


class _Chunk:
    """Legs of one index and window not yet in Arrow form: a list per column."""

    def __init__(self) -> None:
        self.columns: dict[str, list[object]] = {name: [] for name in _GATHERED}
        self.stamps: list[tuple[datetime, datetime, int]] = []  # (ts, received_at, legs)
        self.rows = 0

    def add(self, ts: datetime, received_at: datetime, chain: ChainSlice) -> None:
        legs = chain.legs
        n = len(legs)
        if not n:
            return
        cols = self.columns
        self.stamps.append((ts, received_at, n))
        self.rows += n
        # zip(*records) turns the legs' and quotes' fields into columns at C speed.
        _, _, _, offsets, sides, strikes, instruments, quotes, flags = zip(*legs, strict=True)
        quotes = tuple(q or _NO_QUOTE for q in quotes)
        fields = list(zip(*quotes, strict=True))
        for name, at in zip(_QUOTE_FIELDS, _QUOTE_AT, strict=True):
            cols[name].extend(fields[at])
        for side, depth in (("bid", fields[-2]), ("ask", fields[-1])):
            best = (levels[0] if levels else _NO_LEVEL for levels in depth)
            price, qty, _ = zip(*best, strict=True)
            cols[f"{side}_price"].extend(price)
            cols[f"{side}_qty"].extend(qty)
        cols["bucket"].extend(repeat(chain.bucket, n))
        cols["expiry"].extend(repeat(chain.expiry, n))
        cols["offset"].extend(offsets)
        cols["side"].extend(sides)
        cols["strike"].extend(strikes)
        cols["tradingsymbol"].extend(i and i.tradingsymbol for i in instruments)
        cols["instrument_token"].extend(i and i.instrument_token for i in instruments)
        cols["spot"].extend(repeat(chain.spot, n))
        cols["atm_strike"].extend(repeat(chain.atm_strike, n))
        cols["flag"].extend(flags)

    def batch(self) -> pa.RecordBatch:
        cols = self.columns
        counts = [n for _, _, n in self.stamps]
        arrays = {name: pa.array(cols[name], FILE_SCHEMA.field(name).type) for name in _DIRECT}
        arrays["ts"] = _repeated([ts for ts, _, _ in self.stamps], counts)
        arrays["received_at"] = _repeated([r for _, r, _ in self.stamps], counts)
        arrays["exchange_ts"] = pa.array(cols["timestamp"], _TS)
        for side in ("bid", "ask"):
            qty = pa.array(cols[f"{side}_qty"], pa.int64())
            price = pa.array(cols[f"{side}_price"], pa.float64())
            arrays[f"{side}_qty"] = qty
            # An empty side of the book has no price, whatever level 0 says.
            arrays[side] = pc.if_else(
                pc.greater(qty, pa.scalar(0)), price, pa.scalar(None, pa.float64())
            )
        return pa.RecordBatch.from_arrays(
            [arrays[name] for name in FILE_SCHEMA.names], schema=FILE_SCHEMA
        )


_DIRECT = [
    n
    for n in FILE_SCHEMA.names
    if n not in {"ts", "received_at", "exchange_ts", "bid", "ask", "bid_qty", "ask_qty"}
]


def _repeated(stamps: list[datetime], counts: list[int]) -> "pa.Array[Any]":
    """Each cycle's timestamp once per leg of it, converted from Python once per cycle."""
    once = pa.array(stamps, _TS).cast(pa.int64()).to_numpy()
    column: pa.Array[Any] = pa.array(np.repeat(once, counts)).cast(_TS)
    return column


@dataclass
class RawStore:
    root: Path  # the data directory's ``raw`` folder
    window: timedelta = timedelta(minutes=15)
    # Per (day, window start, index): finished Arrow batches and the chunk being gathered.
    _batches: dict[tuple[date, datetime, str], list[pa.RecordBatch]] = field(default_factory=dict)
    _chunks: dict[tuple[date, datetime, str], _Chunk] = field(default_factory=dict)
    # How far the parts on disk reached when this store first saw a day and index.
    _reached: dict[tuple[date, str], datetime | None] = field(default_factory=dict)
    _writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="raw-writer")
    )
    _writing: Future[None] | None = None
    parts_written: int = 0

    def add(self, snapshot: Snapshot) -> None:
        """Gather a snapshot's legs; write out every window that has closed before it."""
        start = self.window_start(snapshot.ts)
        self._write_closed(before=start)
        day = trading_date(snapshot.ts)
        for chain in snapshot.chains:
            if not self._is_new(day, chain.index, snapshot.ts):
                continue
            key = (day, start, chain.index)
            chunk = self._chunks.get(key)
            if chunk is None:
                chunk = self._chunks[key] = _Chunk()
            chunk.add(snapshot.ts, snapshot.received_at, chain)
            if chunk.rows >= CHUNK_ROWS:
                self._batches.setdefault(key, []).append(self._chunks.pop(key).batch())

    def _is_new(self, day: date, index: str, ts: datetime) -> bool:
        key = (day, index)
        if key not in self._reached:
            self._reached[key] = self.cursor(day, index)
        reached = self._reached[key]
        return reached is None or ts > reached

    def window_start(self, ts: datetime) -> datetime:
        ist = to_ist(ts)
        midnight = ist.replace(hour=0, minute=0, second=0, microsecond=0)
        step = self.window.total_seconds()
        return midnight + timedelta(seconds=(ist - midnight).total_seconds() // step * step)

    def part_path(self, day: date, index: str, start: datetime) -> Path:
        return (
            self.root / f"date={day.isoformat()}" / f"index={index}" / f"part-{start:%H%M}.parquet"
        )

    def cursor(self, day: date, index: str) -> datetime | None:
        """The last ``ts`` in the parts on disk for a day and index (None: no parts)."""
        self._wait()
        folder = self.root / f"date={day.isoformat()}" / f"index={index}"
        parts = sorted(folder.glob("part-*.parquet")) if folder.exists() else []
        if not parts:
            return None
        ts = pq.read_table(parts[-1], columns=["ts"]).column("ts")
        latest = pc.max(ts).as_py()
        if latest is None:
            return None
        return to_ist(latest) if latest.tzinfo else latest.replace(tzinfo=IST)

    def closing_oi(self, index: str, before: date) -> dict[OiKey, int]:
        """Open interest per contract at the close of the index's last recorded day before
        ``before``: the last row of each contract in that day's last window part (the legs
        watched at the close). Empty when no earlier day is on disk."""
        days = sorted(
            p.parent.name.removeprefix("date=")
            for p in self.root.glob(f"date=*/index={index}")
            if p.parent.name.removeprefix("date=") < before.isoformat()
        )
        for day in reversed(days):
            parts = sorted((self.root / f"date={day}" / f"index={index}").glob("part-*.parquet"))
            if not parts:
                continue
            columns = ["ts", "expiry", "strike", "side", "oi"]
            table = pq.read_table(parts[-1], columns=columns).sort_by("ts")
            closing: dict[OiKey, int] = {}
            for row in table.drop_null().to_pylist():
                closing[index, row["expiry"], row["strike"], row["side"]] = row["oi"]
            return closing
        return {}

    def flush(self) -> None:
        """Write every buffered window, closed or not, and wait until it is on disk."""
        self._write_closed(before=None)
        self._wait()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._writer.shutdown()

    def _write_closed(self, before: datetime | None) -> None:
        keys = {*self._batches, *self._chunks}
        for key in sorted(k for k in keys if before is None or k[1] < before):
            batches = self._batches.pop(key, [])
            chunk = self._chunks.pop(key, None)
            if chunk is not None:
                batches.append(chunk.batch())
            table = pa.Table.from_batches(batches, FILE_SCHEMA)
            self._wait()  # one write in flight at a time: memory stays bounded
            self._writing = self._writer.submit(self._write, *key, table)

    def _wait(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()  # re-raises the write's error here

    def _write(self, day: date, start: datetime, index: str, table: pa.Table) -> None:
        path = self.part_path(day, index, start)
        if path.exists():  # a window continued after a clean stop: keep what was there
            table = pa.concat_tables([pq.read_table(path, schema=FILE_SCHEMA), table])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
        self.parts_written += 1
