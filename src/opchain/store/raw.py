"""Raw legs, the audit trail: every collected leg as it came from the broker, in compressed
Parquet partitioned by date and index (``raw/date=YYYY-MM-DD/index=NIFTY/part-HHMM.parquet``;
read the folder with DuckDB's ``hive_partitioning`` or pyarrow's ``partitioning="hive"``).

Parquet files cannot be appended to, so each cycle's legs are first appended to the journal of
their day, index and window (15 minutes by default), one Arrow batch per index, handed to the
operating system before the cycle's split rows are written: a process killed at any moment has
every leg of every cycle that reached the split files in a journal (with durable writes the
journals are synced at each flush of the split files, before them). When a window closes its
journal is folded into ``part-HHMM.parquet`` on a background thread (the next cycles go on
meanwhile; at most one fold is in flight, and its error, if any, surfaces on a later call), and
on a clean stop the open window is folded too. A writer that starts after a crash folds the
journals left behind first (:meth:`RawStore.recover`), a torn last batch cut; a later run that
continues a window rewrites its part with the old rows and the new. :mod:`.rawparts` has the
files' layout, and how a part or journal that cannot be read is moved aside, never deleted.

Memory stays flat over the day: nothing of a window is held in memory, and folding it reads
its journal memory-mapped.
"""

import logging
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby, repeat
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from opchain.market.ist import IST, to_ist, trading_date
from opchain.merge.stats import OiKey
from opchain.model import ChainSlice, DepthLevel, Quote, Snapshot
from opchain.store import layout
from opchain.store import rawparts as parts
from opchain.store.appendlog import FileFormatError, FlushSchedule
from opchain.store.journal import Journal, sync_dir
from opchain.store.rawparts import FILE_SCHEMA

log = logging.getLogger(__name__)
_TS = FILE_SCHEMA.field("ts").type

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
    """Legs of one snapshot not yet in Arrow form: a list per column."""

    def __init__(self) -> None:
        self.columns: dict[str, list[object]] = {name: [] for name in _GATHERED}
        self.rows = 0

    def add(self, chain: ChainSlice) -> None:
        legs = chain.legs
        n = len(legs)
        if not n:
            return
        cols = self.columns
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

    def batch(self, ts: datetime, received_at: datetime) -> pa.RecordBatch:
        cols = self.columns
        arrays = {name: pa.array(cols[name], FILE_SCHEMA.field(name).type) for name in _DIRECT}
        arrays["ts"] = pa.repeat(pa.scalar(ts, _TS), self.rows)
        arrays["received_at"] = pa.repeat(pa.scalar(received_at, _TS), self.rows)
        arrays["exchange_ts"] = _stamps(cols["timestamp"])
        arrays["last_trade_time"] = _stamps(cols["last_trade_time"])
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
    if n
    not in {
        "ts",
        "received_at",
        "exchange_ts",
        "last_trade_time",
        "bid",
        "ask",
        "bid_qty",
        "ask_qty",
    }
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _stamps(values: list[object]) -> "pa.Array[Any]":
    """Time-zone-aware datetimes (or None) as a timestamp column. Each distinct one is converted
    once: a cycle's quotes share a few exchange and trade times, and Arrow's own conversion of
    an aware datetime costs a time-zone lookup every time."""
    memo: dict[object, int | None] = {None: None}
    millis = []
    for value in values:
        found = memo.get(value, _MS)
        if found is _MS:
            found = memo[value] = (value - _EPOCH) // _MS  # type: ignore[operator]
        millis.append(found)
    column: pa.Array[Any] = pa.array(millis, pa.int64()).cast(_TS)
    return column


@dataclass(eq=False)  # hashed by identity: the flush schedule keeps it in a dict
class RawStore:
    root: Path  # the data directory's ``raw`` folder
    window: timedelta = timedelta(minutes=15)
    durable: bool = False  # fsync journals at each flush, and parts (file and folder)
    flushes: FlushSchedule | None = None  # when journals are synced (with the split files)
    # The journal of the window being recorded, per (day, index), with the window's start.
    _open: dict[tuple[date, str], tuple[datetime, Journal]] = field(default_factory=dict)
    # How far the record reached when this store first saw a day and index, then the last
    # cycle this store journaled for it.
    _reached: dict[tuple[date, str], datetime | None] = field(default_factory=dict)
    _settled: set[Path] = field(default_factory=set)
    _writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="raw-writer")
    )
    _writing: Future[None] | None = None
    parts_written: int = 0

    def add(self, snapshot: Snapshot) -> None:
        """Journal a snapshot's legs, one batch per index, before anything else is written of
        it; fold every window that has closed before it into its part."""
        start = self.window_start(snapshot.ts)
        self._close_windows(before=start)
        day = trading_date(snapshot.ts)
        chains = [
            c
            for c in sorted(snapshot.chains, key=_index_of)
            if c.legs and self._is_new(day, c.index, snapshot.ts)
        ]
        if not chains:
            return
        chunk = _Chunk()
        for chain in chains:
            chunk.add(chain)
        batch, at = chunk.batch(snapshot.ts, snapshot.received_at), 0
        for index, group in groupby(chains, key=_index_of):
            rows = sum(len(c.legs) for c in group)
            self._journal(day, index, start).append(batch.slice(at, rows))
            self._reached[day, index] = snapshot.ts
            at += rows
        if self.durable and self.flushes is not None:
            self.flushes.wrote(self)

    def flush(self) -> None:
        """Sync the open journals to disk (durable writes; the flush schedule calls this)."""
        for _, journal in self._open.values():
            journal.sync()

    def recover(self, indices: Collection[str] | None = None) -> None:
        """Fold the journals a killed process left, of every day, into their parts (a writer
        calls this once before it records: readers such as DuckDB see only parts). Only those
        of ``indices`` when given: another process may be writing the others' (a bus worker
        owns its partition's folders alone)."""
        self._wait()
        for folder in sorted(self.root.glob(layout.RAW_FOLDERS)):
            if indices is None or layout.raw_folder_key(folder)[1] in indices:
                self._settle(folder)

    def window_start(self, ts: datetime) -> datetime:
        ist = to_ist(ts)
        midnight = ist.replace(hour=0, minute=0, second=0, microsecond=0)
        step = self.window.total_seconds()
        return midnight + timedelta(seconds=(ist - midnight).total_seconds() // step * step)

    def folder(self, day: date, index: str) -> Path:
        return layout.raw_folder(self.root, day, index)

    def part_path(self, day: date, index: str, start: datetime) -> Path:
        return self.folder(day, index) / f"part-{start:%H%M}.parquet"

    def cursor(self, day: date, index: str) -> datetime | None:
        """The last ``ts`` recorded for a day and index (None: nothing). Journals left by a
        killed process are folded first; a last part that cannot be read is moved aside (with a
        warning) and the one before it counts."""
        self._wait()
        folder = self.folder(day, index)
        self._settle(folder)
        journaled = self._reached.get((day, index)) if (day, index) in self._open else None
        for part in sorted(folder.glob("part-*.parquet"), reverse=True):
            try:
                ts = parts.read_part(part, ["ts"]).column("ts")
            except FileFormatError as err:
                parts.set_aside(part, err)
                continue
            last = _latest(ts)
            if last is not None:
                return last if journaled is None else max(last, journaled)
        return journaled

    def closing_oi(self, index: str, before: date) -> dict[OiKey, int]:
        """Open interest per contract at the close of the index's last recorded day before
        ``before``: the last row of each contract in that day's last window (the legs watched
        at the close), from its part and a journal a killed process may have left. Empty when
        no earlier day is on disk, or (with one warning naming the file) when that window
        cannot be read. Reads only: the API calls this beside a running recorder."""
        keyed = ((layout.raw_folder_key(p), p) for p in self.root.glob(layout.RAW_FOLDERS))
        days = sorted(
            (day, p) for (day, of), p in keyed if of == index and day < before.isoformat()
        )
        for _, folder in reversed(days):  # the folder as found: a stray name never raises
            found = parts.last_window(folder)
            if found is None:
                continue
            columns = ["ts", "expiry", "strike", "side", "oi"]
            try:
                table = parts.read_window(folder, found, columns).sort_by("ts").drop_columns("ts")
            except (FileFormatError, OSError) as err:
                log.warning("%s; the previous close OI of %s is left blank", err, index)
                return {}
            closing: dict[OiKey, int] = {}
            for row in table.drop_null().to_pylist():
                closing[index, row["expiry"], row["strike"], row["side"]] = row["oi"]
            return closing
        return {}

    def close(self) -> None:
        """Fold every open window into its part and wait until all are on disk."""
        try:
            self._close_windows(before=None)
            self._wait()
        finally:
            self._writer.shutdown()

    def _journal(self, day: date, index: str, start: datetime) -> Journal:
        found = self._open.get((day, index))
        if found is not None and found[0] == start:
            return found[1]
        if found is not None:
            self._close_windows(before=start)
        folder = self.folder(day, index)
        created = parts.make_folder(folder, self.root)
        if self.durable:
            for made in created:
                sync_dir(made.parent)
        journal = Journal(parts.journal_path(folder, start), FILE_SCHEMA, self.durable)
        self._open[day, index] = (start, journal)
        return journal

    def _is_new(self, day: date, index: str, ts: datetime) -> bool:
        key = (day, index)
        if key not in self._reached:
            self._reached[key] = self.cursor(day, index)
        reached = self._reached[key]
        return reached is None or ts > reached

    def _settle(self, folder: Path) -> None:
        """The first time this store looks at a folder: remove half-written parts and fold the
        journals an earlier process left (any journal written later is this store's own)."""
        if folder in self._settled:
            return
        self._settled.add(folder)
        if not folder.is_dir():
            return
        for tmp in folder.glob("*.tmp"):
            tmp.unlink()
        for journal in sorted(folder.glob(parts.JOURNALS)):
            self.parts_written += parts.fold(journal, self.durable)

    def _close_windows(self, before: datetime | None) -> None:
        for key, (start, journal) in sorted(self._open.items()):
            if before is not None and start >= before:
                continue
            del self._open[key]
            journal.close()
            self._wait()  # one fold in flight at a time
            self._writing = self._writer.submit(self._fold, journal.path)

    def _fold(self, journal: Path) -> None:
        self.parts_written += parts.fold(journal, self.durable)

    def _wait(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()  # re-raises the fold's error here


def _latest(ts: "pa.ChunkedArray[Any]") -> datetime | None:
    """The last of a column of timestamps (through integers: converting an Arrow timestamp
    with a time zone to Python imports pandas, a second of the recorder's start)."""
    millis = pc.max(ts.cast(pa.int64())).as_py()
    if millis is None:
        return None
    return datetime.fromtimestamp(millis // 1000, IST) + timedelta(milliseconds=millis % 1000)


def _index_of(chain: ChainSlice) -> str:
    return chain.index
