"""``opchain verify``: how well a recorded day was recorded, one report per day and index.

Each report has a score out of 100 made of five parts (:data:`WEIGHTS`, :func:`score`), and the
findings that cost it points, each naming its file and, where there is one, its line or minute:

- **coverage** (50): the share of the session's minutes (the trading calendar's session) in
  which each of the index's split files and its overview file has a row, averaged over those
  files; every run of missing minutes of a file is a ``gap`` finding.
- **duplicates** (10): a timestamp a file already had (split, overview, analytics): 1 point each.
- **quotes** (10): raw legs flagged ``stale`` or ``crossed_book`` (:mod:`opchain.collect.validate`).
  A feed always has a few: up to ``QUOTES_FREE`` (1 %) of the legs cost nothing; above it the
  part falls linearly to 0 at ``QUOTES_FREE + QUOTES_SPAN`` (6 %). Each raw file with such legs
  is a finding (their count and the first minute), costing nothing while under the share.
- **raw** (10): the share of the split files' cycles (timestamps) the raw store holds legs of;
  each run of cycles without raw legs is a finding.
- **parse** (10): a line of a daily CSV that is not a row of it (:mod:`opchain.store.csvrows`
  says why) costs 2 points, a file that cannot be read at all (its header, a raw part) 10.

- **profiles** (10): the weekday master and the DTE profile each of the index's split files of
  the day feeds, against a rebuild (:mod:`opchain.history.profilecheck`): the share of them
  that is missing, lacks the day in its ledger, or whose cells are not what the split files of
  the days its ledger lists give; each is a ``profile`` finding naming the file and what
  differs.

The total is floored to one decimal: 100 means nothing at all was found that costs a point.
Only reads.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from opchain.history import profilecheck
from opchain.market import calendar
from opchain.market.indices import INDICES
from opchain.market.ist import IST
from opchain.store import layout
from opchain.store import rawparts as parts
from opchain.store.appendlog import FileFormatError
from opchain.store.csvrows import Follow, Problem, aware
from opchain.store.regular import NotRegularFile, open_file
from opchain.store.splits import OLD_NAMES, split_parser

WEIGHTS = {
    "coverage": 50.0,
    "duplicates": 10.0,
    "quotes": 10.0,
    "raw": 10.0,
    "parse": 10.0,
    "profiles": 10.0,
}
DUPLICATE_COST = 1.0  # points of ``duplicates`` per duplicated timestamp
LINE_COST = 2.0  # points of ``parse`` per bad line
FILE_COST = 10.0  # ... per file that cannot be read at all
QUOTES_FREE = 0.01  # share of stale or crossed legs that costs nothing
QUOTES_SPAN = 0.05  # the share above QUOTES_FREE at which ``quotes`` reaches 0
BAD_QUOTES = ("stale", "crossed_book")
NOT_INDICES = frozenset({"INDIAVIX"})  # overview files of a quote that has no chain


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What one day and index's files hold, counted: the input of :func:`score`."""

    session_minutes: int  # minutes of the session
    covered: tuple[int, ...]  # per split or overview file: session minutes with a row
    duplicates: int  # timestamps a file already had
    legs: int  # raw legs
    bad_quotes: int  # of them, stale or crossed
    cycles: int  # distinct timestamps of the split files
    cycles_without_raw: int  # of them, with no raw legs
    bad_lines: int  # lines of CSVs that are not rows
    bad_files: int  # files not read at all
    profiles: int = 0  # the weekday masters and DTE profiles the day's split files feed
    bad_profiles: int = 0  # of them, not what a rebuild from the split files gives


def score(facts: Facts) -> tuple[float, dict[str, float]]:
    """The score out of 100 and its parts (each out of its weight in :data:`WEIGHTS`)."""
    minutes = max(facts.session_minutes, 1)
    files = facts.covered or (0,)
    coverage = sum(min(c, minutes) for c in files) / (len(files) * minutes)
    share = facts.bad_quotes / facts.legs if facts.legs else 0.0
    quotes = 1.0 - min(1.0, max(0.0, share - QUOTES_FREE) / QUOTES_SPAN)
    raw = 1.0 - facts.cycles_without_raw / facts.cycles if facts.cycles else 0.0
    lost = facts.bad_lines * LINE_COST + facts.bad_files * FILE_COST
    got = {
        "coverage": WEIGHTS["coverage"] * coverage,
        "duplicates": max(0.0, WEIGHTS["duplicates"] - facts.duplicates * DUPLICATE_COST),
        "quotes": WEIGHTS["quotes"] * quotes,
        "raw": WEIGHTS["raw"] * raw,
        "parse": max(0.0, WEIGHTS["parse"] - lost),
        "profiles": WEIGHTS["profiles"] * (1 - facts.bad_profiles / max(facts.profiles, 1)),
    }
    parts_ = {name: _floor(value) for name, value in got.items()}
    return _floor(sum(got.values())), parts_


def _floor(value: float) -> float:
    """Floored to one decimal (a hair under a whole is not whole), float noise forgiven."""
    return math.floor(round(value * 10, 6)) / 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing found: its kind (``gap``, ``duplicate``, ``stale``, ``crossed_book``,
    ``no_raw``, ``parse``, ``missing``, ``calendar``, ``profile``), the file, the line or
    minute(s) where there is one, what is wrong, and the points it cost (before a part is
    floored at 0)."""

    kind: str
    file: str
    line: int | None = None
    minute: str | None = None
    detail: str
    cost: float

    def where(self) -> str:
        at = f":{self.line}" if self.line is not None else ""
        return f"{self.file}{at}" + (f" at {self.minute}" if self.minute else "")

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "minute": self.minute,
            "detail": self.detail,
            "cost": round(self.cost, 3),
        }


@dataclass(slots=True, kw_only=True)
class Report:
    day: date
    index: str
    score: float
    parts: dict[str, float]
    findings: list[Finding] = field(default_factory=list)

    def worst(self) -> Finding | None:
        """The finding that cost the most points (None: none cost any)."""
        worst = max(self.findings, key=lambda f: f.cost, default=None)
        return worst if worst is not None and worst.cost > 0 else None

    def as_json(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "index": self.index,
            "score": self.score,
            "parts": self.parts,
            "findings": [f.as_json() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class Roots:
    """Where a data directory's daily files are (``Settings.split_root`` may be elsewhere)."""

    base: Path  # files are named relative to it
    splits: Path
    overview: Path
    analytics: Path
    raw: Path
    profiles: Path | None = None  # weekday masters and DTE profiles (None: not checked)

    def name(self, path: Path) -> str:
        """A file's name in a finding: relative to the data directory when it is in it."""
        return str(path.relative_to(self.base)) if path.is_relative_to(self.base) else str(path)

    @classmethod
    def of(
        cls, data_dir: Path, split_root: Path | None = None, profiles_root: Path | None = None
    ) -> "Roots":
        return cls(
            base=data_dir,
            splits=split_root or layout.split_root(data_dir),
            overview=layout.overview_root(data_dir),
            analytics=layout.analytics_root(data_dir),
            raw=layout.raw_root(data_dir),
            profiles=profiles_root or layout.profiles_root(data_dir),
        )


def recorded_days(roots: Roots) -> dict[date, list[str]]:
    """Every day any daily file or raw folder is named after, with its indices, oldest first."""
    found: dict[date, set[str]] = {}

    def add(index: str, name: str) -> None:
        try:
            day = date.fromisoformat(name)
        except ValueError:
            return
        if index not in NOT_INDICES:
            found.setdefault(day, set()).add(index)

    for p in roots.splits.glob(layout.SPLIT_FILES):
        add(p.parts[-4], p.stem)
    for p in roots.overview.glob(layout.OVERVIEW_FILES):
        add(p.parts[-2], p.stem)
    for p in roots.analytics.glob(layout.ANALYTICS_FILES):
        add(p.parts[-3], p.stem)
    for folder in roots.raw.glob(layout.RAW_FOLDERS):
        day, index = layout.raw_folder_key(folder)
        add(index, day)
    return {day: sorted(found[day]) for day in sorted(found)}


def session_of(index: str, day: date) -> tuple[datetime, datetime, str | None]:
    """The session's open and close, and a note when the calendar has none for the day (the
    regular hours are then assumed)."""
    spec = INDICES.get(index)
    exchange = spec.exchange if spec is not None else "NSE"
    try:
        found = calendar.session(exchange, day)
        note = None if found is not None else f"{day} is not a trading day of {exchange}"
    except calendar.CalendarUnavailable as err:
        found, note = None, str(err)
    if found is not None:
        return found.open, found.close, None
    opens = datetime.combine(day, time(9, 15), IST)
    return opens, datetime.combine(day, time(15, 30), IST), note


def verify(
    roots: Roots, day: date, index: str, checked: "profilecheck.Checked | None" = None
) -> Report:
    """The report of one day and index (module docstring); ``checked`` keeps the profiles
    compared between the reports of one run (each is compared once)."""
    opens, closes, note = session_of(index, day)
    minutes = [
        opens + timedelta(minutes=m) for m in range((closes - opens) // timedelta(minutes=1))
    ]
    name = f"{day.isoformat()}.csv"
    splits = sorted((roots.splits / index).glob(f"*/*/{name}"))
    overview = layout.overview_file(roots.overview, index, day)
    analytics = sorted((roots.analytics / index).glob(f"*/{name}"))
    findings: list[Finding] = []
    if note:
        findings.append(
            Finding(kind="calendar", file=index, detail=f"{note}; 09:15-15:30 assumed", cost=0.0)
        )
    covered: list[tuple[Path, set[datetime]]] = []
    split_stamps: set[datetime] = set()
    duplicates = bad_lines = bad_files = 0
    for path, parser in (
        [(p, split_parser) for p in splits]
        + [(overview, _stamped)]
        + [(p, _stamped) for p in analytics]
    ):
        if not path.exists():
            findings.append(
                Finding(kind="missing", file=roots.name(path), detail="no such file", cost=0.0)
            )
            if path == overview:  # every minute of it is missing: its gap says so
                covered.append((path, set()))
            continue
        rows, problems = _read(path, parser)
        for problem in problems:
            whole = not problem.reason.endswith("skipped")  # the file is not read at all
            bad_files += whole
            bad_lines += not whole
            findings.append(
                Finding(
                    kind="parse",
                    file=roots.name(path),
                    line=problem.line,
                    detail=problem.reason,
                    cost=FILE_COST if whole else LINE_COST,
                )
            )
        seen: set[datetime] = set()
        for line, ts in rows:
            if ts in seen:
                duplicates += 1
                findings.append(
                    Finding(
                        kind="duplicate",
                        file=roots.name(path),
                        line=line,
                        minute=_hhmm(ts),
                        detail=f"timestamp {ts.isoformat()} twice",
                        cost=DUPLICATE_COST,
                    )
                )
            seen.add(ts)
        if path in analytics:
            continue
        if path != overview:
            split_stamps |= seen
        covered.append((path, {_minute(ts) for ts in seen}))
    counts = []
    for path, have in covered:
        present = [m in have for m in minutes]
        counts.append(sum(present))
        for first, last in _runs(minutes, present):
            run = (last - first) // timedelta(minutes=1) + 1
            cost = WEIGHTS["coverage"] * run / (len(minutes) * len(covered))
            findings.append(
                Finding(
                    kind="gap",
                    file=roots.name(path),
                    minute=_span(first, last),
                    detail=f"{run} minute{'s' * (run > 1)} without a row",
                    cost=cost,
                )
            )
    raw = _raw(roots, day, index, findings)
    bad_files += raw.unreadable
    without = sorted(split_stamps - raw.stamps)
    folder = layout.raw_folder(roots.raw, day, index)
    for first, last, n in _cycle_runs(sorted(split_stamps), set(without)):
        findings.append(
            Finding(
                kind="no_raw",
                file=roots.name(folder),
                minute=_span(first, last),
                detail=f"{n} split cycle{'s' * (n > 1)} without raw legs",
                cost=WEIGHTS["raw"] * n / len(split_stamps),
            )
        )
    profiles, bad_profiles = 0, 0
    if roots.profiles is not None:
        profiles, mismatched = profilecheck.check(
            roots.profiles, roots.splits, splits, day, {} if checked is None else checked
        )
        bad_profiles = len(mismatched)
        for path, detail in mismatched:
            findings.append(
                Finding(
                    kind="profile",
                    file=roots.name(path),
                    detail=detail,
                    cost=WEIGHTS["profiles"] / profiles,
                )
            )
    facts = Facts(
        session_minutes=len(minutes),
        covered=tuple(counts),
        duplicates=duplicates,
        legs=raw.legs,
        bad_quotes=raw.bad,
        cycles=len(split_stamps),
        cycles_without_raw=len(without),
        bad_lines=bad_lines,
        bad_files=bad_files,
        profiles=profiles,
        bad_profiles=bad_profiles,
    )
    total, got = score(facts)
    lost = WEIGHTS["quotes"] - got["quotes"]  # shared by the findings, by their legs
    for f in raw.quote_findings:
        cost = lost * f.cost / raw.bad
        findings.append(
            Finding(kind=f.kind, file=f.file, minute=f.minute, detail=f.detail, cost=cost)
        )
    return Report(day=day, index=index, score=total, parts=got, findings=findings)


def verify_days(
    roots: Roots,
    days: dict[date, list[str]],
    step: Callable[[int, int], None] | None = None,
) -> list[Report]:
    """The reports of these days and their indices, in order; ``step(done, total)`` after each."""
    todo = [(day, index) for day, indices in days.items() for index in indices]
    reports = []
    checked: profilecheck.Checked = {}
    for n, (day, index) in enumerate(todo, 1):
        reports.append(verify(roots, day, index, checked))
        if step is not None:
            step(n, len(todo))
    return reports


def _stamped(header: list[str]) -> Callable[[list[str]], datetime]:
    if "ts" not in header:
        raise ValueError("no column ts")
    at = header.index("ts")
    return lambda found: aware(found[at])


def _read(
    path: Path, parser: Callable[[list[str]], Callable[[list[str]], object]]
) -> tuple[list[tuple[int, datetime]], list[Problem]]:
    """A daily CSV's rows (line number, timestamp) and what in it is not a row; a torn last
    line (a day that is over has none) is one of them."""
    problems: list[Problem] = []
    try:
        with open_file(path) as f:
            data = f.read()
    except (NotRegularFile, OSError) as err:
        return [], [Problem(path, None, f"cannot be read ({err})")]
    if not data:
        return [], [Problem(path, None, "empty file (no header, no rows)")]

    def parser_for(header: list[str]) -> Callable[[list[str]], tuple[int, datetime]]:
        parse = parser(header)
        names = [OLD_NAMES.get(h, h) for h in header]
        at = names.index("ts") if "ts" in names else 0

        def numbered(found: list[str]) -> tuple[int, datetime]:
            parse(found)
            return follow.line, aware(found[at])  # Follow counts the line before parsing it

        return numbered

    follow = Follow(path, parser_for, sink=problems)
    rows = follow.feed(data)
    if not data.endswith(b"\n"):
        problems.append(Problem(path, follow.line + 1, "torn last line (no newline); skipped"))
    return rows, problems


def _minute(ts: datetime) -> datetime:
    return ts.astimezone(IST).replace(second=0, microsecond=0)


def _hhmm(ts: datetime) -> str:
    return ts.astimezone(IST).strftime("%H:%M")


def _span(first: datetime, last: datetime) -> str:
    return _hhmm(first) if first == last else f"{_hhmm(first)}-{_hhmm(last)}"


def _runs(minutes: list[datetime], present: list[bool]) -> Iterable[tuple[datetime, datetime]]:
    start = None
    for i, there in enumerate(present):
        if not there and start is None:
            start = i
        elif there and start is not None:
            yield minutes[start], minutes[i - 1]
            start = None
    if start is not None:
        yield minutes[start], minutes[-1]


def _cycle_runs(
    stamps: list[datetime], missing: set[datetime]
) -> Iterable[tuple[datetime, datetime, int]]:
    run: list[datetime] = []
    for ts in stamps:
        if ts in missing:
            run.append(ts)
        elif run:
            yield run[0], run[-1], len(run)
            run = []
    if run:
        yield run[0], run[-1], len(run)


@dataclass(slots=True)
class _Raw:
    stamps: set[datetime] = field(default_factory=set)
    legs: int = 0
    bad: int = 0
    unreadable: int = 0
    quote_findings: list[Finding] = field(default_factory=list)  # cost: the legs' count


def _raw(roots: Roots, day: date, index: str, findings: list[Finding]) -> _Raw:
    """The raw store's cycles of a day and index, and its stale and crossed legs, window by
    window (a part with its journal)."""
    import pyarrow as pa

    found = _Raw()
    folder = layout.raw_folder(roots.raw, day, index)
    if not folder.is_dir():
        findings.append(
            Finding(kind="missing", file=roots.name(folder), detail="no raw legs", cost=0.0)
        )
        return found
    names = [p.name for p in folder.glob("part-*.parquet")]
    names += [p.name for p in folder.glob(parts.JOURNALS)]
    labels = sorted(
        {n.removeprefix("part-").removeprefix("_journal-").split(".")[0] for n in names}
    )
    for label in labels:
        try:
            table = parts.read_window(folder, label, ["ts", "flag"])
        except FileFormatError as err:
            found.unreadable += 1
            findings.append(
                Finding(
                    kind="parse",
                    file=roots.name(folder / f"part-{label}.parquet"),
                    detail=str(err).split(": ", 1)[-1],
                    cost=FILE_COST,
                )
            )
            continue
        found.legs += table.num_rows
        millis = table.column("ts").cast(pa.int64()).to_pylist()
        found.stamps |= {_at(m) for m in set(millis) if m is not None}
        file = roots.name(folder / f"part-{label}.parquet")
        flags = table.column("flag").to_pylist()
        for flag in BAD_QUOTES:
            hit = [m for m, f in zip(millis, flags, strict=True) if f == flag and m is not None]
            if not hit:
                continue
            found.bad += len(hit)
            first = _at(min(hit))
            what = "stale quote" if flag == "stale" else "crossed book"
            what += "s" * (len(hit) > 1)
            found.quote_findings.append(
                Finding(
                    kind=flag,
                    file=file,
                    minute=_hhmm(first),
                    detail=f"{len(hit)} {what} (the first at {_hhmm(first)})",
                    cost=float(len(hit)),
                )
            )
    return found


def _at(millis: int) -> datetime:
    return datetime.fromtimestamp(millis // 1000, IST) + timedelta(milliseconds=millis % 1000)
