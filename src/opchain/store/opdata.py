"""Read an old OP data directory as it is, read-only: its daily split CSVs and what it holds.

OP (the home-grown system before opchain) wrote ``csv_data/<INDEX>/<bucket>/<offset>/<day>.csv``
under ``CSV_SPLIT_ROOT`` (default ``data/csv_data``) in a few column dialects (research notes,
kite.md §1.4–1.7): the minute merge's ``timestamp ... tp_sum,group``, the advanced split's
``ts_ist ... ce_ltp,pe_ltp,total_premium``, and opchain's own ``ts ... total_premium``. This
module finds those files and reads each row's total premium, so an import can rebuild weekday
masters and DTE profiles from years of history. The weekday masters OP left are read by
:mod:`opchain.store.opmasters`, whose names are re-exported here.

Bad data is reported, never raised: every file or line that cannot be read becomes a
:class:`Problem`, and the good rows around it are kept. Nothing here writes anything.
"""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from opchain.market.ist import IST, to_ist
from opchain.store.csvrows import Problem, read_rows, show
from opchain.store.opmasters import (
    BUCKETS,
    OFFSET,
    Cell,
    OpMaster,
    check_root,
    count,
    find_masters,
    index_key,
    walk_files,
)

__all__ = [
    "Cell",
    "OpMaster",
    "OpSplit",
    "Premium",
    "Problem",
    "Survey",
    "find_masters",
    "find_splits",
    "index_key",
    "parse_ts",
    "premium_paise",
    "read_premiums",
    "survey",
]

_TS = ("ts", "timestamp", "ts_ist")  # opchain's, OP's minute merge, OP's advanced split
_TOTAL = ("total_premium", "tp_sum")
_LEGS = (("call_last_price", "put_last_price"), ("ce_ltp", "pe_ltp"))
_STRIKES = ("call_strike", "put_strike")
_LAYOUT = "<INDEX>/<bucket>/<offset>/<YYYY-MM-DD>.csv"


@dataclass(frozen=True, slots=True)
class OpSplit:
    """One daily split file, named by its place in ``csv_data``."""

    path: Path
    index: str  # opchain's key: "NIFTY 50" -> NIFTY, "NIFTY BANK" -> BANKNIFTY
    bucket: str  # this_week / next_week / this_month / next_month
    offset: str  # atm, atm_m1, atm_p2, atm_p1m1, ...
    day: date  # from the file name (OP named files after the host's date)


class Premium(NamedTuple):
    """One row of a split: when, and the straddle's total premium in integer paise."""

    ts: datetime  # aware, Asia/Kolkata
    paise: int | None  # None: a leg missing or zero, or no usable total
    expiry: date | None  # from an ``expiry`` column when the file has one
    days_to_expiry: int | None
    # The legs' strikes as written ("26000|26000"), when the file has them: a change from one
    # minute to the next is a strike roll (the ATM moved), not a jump in the premium.
    strikes: str | None = None


class _Columns(NamedTuple):
    ts: int
    total: int | None
    call: int | None
    put: int | None
    expiry: int | None
    dte: int | None
    strikes: tuple[int, ...]  # call_strike, put_strike where present


def split_roots(root: Path) -> list[Path]:
    """The split folders of a root: its ``data/csv_data`` and ``csv_data``, or the root itself
    when it looks like one (named csv_data, or holding ``<INDEX>/<bucket>`` folders)."""
    found = [p for p in (root / "data" / "csv_data", root / "csv_data") if p.is_dir()]
    return found or ([root] if root.name == "csv_data" or _has_buckets(root) else [])


def _has_buckets(root: Path) -> bool:
    try:
        return any(
            (child / bucket).is_dir()
            for child in root.iterdir()
            if child.is_dir()
            for bucket in BUCKETS
        )
    except OSError:
        return False


def find_splits(root: Path) -> tuple[list[OpSplit], list[Problem]]:
    """Every daily split file under an OP directory (or its csv_data folder), sorted by
    index, bucket, offset and day; any other file there is a Problem."""
    root = check_root(root)
    roots = split_roots(root)
    if not roots:
        return [], [Problem(root, None, "no csv_data folder (looked in data/csv_data, csv_data)")]
    splits: list[OpSplit] = []
    problems: list[Problem] = []
    for csv_root in roots:
        for path in walk_files(csv_root):
            split = split_of(path, path.relative_to(csv_root).parts)
            if isinstance(split, str):
                problems.append(Problem(path, None, f"not a split file name: {split}"))
            else:
                splits.append(split)
    splits.sort(key=lambda s: (s.index, s.bucket, s.offset, s.day, s.path))
    return splits, problems


def split_of(path: Path, parts: tuple[str, ...]) -> OpSplit | str:
    """The split a file is, from its path below csv_data, or why its name is not one."""
    if len(parts) != 4:
        return f"expected {_LAYOUT}"
    index, bucket, offset, name = parts
    if bucket not in BUCKETS:
        return f"{bucket!r} is not a bucket ({', '.join(BUCKETS)})"
    if not OFFSET.fullmatch(offset):
        return f"{offset!r} is not an offset (atm, atm_m1, atm_p2, atm_p1m1, ...)"
    stem = name.removesuffix(".csv")
    try:
        day = date.fromisoformat(stem) if len(stem) == 10 and name.endswith(".csv") else None
    except ValueError:
        day = None
    if day is None:
        return f"{name!r} is not <YYYY-MM-DD>.csv"
    return OpSplit(path, index_key(index), bucket, offset, day)


def read_premiums(split: OpSplit) -> tuple[list[Premium], list[Problem]]:
    """Every readable row of a split, in file order (OP's two rows a minute included: the
    caller keeps each minute's last). Rows dated off the file's day are kept and reported
    once; bad lines are reported with their numbers."""
    path = split.path
    header, rows, problems = read_rows(path)
    if header is None:
        return [], problems
    columns = _columns(header)
    if isinstance(columns, str):
        return [], [*problems, Problem(path, 1, columns)]
    premiums: list[Premium] = []
    off_day: list[tuple[int, date]] = []
    for number, cells in rows:
        try:
            premium = _premium(cells, columns)
        except ValueError as err:
            problems.append(Problem(path, number, str(err)))
            continue
        if premium.ts.date() != split.day:
            off_day.append((number, premium.ts.date()))
        premiums.append(premium)
    if off_day:
        (first, other), n = off_day[0], len(off_day)
        reason = f"{n} rows dated off the file's day {split.day}, the first {other} (kept)"
        problems.append(Problem(path, first, reason))
    problems.sort(key=lambda p: p.line or 0)
    return premiums, problems


def _columns(header: list[str]) -> _Columns | str:
    """Where the columns read are, or why the file cannot be read."""
    where = {name: i for i, name in reversed(list(enumerate(header)))}  # first of a name wins
    ts = next((where[c] for c in _TS if c in where), None)
    if ts is None:
        return "missing column timestamp/ts/ts_ist"
    total = next((where[c] for c in _TOTAL if c in where), None)
    legs = [(where[c], where[p]) for c, p in _LEGS if c in where and p in where]
    call, put = legs[0] if legs else (None, None)
    if total is None and call is None:
        return "missing column total_premium/tp_sum (or call_last_price and put_last_price)"
    strikes = tuple(where[c] for c in _STRIKES if c in where)
    return _Columns(ts, total, call, put, where.get("expiry"), where.get("days_to_expiry"), strikes)


def _premium(cells: list[str], c: _Columns) -> Premium:
    def cell(i: int | None) -> str | None:
        return None if i is None else cells[i]

    expiry = cell(c.expiry)
    dte = cell(c.dte)
    return Premium(
        parse_ts(cells[c.ts]),
        premium_paise(cell(c.total), cell(c.call), cell(c.put)),
        _day(expiry) if expiry and expiry.strip() else None,
        count(dte, "days_to_expiry") if dte and dte.strip() else None,
        "|".join(cells[i].strip() for i in c.strikes) if c.strikes else None,
    )


def parse_ts(text: str) -> datetime:
    """An IST instant from any timestamp OP or opchain wrote: ISO-8601 with an offset (or Z),
    or a naive ``YYYY-MM-DD HH:MM:SS`` / ISO time, which OP's tools meant as IST."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=IST) if moment.tzinfo is None else to_ist(moment)
    except (ValueError, OverflowError):
        raise ValueError(f"bad timestamp {show(text)}") from None


def premium_paise(total: str | None, call: str | None, put: str | None) -> int | None:
    """A row's total premium in paise from its cells (None: the file lacks that column).

    The total column wins when there is one, but when the file has the legs and either is
    empty or zero the premium is None: OP's ``tp_sum`` counted a missing side as 0, and a
    one-leg value in a straddle profile would be a fake dip.
    """
    if call is not None and put is not None:
        legs = price_paise(call), price_paise(put)
        if legs[0] is None or legs[1] is None:
            return None
        if total is None:
            return legs[0] + legs[1]
    return None if total is None else price_paise(total)


def price_paise(text: str) -> int | None:
    """Rupees as written (``123.45``, ``123.450000``, ``245.70000000000002``) to paise;
    None for an empty cell or a price that is not a positive number (OP wrote 0 for none)."""
    text = text.strip()
    if not text:
        return None
    try:
        paise = float(text) * 100
    except ValueError:
        raise ValueError(f"bad price {show(text)}") from None
    return round(paise) if math.isfinite(paise) and paise > 0 else None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"bad expiry {show(text)}") from None


@dataclass
class Survey:
    """What an OP directory holds, for the import report."""

    splits: list[OpSplit]
    masters: list[OpMaster]
    problems: list[Problem]

    def summary(self) -> list[str]:
        """Short lines: split files per index and bucket with their days, masters per
        format, and how many problems there were."""
        lines = [_span(f"{len(self.splits)} split files", self.splits)]
        groups: dict[tuple[str, str], list[OpSplit]] = {}
        for split in self.splits:
            groups.setdefault((split.index, split.bucket), []).append(split)
        for (index, bucket), group in sorted(groups.items(), key=_group_order):
            lines.append("  " + _span(f"{index} {bucket}: {len(group)} files", group))
        kinds = Counter(m.kind for m in self.masters)
        lines.append(
            f"{len(self.masters)} weekday masters: "
            + ", ".join(f"{kinds[k]} {k}" for k in ("adv", "bulk", "avg"))
        )
        lines.append(f"{len(self.problems)} problems")
        return lines


def _span(head: str, splits: list[OpSplit]) -> str:
    if not splits:
        return head
    days = {s.day for s in splits}
    return f"{head}, {len(days)} days from {min(days)} to {max(days)}"


def _group_order(item: tuple[tuple[str, str], list[OpSplit]]) -> tuple[str, int]:
    (index, bucket), _ = item
    return index, BUCKETS.index(bucket)


def survey(root: Path) -> Survey:
    """Find every split and master under ``root`` and read the masters; writes nothing.
    Raises FileNotFoundError or NotADirectoryError when ``root`` is not a directory."""
    root = check_root(root)
    splits, split_problems = find_splits(root)
    masters, master_problems = find_masters(root)
    return Survey(splits, masters, split_problems + master_problems)
