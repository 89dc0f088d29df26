"""Read an old OP data directory, read-only: what every OP reader shares, and its weekday masters.

OP (the home-grown system before opchain) left three incompatible weekday-master formats
(research notes, kite.md §1.7); :func:`find_masters` reads all three so an import can carry the
history over:

- ``adv``: ``data_adv/weekday_masters/<INDEX>/<bucket>/<offset>/<mon..sun>.csv``, columns
  ``time_bucket,n_tot,sum_tot,avg_tot,min_tot,max_tot,last_updated``;
- ``bulk``: ``<root>/<INDEX>/<bucket>/<offset>/WEEKDAY_<INDEX>_<bucket>_<offset>_MASTER.csv``,
  columns ``HH:MM,HIST_AVG,COUNTER,LAST_UPDATED`` (OP forgot the weekday in this path);
- ``avg``: ``data/MASTER/<INDEX>/<Weekday>/<INDEX>_<bucket>_master_avg.csv``, columns
  ``timestamp,avg_tp,count`` (30-second rows, per bucket, the ATM straddle).

Nothing here writes. A file that cannot be read is a :class:`Problem`, never an exception: an
import reports what it skipped and carries on with the rest.
"""

import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal, NamedTuple

from opchain.market.indices import INDICES
from opchain.market.ist import to_ist
from opchain.store.csvrows import Problem, lines, read_rows, show

BUCKETS = ("this_week", "next_week", "this_month", "next_month")
OFFSET = re.compile(r"atm(?:_(?:[pm][0-9]+)+)?")  # atm, atm_m1, atm_p2, atm_p1m1, atm_p2m2
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # OP's codes; it wrote sat/sun too
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_OF = dict(zip(_DAY_NAMES, WEEKDAYS, strict=True))  # the avg master's folder names
# OP's mirror named index folders after the overview names ("NIFTY 50"); files use the keys.
_INDEX_KEYS = {spec.display.upper(): spec.key for spec in INDICES.values()}
# Folders never searched for masters: OP's per-tick JSON and Influx mirrors hold millions of
# files, and split folders hold no masters.
_SKIP_DIRS = {"csv_data", "raw_snapshots", "influx_mirror", ".git", ".venv", "__pycache__"}
_BUCKET = "|".join(BUCKETS)
_BULK = re.compile(rf"WEEKDAY_(.+)_({_BUCKET})_({OFFSET.pattern})_MASTER\.csv")
_AVG = re.compile(rf"(.+)_({_BUCKET})_master_avg\.csv")
_CLOCK = re.compile(r"[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Cell(NamedTuple):
    """One minute (or 30 s) of a weekday master, in rupees; None where the format lacks it."""

    n: int
    mean: float
    total: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class OpMaster:
    """One old weekday-master file with its cells keyed ``HH:MM`` (``HH:MM:SS`` for ``avg``)."""

    path: Path
    kind: Literal["adv", "bulk", "avg"]
    index: str
    bucket: str
    offset: str | None  # None for "avg": one file per bucket, the ATM straddle
    weekday: str | None  # mon..sun; None for "bulk", whose path has no weekday
    cells: dict[str, Cell]
    ledger: tuple[date, ...]  # days already applied, from the ``.ledger`` sidecar


class _Where(NamedTuple):
    kind: Literal["adv", "bulk", "avg"]
    name: str  # the index
    bucket: str
    offset: str | None
    weekday: str | None


def index_key(name: str) -> str:
    """opchain's name for an index folder: "NIFTY 50" -> NIFTY, "NIFTY BANK" -> BANKNIFTY;
    any other name upper-cased, so OP's and opchain's folders meet."""
    upper = " ".join(name.split()).upper()
    return _INDEX_KEYS.get(upper, upper)


def check_root(root: Path) -> Path:
    """The root itself, or a clear error when it is missing or not a directory."""
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory (expected an OP data directory)")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory (expected an OP data directory)")
    return root


def walk_files(top: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Every file under ``top`` in a stable order, not descending into folders named in
    ``skip`` or following links to folders (an unreadable folder is passed over)."""
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            yield Path(folder, name)


def number(text: str, what: str) -> float:
    """A finite float, or a ValueError naming the column."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"bad {what} {show(text)}")
    return value


def count(text: str, what: str) -> int:
    """A whole, non-negative count; OP's pandas sometimes wrote counts as ``3.0``."""
    value = number(text, what)
    if value < 0 or not value.is_integer():
        raise ValueError(f"bad {what} {show(text)}")
    return int(value)


def find_masters(root: Path) -> tuple[list[OpMaster], list[Problem]]:
    """Every old weekday master under ``root`` in any of OP's three formats, read."""
    root = check_root(root)
    masters: list[OpMaster] = []
    problems: list[Problem] = []
    for path in walk_files(root, frozenset(_SKIP_DIRS)):
        where = _where(path.relative_to(root))
        if isinstance(where, str):
            problems.append(Problem(path, None, where))
        elif where is not None:
            master, trouble = _read_master(path, where)
            problems += trouble
            if master is not None:
                masters.append(master)
    masters.sort(key=lambda m: (m.kind, m.index, m.bucket, m.offset or "", m.weekday or ""))
    return masters, problems


def _where(rel: Path) -> _Where | str | None:
    """What a file is by its name: a master, a reason it is a misnamed one, or None (not ours)."""
    name, parts = rel.name, rel.parts
    if name.endswith(".ledger"):
        return None
    if found := _BULK.fullmatch(name):
        return _Where("bulk", index_key(found[1]), found[2], found[3], None)
    if name.startswith("WEEKDAY_") and name.endswith("_MASTER.csv"):
        return "not a weekday master name (WEEKDAY_<INDEX>_<bucket>_<offset>_MASTER.csv)"
    if name.endswith("_master_avg.csv"):
        found, day = _AVG.fullmatch(name), _WEEKDAY_OF.get(rel.parent.name.lower())
        if found and day:
            return _Where("avg", index_key(found[1]), found[2], None, day)
        return "not an averaged master name (<INDEX>/<Weekday>/<INDEX>_<bucket>_master_avg.csv)"
    if "weekday_masters" not in parts[:-1]:
        return None
    tail = parts[len(parts) - parts[::-1].index("weekday_masters") :]
    if len(tail) == 4 and tail[1] in BUCKETS and OFFSET.fullmatch(tail[2]):
        day = tail[3].removesuffix(".csv")
        if tail[3].endswith(".csv") and day in WEEKDAYS:
            return _Where("adv", index_key(tail[0]), tail[1], tail[2], day)
    return "not a weekday master name (weekday_masters/<INDEX>/<bucket>/<offset>/<mon..sun>.csv)"


def _read_master(path: Path, where: _Where) -> tuple[OpMaster | None, list[Problem]]:
    header, rows, problems = read_rows(path)
    if header is None:
        return None, problems
    columns = _COLUMNS[where.kind]
    missing = [c for c in columns if c not in header]
    if missing:
        problems.append(Problem(path, 1, f"missing column {', '.join(missing)}"))
        return None, problems
    at = [header.index(c) for c in columns]
    cells: dict[str, Cell] = {}
    for number_, row in rows:
        try:
            key, cell = _PARSE[where.kind]([row[i] for i in at])
        except ValueError as err:
            problems.append(Problem(path, number_, str(err)))
            continue
        if cell.n == 0:
            continue  # OP's pandas master kept empty 30-s slots with a count of 0
        old = cells.get(key)
        if old is not None and where.kind == "avg":
            cell = _pooled(old, cell)
        elif old is not None:
            problems.append(Problem(path, number_, f"repeats time {key}; the later row counts"))
        cells[key] = cell
    ledger, trouble = read_ledger(path)
    return OpMaster(path, *where, cells, ledger), problems + trouble


def _pooled(a: Cell, b: Cell) -> Cell:
    """Two rows of one time of day pooled. OP's ``avg`` master kept each date's rows apart
    (it merged on the full timestamp, date included), so a slot recurs once per date."""
    n = a.n + b.n
    return Cell(n, (a.mean * a.n + b.mean * b.n) / n, None, None, None)


def _adv(cells: list[str]) -> tuple[str, Cell]:
    key = _minute(cells[0], "time_bucket")
    total, mean = number(cells[2], "sum_tot"), number(cells[3], "avg_tot")
    low, high = number(cells[4], "min_tot"), number(cells[5], "max_tot")
    return key, Cell(count(cells[1], "n_tot"), mean, total, low, high)


def _bulk(cells: list[str]) -> tuple[str, Cell]:
    key = _minute(cells[0], "HH:MM")
    return key, Cell(count(cells[2], "COUNTER"), number(cells[1], "HIST_AVG"), None, None, None)


def _avg(cells: list[str]) -> tuple[str, Cell]:
    key = _slot(cells[0])
    return key, Cell(count(cells[2], "count"), number(cells[1], "avg_tp"), None, None, None)


def _minute(text: str, what: str) -> str:
    text = text.strip()
    if not _CLOCK.fullmatch(text) or len(text) != 5:
        raise ValueError(f"bad {what} {show(text)}")
    return text


def _slot(text: str) -> str:
    """``HH:MM:SS`` of an avg master's timestamp: a clock as given, or the IST time of day of
    the full date-time that OP's pandas wrote."""
    text = text.strip()
    if _CLOCK.fullmatch(text):
        return text if len(text) == 8 else text + ":00"
    try:
        moment = datetime.fromisoformat(text)
        moment = to_ist(moment) if moment.tzinfo else moment
    except (ValueError, OverflowError):
        raise ValueError(f"bad timestamp {show(text)}") from None
    return moment.strftime("%H:%M:%S")


_COLUMNS = {
    "adv": ("time_bucket", "n_tot", "sum_tot", "avg_tot", "min_tot", "max_tot"),
    "bulk": ("hh:mm", "hist_avg", "counter"),
    "avg": ("timestamp", "avg_tp", "count"),
}
_PARSE: dict[str, Callable[[list[str]], tuple[str, Cell]]] = {
    "adv": _adv,
    "bulk": _bulk,
    "avg": _avg,
}


def read_ledger(master: Path) -> tuple[tuple[date, ...], list[Problem]]:
    """The days a master says it has applied (``<master>.ledger``, one YYYY-MM-DD a line),
    sorted and without repeats; () when there is no ledger."""
    path = master.with_name(master.name + ".ledger")
    if not path.exists() and not path.is_symlink():
        return (), []
    days: set[date] = set()
    problems = []
    for number_, raw in lines(path):
        if isinstance(raw, Problem):
            problems.append(raw)
            continue
        text = raw.decode("utf-8", "replace").strip()
        if text.startswith("#"):  # opchain's own ledgers begin with their profile's hash
            continue
        # opchain writes "YYYY-MM-DD HH:MM" for a day added up to that minute (in the master)
        day = _iso_day(text.split(" ", 1)[0])
        if day is not None:
            days.add(day)
        elif text:
            problems.append(Problem(path, number_, f"not a date YYYY-MM-DD: {show(text)}"))
    return tuple(sorted(days)), problems


def _iso_day(text: str) -> date | None:
    if not _DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
