"""Raw legs, the audit trail: every collected leg as it came from the broker, in compressed
Parquet partitioned by date and index (``raw/date=YYYY-MM-DD/index=NIFTY/part-HHMM.parquet``;
read the folder with DuckDB's ``hive_partitioning`` or pyarrow's ``partitioning="hive"``).

Parquet files cannot be appended to, so legs are kept in memory for one window of the session
(15 minutes by default) and written as one part when the window closes, through a temporary
file and a rename. A part is therefore whole or absent. On a clean stop the open window is
written too, and a later run that continues the window rewrites that part with the old rows
and the new. :meth:`RawStore.cursor` says how far the parts on disk reach.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opchain.market.ist import IST, to_ist, trading_date
from opchain.model import ChainSlice, Leg, Quote, Snapshot

_TS = pa.timestamp("ms", tz="Asia/Kolkata")


_FIELDS: list[tuple[str, pa.DataType]] = [
    ("ts", _TS),
    ("received_at", _TS),
    ("index", pa.string()),
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
SCHEMA = pa.schema(_FIELDS)
FILE_SCHEMA = SCHEMA.remove(SCHEMA.get_field_index("index"))


def snapshot_batch(snapshot: Snapshot, chains: list[ChainSlice]) -> pa.RecordBatch:
    """The legs of some of a snapshot's chains as one Arrow batch, column by column.

    Built once per snapshot and index, so the window held in memory is compact Arrow memory,
    not millions of Python objects: memory stays flat over the day.
    """
    legs = [leg for chain in chains for leg in chain.legs]
    n = len(legs)
    # Records are tuples: zip(*rows) transposes them into columns at C speed.
    quotes = [leg.quote or _NO_QUOTE for leg in legs]
    q = dict(zip(Quote._fields, zip(*quotes, strict=True), strict=True)) if n else {}
    leg_columns = dict(zip(Leg._fields, zip(*legs, strict=True), strict=True)) if n else {}
    insts = leg_columns.get("instrument", ())
    columns: dict[str, Sequence[object]] = {
        "ts": [snapshot.ts] * n,
        "received_at": [snapshot.received_at] * n,
        **{name: leg_columns.get(name, ()) for name in _LEG_COLUMNS},
        "tradingsymbol": [i.tradingsymbol if i else None for i in insts],
        "instrument_token": [i.instrument_token if i else None for i in insts],
        "exchange_ts": q.get("timestamp", ()),
        **{name: q.get(name, ()) for name in _QUOTE_COLUMNS},
        "bid": [x.bids[0].price if x.bids and x.bids[0].quantity else None for x in quotes],
        "ask": [x.asks[0].price if x.asks and x.asks[0].quantity else None for x in quotes],
        "bid_qty": [x.bids[0].quantity if x.bids else None for x in quotes],
        "ask_qty": [x.asks[0].quantity if x.asks else None for x in quotes],
        "spot": [c.spot for c in chains for _ in c.legs],
        "atm_strike": [c.atm_strike for c in chains for _ in c.legs],
        "flag": leg_columns.get("flag", ()),
    }
    return pa.RecordBatch.from_pydict({f: list(columns[f]) for f in SCHEMA.names}, schema=SCHEMA)


_LEG_COLUMNS = ("index", "bucket", "expiry", "offset", "side", "strike")
_QUOTE_COLUMNS = (
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
_NO_QUOTE = Quote(*([None] * len(Quote._fields)))  # type: ignore[arg-type]


@dataclass
class RawStore:
    root: Path  # the data directory's ``raw`` folder
    window: timedelta = timedelta(minutes=15)
    _pending: dict[tuple[date, datetime], list[pa.RecordBatch]] = field(default_factory=dict)
    # How far the parts on disk reached when this store first saw a day and index.
    _reached: dict[tuple[date, str], datetime | None] = field(default_factory=dict)
    parts_written: int = 0

    def add(self, snapshot: Snapshot) -> None:
        """Buffer a snapshot's legs; write out every window that has closed before it."""
        start = self.window_start(snapshot.ts)
        self._write_closed(before=start)
        day = trading_date(snapshot.ts)
        fresh = [c for c in snapshot.chains if self._is_new(day, c.index, snapshot.ts)]
        if fresh:  # one batch per snapshot, split by index when the window is written
            self._pending.setdefault((day, start), []).append(snapshot_batch(snapshot, fresh))

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
        folder = self.root / f"date={day.isoformat()}" / f"index={index}"
        parts = sorted(folder.glob("part-*.parquet")) if folder.exists() else []
        if not parts:
            return None
        ts = pq.read_table(parts[-1], columns=["ts"]).column("ts")
        latest = pc.max(ts).as_py()
        if latest is None:
            return None
        return to_ist(latest) if latest.tzinfo else latest.replace(tzinfo=IST)

    def flush(self) -> None:
        """Write every buffered window, closed or not (a clean stop)."""
        self._write_closed(before=None)

    def _write_closed(self, before: datetime | None) -> None:
        for key in [k for k in self._pending if before is None or k[1] < before]:
            day, start = key
            table = pa.Table.from_batches(self._pending.pop(key), SCHEMA)
            indices = table.column("index")
            for index in indices.unique().to_pylist():
                assert isinstance(index, str)
                self._write(day, index, start, table.filter(pc.equal(indices, pa.scalar(index))))

    def _write(self, day: date, index: str, start: datetime, table: pa.Table) -> None:
        # Hive convention: the partition's index lives in the path, not in the file.
        table = table.drop_columns(["index"])
        path = self.part_path(day, index, start)
        if path.exists():  # a window continued after a clean stop: keep what was there
            table = pa.concat_tables([pq.read_table(path, schema=FILE_SCHEMA), table])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
        self.parts_written += 1
