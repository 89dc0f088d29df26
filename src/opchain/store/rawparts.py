"""The raw store's files, per ``raw/date=YYYY-MM-DD/index=NAME/`` folder:

- ``part-HHMM.parquet``: the legs of one window (15 minutes by default) from HHMM, zstd
  Parquet, written whole through a hidden ``.part-HHMM.parquet.tmp`` and a rename (with
  durable writes: the file synced before the rename, the folder after);
- ``_journal-HHMM.arrows``: the window being recorded, an Arrow IPC stream a batch per cycle
  (:mod:`opchain.store.journal`), folded into the part when the window closes, or when a
  writer starts after a crash;
- ``_part-HHMM.parquet.damaged``, ``_journal-HHMM.arrows.damaged``: a file that could not be
  read, moved aside with a warning and kept as it was (``.damaged-2`` and so on after that).

Names that start with ``_`` or ``.`` are skipped by pyarrow's dataset discovery, and only
``*.parquet`` names match DuckDB's ``read_parquet('data/raw/*/*/*.parquet')``: readers of the
folder see the parts alone.
"""

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opchain.store.appendlog import FileFormatError
from opchain.store.journal import read_journal, sync_dir

log = logging.getLogger(__name__)

_TS = pa.timestamp("ms", tz="Asia/Kolkata")
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
"""One part's columns. The index is not among them: it is in the part's path (hive style).
Columns are only ever appended: a part or journal with the first columns of this schema (an
older opchain's) reads with the later ones empty."""

JOURNALS = "_journal-*.arrows"
ROW_GROUP_ROWS = 1024 * 1024  # pyarrow's default: a part of a window is one row group

Data = TypeVar("Data", pa.Table, pa.RecordBatch)


def journal_path(folder: Path, start: datetime) -> Path:
    return folder / f"_journal-{start:%H%M}.arrows"


def fold(journal: Path, durable: bool = False) -> int:
    """Fold a closed journal into its window's part (the part's rows first, then the journal's
    later cycles), then remove the journal. A torn last batch is cut; a journal or part that
    cannot be read is moved aside. Returns the number of parts written (0 or 1)."""
    label = journal.name.removeprefix("_journal-").removesuffix(".arrows")
    part = journal.with_name(f"part-{label}.parquet")
    try:
        found = read_journal(journal)
        batches = [conform(b, journal) for b in found.batches]
    except FileFormatError as err:
        if _torn_at_birth(journal):
            log.info("%s: killed before its first batch was whole; removed", journal)
            journal.unlink()
        else:
            set_aside(journal, err)
        return 0
    if found.trailing:
        log.info("%s: cut %d bytes of a torn last batch", journal, found.trailing)
    old = None
    if part.exists():
        try:
            old = read_part(part)
        except FileFormatError as err:
            set_aside(part, err)
    if old is not None and old.num_rows:
        reached = pc.max(old.column("ts"))
        batches = [b.filter(pc.greater(b.column("ts"), reached)) for b in batches]
    batches = [b for b in batches if b.num_rows]
    if batches:
        old_batches = old.to_batches() if old is not None else []
        write_part(part, pa.Table.from_batches([*old_batches, *batches], FILE_SCHEMA), durable)
    journal.unlink()
    return 1 if batches else 0


def write_part(path: Path, table: pa.Table, durable: bool = False) -> None:
    """Write a part whole: a hidden temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    if durable:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    tmp.replace(path)
    if durable:
        sync_dir(path.parent)


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A part's rows (these columns of it), or :class:`FileFormatError` naming the file."""
    wanted = columns or FILE_SCHEMA.names
    try:
        with pq.ParquetFile(path) as parquet:
            present = [c for c in wanted if c in parquet.schema_arrow.names]
            check_schema(parquet.schema_arrow, path)
            table = parquet.read(columns=present)
    except PermissionError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise FileFormatError(f"{path}: not a readable Parquet part: {first_line(err)}") from None
    return conform(table, path).select(wanted) if columns is None else _fill(table, wanted)


def last_window(folder: Path) -> str | None:
    """The HHMM of the folder's last window, in a part or a journal (None: neither)."""
    labels = [p.stem.removeprefix("part-") for p in folder.glob("part-*.parquet")]
    labels += [p.stem.removeprefix("_journal-") for p in folder.glob(JOURNALS)]
    return max(labels, default=None)


def window_labels(folder: Path) -> list[str]:
    """The windows (``HHMM``) of a raw folder with a part or a journal, in time order."""
    names = [p.name for p in folder.glob("part-*.parquet")]
    names += [p.name for p in folder.glob(JOURNALS)]
    return sorted({n.removeprefix("part-").removeprefix("_journal-").split(".")[0] for n in names})


def read_window(folder: Path, label: str, columns: list[str]) -> pa.Table:
    """A window's rows (these columns, ``ts`` among them) from its part and its journal."""
    tables, reached = [], None
    part = folder / f"part-{label}.parquet"
    if part.exists():
        tables.append(read_part(part, columns))
        reached = pc.max(tables[0].column("ts"))
    journal = folder / f"_journal-{label}.arrows"
    if journal.exists():
        for batch in read_journal(journal).batches:
            rows = _fill(pa.Table.from_batches([conform(batch, journal)]), columns)
            if reached is not None and reached.is_valid:
                rows = rows.filter(pc.greater(rows.column("ts"), reached))
            tables.append(rows)
    if not tables:
        return FILE_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(tables)


def check_schema(schema: pa.Schema, path: Path) -> None:
    """A raw file's columns must be this schema's first ones, with their types."""
    names = schema.names
    if len(names) > len(FILE_SCHEMA) or not schema.equals(_prefix(len(names))):
        raise FileFormatError(f"{path}: not the raw legs' columns: {', '.join(names[:8])}...")


def conform(data: Data, path: Path) -> Data:
    """Rows of this schema, or of its first columns (the later ones appended empty)."""
    check_schema(data.schema, path)
    for field in list(FILE_SCHEMA)[len(data.schema) :]:
        data = data.append_column(field, pa.nulls(data.num_rows, field.type))
    return data


def set_aside(path: Path, err: Exception) -> Path:
    """Move a file that cannot be read out of the readers' way, keeping its bytes."""
    name = path.name if path.name.startswith("_") else f"_{path.name}"
    aside = path.with_name(f"{name}.damaged")
    n = 2
    while aside.exists():
        aside, n = path.with_name(f"{name}.damaged-{n}"), n + 1
    path.rename(aside)
    log.warning("%s; moved aside to %s (its bytes are kept), recording goes on", err, aside.name)
    return aside


def make_folder(folder: Path, root: Path) -> list[Path]:
    """Create a folder and its missing parents up to ``root``; the ones created, outermost
    first (durable writes sync each one's parent)."""
    missing = []
    here = folder
    while not here.exists() and here != root.parent:
        missing.append(here)
        here = here.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def _torn_at_birth(journal: Path) -> bool:
    """Nothing but the start of the schema message: the first append was cut short."""
    head = FILE_SCHEMA.serialize().to_pybytes()
    with journal.open("rb") as f:
        return head.startswith(f.read(len(head) + 1))


def _prefix(n: int) -> pa.Schema:
    return pa.schema(list(FILE_SCHEMA)[:n])


def _fill(table: pa.Table, columns: list[str]) -> pa.Table:
    """These columns of a table, the ones it lacks (an older file's) empty."""
    for name in columns:
        if name not in table.column_names:
            field = FILE_SCHEMA.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(columns)
