"""Daily split CSVs, the file contract OP's users rely on (SPEC §3.4):

``csv_data/<INDEX>/<bucket>/<offset>/<YYYY-MM-DD>.csv``, one row per snapshot, ``ts`` first (IST
ISO-8601 with +05:30), the file named after the IST trading date.
"""

from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from opchain.market.ist import trading_date
from opchain.model import SplitRow
from opchain.store.appendlog import AppendLog, FlushSchedule, LogBook
from opchain.store.csvrows import aware, read_all, show

COLUMNS = SplitRow._fields
# OP wrote these names; readers accept them (writers never produce them).
OLD_NAMES = {"timestamp": "ts", "ts_ist": "ts", "tp_sum": "total_premium"}
_INTS = {"call_volume", "put_volume", "call_oi", "put_oi", "days_to_expiry"}
# Columns opchain added after OP's: files without them (OP's, older opchain's) still read.
OPTIONAL = {"call_delta", "put_delta"}
_TEXT = {"index", "expiry_code", "strike_offset"}
_REQUIRED = {"atm_strike", "spot", "days_to_expiry"}  # never empty in a row opchain wrote

SeriesKey = tuple[str, str, str, date]  # index, bucket, offset label, trading date


def split_path(csv_root: Path, index: str, bucket: str, offset: str, day: date) -> Path:
    return csv_root / index / bucket / offset / f"{day.isoformat()}.csv"


# One %-format for the whole line: the text cells and the dates through str (a date's str is
# its isoformat), every number through %r (its repr, as the f-string's !r did). One C call
# per row instead of an f-string of 21 attribute loads: this runs for every row of the day.
_LINE = ",".join(["%s"] * 5 + ["%r"] * 13 + ["%s", "%r", "%r"])


def format_row(r: SplitRow, ts: str | None = None) -> str:
    """One CSV line: floats in their shortest exact form (``repr``), None as an empty cell.

    ``ts`` is ``r.ts.isoformat()`` when the caller has it already: the rows of a snapshot share
    it. Every None cell is emptied in one pass after formatting (only the numeric cells can be
    None, and no other cell can start with "None": the text cells are opchain's own labels).
    """
    line = _LINE % ((ts or r.ts.isoformat(),) + r[1:])  # noqa: RUF005 (faster than *r[1:])
    return line.replace(",None", ",")


class SplitStore:
    """Appends split rows, one crash-safe writer per file, opened on first use."""

    def __init__(
        self, csv_root: Path, durable: bool = False, flushes: FlushSchedule | None = None
    ) -> None:
        self.csv_root = csv_root
        self.flushes = flushes or FlushSchedule()
        self.logs: LogBook[SeriesKey] = LogBook(
            lambda key: split_path(csv_root, *key), COLUMNS, durable
        )

    def write(self, rows: Iterable[SplitRow]) -> int:
        """Append rows not yet in their files, flushing as scheduled. Returns rows added."""
        added = 0
        stamp: datetime | None = None
        text, day = "", date.min
        logs = self.logs
        for row in rows:
            if row.ts is not stamp:
                stamp, text, day = row.ts, row.ts.isoformat(), trading_date(row.ts)
            log = logs[row.index, row.expiry_code, row.strike_offset, day]
            if log.append(row.ts, format_row(row, text)):
                added += 1
                self.flushes.wrote(log)
        self.flushes.tick()
        return added

    def cursor(self, keys: Iterable[SeriesKey]) -> datetime | None:
        """The latest time every one of these series has reached (None: one has nothing)."""
        return self.logs.cursor(keys)

    def files(self) -> dict[SeriesKey, AppendLog]:
        return dict(self.logs.logs)

    def close(self) -> None:
        self.logs.close()


def read_split(path: Path) -> list[SplitRow]:
    """A split file's rows (accepting OP's old column names and files of earlier versions);
    lines that are not rows are skipped with a warning naming the file and line
    (:mod:`opchain.store.csvrows`). A missing or empty file has none."""
    return read_all(path, split_parser)


def split_parser(header: list[str]) -> Callable[[list[str]], SplitRow]:
    """The parser of a split file's rows, given its header; ValueError when it lacks columns."""
    names = [OLD_NAMES.get(h, h) for h in header]
    missing = [c for c in COLUMNS if c not in names and c not in OPTIONAL]
    if missing:
        raise ValueError(f"not a split file: no column {', '.join(missing)}")
    where = [(c, names.index(c)) for c in COLUMNS if c in names]

    def parse(cells: list[str]) -> SplitRow:
        return SplitRow(**{c: _parse(c, cells[i]) for c, i in where})

    return parse


def _parse(column: str, text: str) -> Any:
    try:
        if column == "ts":
            return aware(text)
        if column == "expiry":
            return date.fromisoformat(text)
        if column in _TEXT:
            if not text:
                raise ValueError("empty")
            return text
        if text == "":
            if column in _REQUIRED:
                raise ValueError("empty")
            return None
        if column in _INTS:
            return int(text)
        return float(text)
    except ValueError:
        raise ValueError(f"bad {column} {show(text)}") from None
