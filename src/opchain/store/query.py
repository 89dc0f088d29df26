"""Today against the profiles of the days before it.

One row per session minute of a series: today's premium (the last tick of the minute, read
from the split file by the reader the profiles are built with, so a damaged line costs that
line) beside the mean, low and high of that minute over the earlier days of the weekday master
and of the DTE profile, and how many days those are.

During a session the profiles already hold today's finished minutes (they are updated live),
and a profile may hold later days too when an earlier day is asked for. Only days before the
day asked for count. Means could be un-added from the exact paise sums, lows and highs cannot,
so the profile over the earlier days is found, exactly, as the first of these that applies:

1. the profile itself, when it holds no day from the day asked for on;
2. the profile as it was before that day was first added, which the writer keeps
   (``store.profiles.earlier_path``), when that day is the profile's newest and only later
   one, and the kept profile holds exactly the profile's earlier days and, with the day's
   minutes that the ledger says are in added back, equals the profile minute for minute
   (so a kept copy from before a rebuild is never used);
3. otherwise a rebuild over the earlier days' split files, as ``opchain rebuild-masters``
   would make it (then only the days whose split files are there count).

The first two read two small files whatever the history's length; the third reads one split
file per earlier day (about a second for 50 days), for a past day or a profile rebuilt today.

A damaged file costs only what it holds: the split file's bad lines are left out, a profile
that cannot be read (or no longer matches its ledger) is not compared with, and each is one
sentence in ``skipped``. Only regular files inside their root are read (``store.regular``), so
a symlink out of the data directory or a FIFO is never opened.
"""

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

from opchain.profiles.master import Cell, Ledger, Profile, applied_through, merge_profiles
from opchain.profiles.minutes import SESSION_MINUTES, last_per_minute
from opchain.store.csvrows import report
from opchain.store.masters import build
from opchain.store.opdata import OpSplit, read_premiums
from opchain.store.profiles import ProfileBook, dte_path, earlier_path, peek, weekday_path
from opchain.store.regular import regular_file
from opchain.store.splits import split_path

log = logging.getLogger(__name__)


class MinuteVsProfile(NamedTuple):
    minute: str  # IST HH:MM
    today: float | None  # the premium at the minute's last tick, rupees
    weekday_avg: float | None  # over the earlier days of the weekday master with this minute
    weekday_min: float | None
    weekday_max: float | None
    weekday_days: int | None  # how many days those are
    dte_avg: float | None
    dte_min: float | None
    dte_max: float | None
    dte_days: int | None


class Comparison(NamedTuple):
    minutes: list[MinuteVsProfile]
    dte: int | None  # calendar days to expiry of the day asked for
    weekday_days: int  # days before it in the weekday master
    dte_days: int | None  # days before it in the DTE profile (None: no DTE known)


class Earlier(NamedTuple):
    """A profile over the days before a day, and which days those are."""

    profile: Profile
    days: tuple[date, ...]


def compare(
    csv_root: Path,
    adv_root: Path,
    index: str,
    bucket: str,
    offset: str,
    day: date,
    skipped: list[str] | None = None,
) -> Comparison:
    """Every session minute of ``day`` for one series against the days before ``day``. What
    could not be read is added to ``skipped``, one sentence a file (module docstring)."""
    notes = skipped if skipped is not None else []
    series = (index, bucket, offset)
    in_paise, dte = _today(csv_root, split_path(csv_root, *series, day), series, day, notes)
    paths = [weekday_path(adv_root, *series, day)]
    paths += [] if dte is None else [dte_path(adv_root, *series, dte)]
    weekday, *rest = [earlier(csv_root, adv_root, p, series, day, in_paise, notes) for p in paths]
    by_dte = rest[0] if rest else None
    rows = []
    for minute in SESSION_MINUTES:
        rows.append(
            MinuteVsProfile(
                minute,
                None if minute not in in_paise else in_paise[minute] / 100,
                *_stats(weekday.profile.get(minute)),
                *_stats(by_dte.profile.get(minute) if by_dte else None),
            )
        )
    return Comparison(rows, dte, len(weekday.days), None if by_dte is None else len(by_dte.days))


def today_vs_profile(
    csv_root: Path, adv_root: Path, index: str, bucket: str, offset: str, day: date
) -> list[MinuteVsProfile]:
    """:func:`compare`'s minutes."""
    return compare(csv_root, adv_root, index, bucket, offset, day).minutes


def earlier(
    csv_root: Path,
    adv_root: Path,
    path: Path,
    series: tuple[str, str, str],
    day: date,
    today: dict[str, int],
    notes: list[str] | None = None,
) -> Earlier:
    """The profile at ``path`` over its days before ``day`` (module docstring); ``today``
    holds ``day``'s premium per minute in paise, as the split file has it."""
    stored = _peek(path, adv_root, notes)
    if stored is None:  # no profile (or one that cannot be read): nothing to compare with
        return Earlier({}, ())
    profile, ledger = stored
    before = {d: mark for d, mark in ledger.items() if d < day}
    days = tuple(sorted(before))
    later = ledger.keys() - before.keys()
    if not later:
        return Earlier(profile, days)
    if later == {day}:
        if not before:
            return Earlier({}, ())
        target = earlier_path(path)
        kept = _peek(target, adv_root) if target else None
        if kept is not None and kept[1] == before:
            added = _added(today, applied_through(ledger, day))
            if _sums(_pooled(kept[0], added)) == _sums(profile):
                return Earlier(kept[0], days)
    return _rebuilt(csv_root, adv_root, path, series, before)


def _rebuilt(
    csv_root: Path, adv_root: Path, path: Path, series: tuple[str, str, str], days: Ledger
) -> Earlier:
    """The profile at ``path`` rebuilt, in memory, from the split files of ``days``."""
    folder = csv_root.joinpath(*series)
    splits = [
        OpSplit(folder / f"{d.isoformat()}.csv", *series, d)
        for d in sorted(days)
        if (folder / f"{d.isoformat()}.csv").is_file()
    ]
    book = ProfileBook(fresh=True)
    build(book, adv_root, splits)  # adds each day to its weekday and its DTE profile
    profile, found = book[path]
    return Earlier(profile, tuple(sorted(found)))


def _added(today: dict[str, int], through: str | None) -> Profile:
    """``today``'s minutes up to ``through`` as a profile of one day."""
    if through is None:
        return {}
    return {m: Cell(1, v, v, v, _ANY_TIME) for m, v in today.items() if m <= through}


_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # the stamps are not compared


def _pooled(kept: Profile, added: Profile) -> Profile:
    pooled = dict(kept)
    merge_profiles(pooled, added)
    return pooled


def _sums(profile: Profile) -> dict[str, tuple[int, int, int, int]]:
    return {m: (c.n, c.total, c.low, c.high) for m, c in profile.items()}


def _peek(path: Path, root: Path, notes: list[str] | None = None) -> tuple[Profile, Ledger] | None:
    """:func:`~opchain.store.profiles.peek`, read again once if a save was caught halfway
    (the writer saves a profile every minute or so); None if it is missing or unreadable
    (then one sentence in ``notes``, when given)."""
    if not path.exists() and not path.is_symlink():
        return None
    if regular_file(path, root) is None:
        _note(notes, path, root, "not read (not a regular file inside the data directory)")
        return None
    for _ in range(2):
        try:
            found = peek(path)
        except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
            # the reason names the file or its ledger: as the answer names files, not the
            # server's own path to them
            reason = str(err).splitlines()[0].removeprefix(f"{path}: ")
            reason = reason.replace(f"{root.parent}/", "")
            _note(notes, path, root, f"not compared with ({reason})")
            return None
        if found is not None or not path.exists():
            return found
    _note(notes, path, root, "not compared with (it does not match its ledger)")
    return None


def _note(notes: list[str] | None, path: Path, root: Path, what: str, logged: bool = True) -> None:
    """``what`` of ``path`` in the answer's notes each time, in the log once per process (a
    dashboard asks every few seconds: the same file is not logged again); ``logged`` False:
    the log has it from elsewhere."""
    if notes is not None:
        note = f"{_where(path, root)}: {what}"
        if logged:
            log.log(logging.DEBUG if note in _logged else logging.WARNING, "%s", note)
            _logged.add(note)
        notes.append(note)


_logged: set[str] = set()


def _where(path: Path, root: Path) -> str:
    return f"{root.name}/{path.relative_to(root)}"


def _stats(cell: Cell | None) -> tuple[float | None, float | None, float | None, int | None]:
    if cell is None or cell.n <= 0:
        return None, None, None, None
    return round(cell.total / cell.n / 100, 6), cell.low / 100, cell.high / 100, cell.n


def _today(
    csv_root: Path, split: Path, series: tuple[str, str, str], day: date, notes: list[str]
) -> tuple[dict[str, int], int | None]:
    """The day's premium per minute in paise (the last tick of each), and its days to expiry,
    from its split file, as ``store.masters`` adds them to the profiles."""
    if not split.exists() and not split.is_symlink():
        return {}, None
    if regular_file(split, csv_root) is None:
        _note(notes, split, csv_root, "not read (not a regular file inside the data directory)")
        return {}, None
    premiums, problems = read_premiums(OpSplit(split, *series, day))  # bad lines cost themselves
    report(problems)  # in the log once a file, whichever reader meets the damage first
    lines = sorted({p.line for p in problems if p.line})
    if not premiums and problems:
        _note(notes, split, csv_root, f"not read ({problems[0].reason})", logged=False)
    elif lines:
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        said = f"{len(lines)} damaged line(s) left out (line {shown})"
        _note(notes, split, csv_root, said, logged=False)
    dte = next((p.days_to_expiry for p in premiums if p.days_to_expiry is not None), None)
    return last_per_minute((p.ts, p.paise) for p in premiums), dte
