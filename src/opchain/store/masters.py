"""Keeping weekday masters and DTE profiles up to date from the split files.

Three ways in, one result. During a session :class:`MasterStream` reads only the bytes the split
files gained since its last look (a cursor per file) and adds each minute once it is over. At
the end of a day :func:`close_day` adds what is left and closes the day in every ledger (``opchain
eod``). :func:`build` adds whole days from any split files, opchain's or OP's (``opchain
rebuild-masters``, ``opchain import``). Because the ledgers keep any minute from counting twice
and the sums are exact, the three agree byte for byte.
"""

import bisect
import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from opchain.market.ist import IST, to_ist
from opchain.profiles.master import CLOSED, Cell, add_minutes, merge_profiles
from opchain.profiles.minutes import CLOSE, SESSION_MINUTES, last_per_minute, minute_of, paise
from opchain.store.csvrows import Follow, aware, report
from opchain.store.opdata import OpSplit, Problem
from opchain.store.profiles import ProfileBook, dte_path, weekday_path
from opchain.store.splitfast import Day, moment, read_days

Series = tuple[str, str, str]  # index, bucket, offset label
_TS, _TOTAL, _DTE = "ts", "total_premium", "days_to_expiry"


def targets(adv_root: Path, series: Series, day: date, dte: int | None) -> list[Path]:
    """The profiles a day of a series belongs to: its weekday master, and its DTE profile
    when the days to expiry are known."""
    paths = [weekday_path(adv_root, *series, day)]
    if dte is not None and dte >= 0:
        paths.append(dte_path(adv_root, *series, dte))
    return paths


def add_day_part(
    book: ProfileBook,
    paths: Iterable[Path],
    day: date,
    rows: Iterable[tuple[datetime, int | None]],
    close: bool,
) -> int:
    """Add a day's rows (or the finished minutes among them) to each profile; returns the
    minutes added to the first."""
    rows = list(rows)
    minutes = last_per_minute(rows)
    stamps = {minute_of(ts): ts for ts, value in rows if value is not None}
    added = []
    for path in paths:
        profile, ledger = book[path]
        added.append(add_minutes(profile, ledger, day, minutes, stamps, close))
        if added[-1] or close:
            book.touch(path)
    return added[0] if added else 0


_Premium = tuple[datetime, int | None, int]  # ts, total premium in paise, days to expiry


@dataclass
class _Tail:
    """How far one split file has been read, and the rows of minutes not yet over."""

    follow: Follow[_Premium] | None = None
    pending: list[tuple[datetime, int | None]] = field(default_factory=list)
    dte: int | None = None


@dataclass
class MasterStream:
    """Live updates of one day's profiles from the split files as they grow."""

    csv_root: Path
    adv_root: Path
    day: date
    durable: bool = False
    # Profiles are saved at most this often (wall seconds) and when the day closes, and each
    # time only one in ``save_share`` of them, in turn: a profile is saved every
    # ``save_share``-th time, and no minute pays for all 140 files (each is rewritten whole,
    # crash-safe with its ledger). Unsaved minutes are not lost by a crash: the next run reads
    # the split files again from the ledgers' marks. Live, a minute lasts longer than
    # ``save_every``, so each minute saves a fifth of the profiles; a simulated day at 60x
    # speed saves every few seconds instead of 375 times.
    save_every: float = 5.0
    save_share: int = 5
    now: Callable[[], float] = time.monotonic
    # Bad lines of the split files: logged (one warning per file) when None, else kept here
    problems: list[Problem] | None = None
    # A write the system refuses raises (a command) instead of being logged and tried again
    # at the next save (the recorder, which records on whatever happens to the profiles)
    strict: bool = False
    book: ProfileBook = field(init=False)
    tails: dict[Series, _Tail] = field(default_factory=dict)
    _saved_at: float = field(init=False, default=-math.inf)
    _turn: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.book = ProfileBook(durable=self.durable, warn=self.problems is None)

    def update(
        self, series: Iterable[Series], now: datetime | None = None, final: bool = False
    ) -> int:
        """Read what each series' split file gained and add every minute that is over: before
        ``now``'s minute, or before the newest row's when ``now`` is not given (all of them
        with ``final``, closing the day). Saves the profiles it changed; returns the minutes
        added."""
        added = 0
        for key in series:
            tail = self.tails.setdefault(key, _Tail())
            new = self._read_new(key, tail)
            if new is None:  # no file (yet): nothing to add or close
                continue
            tail.pending += new
            if final:
                done = tail.pending
            elif tail.pending:
                current = minute_of(now if now is not None else tail.pending[-1][0])
                done = [r for r in tail.pending if minute_of(r[0]) < current]
            else:
                continue
            paths = targets(self.adv_root, key, self.day, tail.dte)
            added += add_day_part(self.book, paths, self.day, done, close=final)
            tail.pending = tail.pending[len(done) :]
        if final:
            self.save()
        elif self.now() - self._saved_at >= self.save_every:
            self.save(turn=self._turn)
            self._turn += 1
        return added

    def save(self, turn: int | None = None) -> None:
        """Save every profile changed since it was last saved (with ``turn``: only those
        whose turn it is, one in ``save_share``)."""
        failed: list[Problem] | None = None if self.strict else []
        if turn is None or self.save_share <= 1:
            self.book.save(failed=failed)
        else:
            order = {path: i for i, path in enumerate(sorted(self.book.loaded))}
            share = self.save_share
            self.book.save(lambda path: order[path] % share == turn % share, failed)
        report(failed or [])
        self._saved_at = self.now()
        for path in sorted(self.book.stale):  # saved by another process: read it again, and
            self.book.forget(path)  # the split file from its start (the ledgers skip the rest)
            self.tails.pop((path.parents[2].name, path.parents[1].name, path.parent.name), None)
            why = "changed on disk by another process (a rebuild?): read again, not overwritten"
            report([Problem(path, None, why)])
        self.book.stale.clear()

    def _read_new(self, key: Series, tail: _Tail) -> list[tuple[datetime, int | None]] | None:
        path = self.csv_root.joinpath(*key, f"{self.day.isoformat()}.csv")
        if not path.is_file():  # none, or a FIFO, a device...: nothing to add or close
            if path.exists() and tail.follow is None:
                tail.follow = Follow(path, _premium_parser, sink=self.problems)
                tail.follow.read()  # says once that it is not read
            return None
        if tail.follow is None:
            tail.follow = Follow(path, _premium_parser, sink=self.problems)
        rows = []
        for ts, total, dte in tail.follow.read():  # whole lines, bad ones skipped and logged
            rows.append((ts, total))
            tail.dte = dte
        return None if tail.follow.dead else rows  # a header not read: the day is not closed


def _premium_parser(header: list[str]) -> Callable[[list[str]], _Premium]:
    """Reads a split row's time, total premium and days to expiry, by column name."""
    missing = [c for c in (_TS, _TOTAL, _DTE) if c not in header]
    if missing:
        raise ValueError(f"not a split file: no column {', '.join(missing)}")
    ts, total, dte = (header.index(c) for c in (_TS, _TOTAL, _DTE))

    def parse(cells: list[str]) -> _Premium:
        text = cells[total]
        return aware(cells[ts]), paise(float(text)) if text else None, int(cells[dte])

    return parse


Progress = Callable[[int, int], None]  # (files done, files in all)
_BATCH = 64  # split files read ahead, across threads


def build(
    book: ProfileBook,
    adv_root: Path,
    splits: list[OpSplit],
    progress: Progress | None = None,
    now: datetime | None = None,
) -> list[Problem]:
    """Add whole days from split files (any dialect :mod:`opchain.store.opdata` reads) to the
    profiles in ``book``, closing each day. Days already closed in a ledger are not added
    again. Returns what could not be read.

    A day whose session is not over at ``now`` (None: every day is over) is not closed: only
    its finished minutes are added, as live, so the recorder adds the rest (closed, a day
    would lose its afternoon for good).

    Files are read a few at a time in threads, opchain's own clean ones by
    :mod:`opchain.store.splitfast`'s fast path, and their minutes summed per profile in arrays
    (:class:`_Sums`), put into the profiles' cells at the end: the same cells and ledgers as
    :func:`add_day_part` makes row by row."""
    problems: list[Problem] = []
    sums = _Sums()
    done = 0
    workers = min(4, os.cpu_count() or 1)
    chunks = [splits[i : i + _BATCH] for i in range(0, len(splits), _BATCH)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk, read in zip(chunks, pool.map(read_days, chunks), strict=True):
            for split, (day, found) in zip(chunk, read, strict=True):
                problems += found
                if day.usable:  # a file of which nothing could be read closes no day
                    series = (split.index, split.bucket, split.offset)
                    paths = targets(adv_root, series, split.day, day.dte)
                    over = now is None or day_over(split.day, now)
                    if not over:
                        today = now is not None and split.day == to_ist(now).date()
                        current = minute_of(now) if today and now is not None else ""
                        kept = day.minutes < bisect.bisect_left(SESSION_MINUTES, current)
                        day = day._replace(minutes=day.minutes[kept], paise=day.paise[kept],
                                           stamps=day.stamps[kept])  # fmt: skip
                    sums.add(book, paths, split.day, day, close=over)
                done += 1
                if progress:
                    progress(done, len(splits))
    sums.into(book)
    return problems


class _Sums:
    """Minutes ``build`` added, per profile: counts, sums, lows, highs and newest stamps as
    arrays over the session's minutes, put into the profile's cells by :meth:`into`. The
    ledgers are kept as :func:`~opchain.profiles.master.add_minutes` keeps them."""

    def __init__(self) -> None:
        self.held: dict[Path, NDArray[np.int64]] = {}

    def add(
        self, book: ProfileBook, paths: Iterable[Path], day: date, found: Day, close: bool
    ) -> None:
        for path in paths:
            ledger = book[path][1]
            mark = ledger.get(day)
            if mark == CLOSED:
                minutes = found.minutes[:0]
            elif mark is None:
                minutes = found.minutes
            else:
                minutes = found.minutes[found.minutes > SESSION_MINUTES.index(mark)]
            if len(minutes):
                some = slice(len(found.minutes) - len(minutes), None)  # the newest, ascending
                held = self.held.get(path)
                if held is None:
                    held = self.held[path] = _empty()
                n, total, low, high, stamp = held
                n[minutes] += 1
                total[minutes] += found.paise[some]
                low[minutes] = np.minimum(low[minutes], found.paise[some])
                high[minutes] = np.maximum(high[minutes], found.paise[some])
                stamp[minutes] = np.maximum(stamp[minutes], found.stamps[some])
                ledger[day] = SESSION_MINUTES[int(minutes[-1])]
            if close and mark != CLOSED:
                ledger[day] = CLOSED
            if len(minutes) or close:
                book.touch(path)

    def into(self, book: ProfileBook) -> None:
        for path, held in self.held.items():
            n, total, low, high, stamp = held.tolist()
            added = {
                SESSION_MINUTES[i]: Cell(n[i], total[i], low[i], high[i], moment(stamp[i]))
                for i in np.flatnonzero(held[0]).tolist()
            }
            merge_profiles(book[path][0], added)
        self.held.clear()


def _empty() -> NDArray[np.int64]:
    held = np.zeros((5, len(SESSION_MINUTES)), np.int64)
    held[2], held[3], held[4] = (
        np.iinfo(np.int64).max,
        np.iinfo(np.int64).min,
        np.iinfo(np.int64).min,
    )
    return held


def day_over(day: date, now: datetime) -> bool:
    """Whether ``day``'s session (to 15:30 IST) is over at ``now``."""
    return datetime.combine(day, CLOSE, IST) <= now
