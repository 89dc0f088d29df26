"""Per-bucket chain analytics, one daily CSV per index and bucket, beside the overview:
``analytics/<INDEX>/<bucket>/<YYYY-MM-DD>.csv``, columns those of
:class:`~opchain.merge.stats.BucketStats`; and what the next rows are compared with, read back
from these files: today's earlier cycles and the 30-day IV at earlier closes.
"""

import math
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from opchain.market.ist import trading_date
from opchain.merge.stats import ANOMALY_WINDOW, BucketStats
from opchain.store import layout
from opchain.store.appendlog import FlushSchedule, LogBook
from opchain.store.csvrows import aware, last_record, read_all, show

COLUMNS = BucketStats._fields
# Decimals kept per column: enough for the quantity, no float noise in the file (0: integer).
_DECIMALS = {"forward": 2, "atm_iv": 6, "pcr_oi": 4, "pcr_volume": 4, "straddle": 2,
             "expected_move_pct": 4, "gex": 0, "call_oi_change": 0, "put_oi_change": 0,
             "iv30": 6, "iv_rank": 2, "iv_percentile": 2}  # fmt: skip
IV_RANK_SESSIONS = 252  # about a year of sessions: the usual IV rank window


class StatsStore:
    def __init__(
        self, root: Path, durable: bool = False, flushes: FlushSchedule | None = None
    ) -> None:
        self.flushes = flushes or FlushSchedule()
        self.logs: LogBook[tuple[str, str, date]] = LogBook(
            lambda key: layout.analytics_file(root, *key), COLUMNS, durable
        )

    def write(self, ts: datetime, stats: list[BucketStats]) -> int:
        day, added = trading_date(ts), 0
        for row in stats:
            log = self.logs[row.index, row.bucket, day]
            if log.append(ts, format_stats(row)):
                self.flushes.wrote(log)
                added += 1
        self.flushes.tick()
        return added

    def cursor(self, keys: list[tuple[str, str]], day: date) -> datetime | None:
        return self.logs.cursor((index, bucket, day) for index, bucket in keys)

    def close(self) -> None:
        self.logs.close()


_PLACES = tuple(_DECIMALS.get(name, 2) for name in COLUMNS)  # decimals per column, in order


def format_stats(row: BucketStats) -> str:
    cells = []
    for value, decimals in zip(row, _PLACES, strict=True):
        if isinstance(value, float):
            if value != value:  # NaN: what math.isnan says, without the call
                value = ""
            else:
                value = repr(round(float(value), decimals)) if decimals else str(round(value))
        cells.append(str(value))
    return ",".join(cells)


def stats_path(root: Path, index: str, bucket: str, day: date) -> Path:
    return layout.analytics_file(root, index, bucket, day)


def recent_cycles(
    root: Path, index: str, bucket: str, day: date, until: datetime
) -> deque[tuple[float, float, float]]:
    """ATM IV, straddle and forward of a bucket's last cycles at or before ``until`` on
    ``day``, oldest first: what :class:`~opchain.merge.stats.History` holds when a run resumes
    there. Lines that are not rows are left out, with a warning (:mod:`opchain.store.csvrows`)."""
    kept: deque[tuple[float, float, float]] = deque(maxlen=ANOMALY_WINDOW + 1)
    for ts, atm_iv, straddle, forward in read_all(
        stats_path(root, index, bucket, day), _cycle_parser
    ):
        if ts > until:
            break
        kept.append((atm_iv, straddle, forward))
    return kept


def _cycle_parser(
    header: list[str],
) -> Callable[[list[str]], tuple[datetime, float, float, float]]:
    ts, atm_iv, straddle, forward = _columns(header, "ts", "atm_iv", "straddle", "forward")
    return lambda cells: (
        aware(cells[ts]),
        _cell(cells[atm_iv], "atm_iv"),
        _cell(cells[straddle], "straddle"),
        _cell(cells[forward], "forward"),
    )


def iv30_closes(
    root: Path, index: str, before: date, sessions: int = IV_RANK_SESSIONS
) -> list[float]:
    """The index's 30-day IV in the last row of each of its last ``sessions`` days before
    ``before``, oldest first (days whose close has no iv30 are left out). Reads only each
    file's header and last line, unless that line is damaged: then the last good row is the
    close, and a warning names the bad lines (:mod:`opchain.store.csvrows`)."""
    folder = root / index
    days: dict[str, Path] = {}
    for path in sorted(folder.glob("*/*.csv")) if folder.exists() else []:
        if path.stem < before.isoformat():
            days.setdefault(path.stem, path)  # any bucket: iv30 is the index's
    closes = []
    for day in sorted(days)[-sessions:]:
        value = last_record(days[day], _iv30_parser, finished=True)
        if value is not None and math.isfinite(value):
            closes.append(value)
    return closes


def _iv30_parser(header: list[str]) -> Callable[[list[str]], float]:
    if "iv30" not in header:  # an earlier version's file: no close to read, nothing wrong
        return lambda cells: math.nan
    ts, iv30 = _columns(header, "ts", "iv30")
    return lambda cells: (aware(cells[ts]), _cell(cells[iv30], "iv30"))[1]


def _columns(header: list[str], *names: str) -> list[int]:
    missing = [n for n in names if n not in header]
    if missing:
        raise ValueError(f"not an analytics file: no column {', '.join(missing)}")
    return [header.index(n) for n in names]


def _cell(text: str, name: str) -> float:
    try:
        return _number(text)
    except ValueError:
        raise ValueError(f"bad {name} {show(text)}") from None


def _number(text: str) -> float:
    return float(text) if text else math.nan
