"""``opchain replay``: a recorded day derived again from what was collected, through the live
pipeline's own code, and put in place of the files it derived before, all at once.

What was collected is the raw legs (``store.raw``: every leg as the broker gave it, each cycle's
spot and ATM) and the index quotes (the overview files: the raw store keeps option legs only).
Each recorded cycle becomes the :class:`~opchain.model.Snapshot` it was, and
:func:`opchain.pipeline.write_cycle` merges it against the same history a live session had (the
previous close's open interest, earlier days' iv30) and hands it to the same outputs: split,
overview and analytics files. The weekday masters and DTE profiles the day feeds are rebuilt
from the split files (``store.rebuild``, which agrees with the live stream byte for byte). Over
an unchanged day every file comes out as it was; after an upgrade or a changed setting (the
offsets, the rate) they come out as the new code and settings make them.

Everything is made beside the old files first, in a swap (``store.swap``), and put in place in
one step that a kill cannot leave half done: the old set or the new one. Files of the day the
new set has not (an offset no longer recorded) are removed in the same step.
"""

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import chain
from pathlib import Path

from opchain.collect.watch import plan_watches
from opchain.market import calendar
from opchain.market.indices import INDIA_VIX, INDICES
from opchain.market.instruments import parse_dump
from opchain.market.ist import IST
from opchain.merge.cycle import LoopStats
from opchain.model import Quote, Snapshot
from opchain.outputs import OUTPUTS, Session, opened
from opchain.pipeline import history_for, write_cycle
from opchain.settings import Settings
from opchain.store import layout, swap
from opchain.store.appendlog import FlushSchedule
from opchain.store.csvrows import Problem
from opchain.store.opdata import OpSplit, find_splits
from opchain.store.profiles import ledger_path, stored_profiles
from opchain.store.rebuild import rebuild
from opchain.store.recorded import raw_cycles, read_overview

log = logging.getLogger(__name__)

REPLAYED = ("splits", "overview", "analytics")  # the outputs a replay writes (of OUTPUTS)
Progress = Callable[[int], None]  # cycles replayed so far


class ReplayError(Exception):
    """A day that cannot be replayed; the message is one line saying why."""


@dataclass(frozen=True)
class Roots:
    """Where derived files go: a data directory's roots (the settings' own, or ``--into``'s)."""

    data_dir: Path
    splits: Path
    profiles: Path

    @classmethod
    def of(cls, settings: Settings) -> "Roots":
        return cls(settings.data_dir, settings.split_root, settings.profiles_root)

    @classmethod
    def beneath(cls, data_dir: Path) -> "Roots":
        return cls(data_dir, layout.split_root(data_dir), layout.profiles_root(data_dir))

    @property
    def overview(self) -> Path:
        return layout.overview_root(self.data_dir)

    @property
    def analytics(self) -> Path:
        return layout.analytics_root(self.data_dir)


@dataclass
class Replayed:
    day: date
    indices: tuple[str, ...] = ()
    cycles: int = 0
    same: int = 0  # files the replay made byte for byte as they were
    changed: int = 0  # files it replaced
    added: int = 0  # files that were not there
    removed: int = 0  # files of the day the new set has not
    problems: list[Problem] = field(default_factory=list)  # other days' files a rebuild skipped

    @property
    def files(self) -> int:
        return self.same + self.changed + self.added


def recorded_indices(raw_root: Path, day: date) -> tuple[str, ...]:
    """The indices whose legs of ``day`` the raw store holds."""
    folders = raw_root.glob(layout.RAW_FOLDERS)
    keys = (layout.raw_folder_key(f) for f in folders if f.is_dir())
    return tuple(sorted({index for on, index in keys if on == day.isoformat()}))


def recorded_snapshots(data_dir: Path, day: date, indices: tuple[str, ...]) -> Iterator[Snapshot]:
    """The day's cycles as they were collected: each raw cycle's chains with the index quotes
    the overview files hold for its time (none for an index whose line was lost)."""
    quotes: dict[datetime, dict[str, Quote]] = {}
    for index in (*indices, INDIA_VIX.key):
        path = layout.overview_path(data_dir, index, day)
        if path.exists():
            for ts, quote in read_overview(path):
                quotes.setdefault(ts, {})[index] = quote
    for cycle in raw_cycles(layout.raw_root(data_dir), day):
        yield Snapshot(
            ts=cycle.ts,
            received_at=cycle.received_at,
            indices=quotes.get(cycle.ts, {}),
            chains=tuple(cycle.chains),
        )


def replay_day(
    settings: Settings,
    day: date,
    now: datetime,
    into: Path | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
    force: bool = False,
) -> Replayed:
    """Derive ``day`` again from ``settings.data_dir``'s raw legs and overview files into the
    settings' own roots (or the data directory ``into``), then swap the new files in (module
    docstring); ``say`` hears the line before the swap begins.

    Refused (:class:`ReplayError`), unless ``force``: a replay that would lose rows, because a
    file of the day holds cycles the raw legs have not (a window of raw legs moved aside as
    damaged, a day partly recorded before the raw store)."""
    source = settings.data_dir
    indices = recorded_indices(layout.raw_root(source), day)
    if not indices:
        raise ReplayError(f"no raw legs of {day} in {layout.raw_root(source)}: nothing to replay")
    close = _close(indices, day)
    if into is None and now < close:
        raise ReplayError(f"the session of {day} is not over (it closes {close:%H:%M} IST): "
                          "replay it after the close, or --into another directory")  # fmt: skip
    target = Roots.of(settings) if into is None else Roots.beneath(into)
    for line in swap.finish(layout.swap_root(target.data_dir), settings.durable_writes):
        if say:
            say(line)
    done = Replayed(day=day, indices=indices)
    staging = swap.begin(layout.swap_root(target.data_dir) / f"replay-{day.isoformat()}")
    try:
        staged = Roots.beneath(staging.staged)
        done.cycles = _derive(settings, day, indices, staged, progress)
        done.problems = _profiles(settings, day, target, staged, now)
        lost = _plan(staging, day, indices, staged, target, done)
        if lost and not force:
            raise ReplayError(lost)
        if not staging.moves and not staging.removals:
            staging.abandon()
            return done
        if say:
            say(f"putting {len(staging.moves)} files in place, {len(staging.removals)} removed")
        staging.commit(settings.durable_writes)
    except BaseException:
        staging.abandon()  # before the commit: the old set stands (after it: finish() ends it)
        raise
    return done


def _derive(
    settings: Settings,
    day: date,
    indices: tuple[str, ...],
    staged: Roots,
    progress: Progress | None,
) -> int:
    """Run the day's cycles through merge and the replayed outputs into ``staged``."""
    dump_file = layout.instruments_path(settings.data_dir, day)
    if not dump_file.exists():
        raise ReplayError(f"no instruments dump of {day} ({dump_file}): its watches are unknown")
    dump = parse_dump(dump_file.read_text(encoding="utf-8"), str(dump_file))
    snapshots = recorded_snapshots(settings.data_dir, day, indices)
    first = next(snapshots, None)
    if first is None:
        raise ReplayError(f"the raw legs of {day} hold no whole cycle: nothing to replay")
    recorded = {(c.index, c.bucket) for c in first.chains}
    planned, _ = plan_watches(dump, indices, first.ts)
    watches = [w for w in planned if (w.index, w.bucket) in recorded]
    ordered = tuple(i for i in settings.indices if i in indices)
    ordered += tuple(i for i in indices if i not in ordered)
    here = settings.model_copy(
        update={"data_dir": staged.data_dir, "csv_split_root": None, "adv_root": None,
                "indices": ordered}
    )  # fmt: skip
    session = Session(
        settings=here,
        day=day,
        watches=watches,
        offsets=settings.strike_offsets,
        flushes=FlushSchedule(every=60.0),  # written as it fills; all of it on close
    )
    history = history_for(settings, watches, day, None)
    cycles = 0
    outputs = [(name, factory) for name, factory in OUTPUTS if name in REPLAYED]
    with opened(session, outputs) as out:
        for snapshot in chain([first], snapshots):
            write_cycle(here, out, history, snapshot, LoopStats())
            cycles += 1
            if progress:
                progress(cycles)
        out.day_over = True
    return cycles


def _profiles(
    settings: Settings, day: date, target: Roots, staged: Roots, now: datetime
) -> list[Problem]:
    """The profiles the day feeds, rebuilt into ``staged`` from the target's split files of
    other days and the staged ones of ``day``; what could not be read."""
    splits: list[OpSplit] = []
    problems: list[Problem] = []
    if target.splits.is_dir():
        found, problems = find_splits(target.splits)
        splits += [s for s in found if s.day != day]
    new, trouble = find_splits(staged.splits)
    splits += new
    problems += trouble
    kept = target.profiles / "op_masters"  # days only OP's old masters held: pooled in again
    if kept.is_dir():
        shutil.copytree(kept, staged.profiles / kept.name)
    splits.sort(key=lambda s: (s.index, s.bucket, s.offset, s.day, str(s.path)))
    done = rebuild(staged.profiles, splits, day, day, now=now)
    return problems + done.problems


def _plan(
    staging: swap.Swap,
    day: date,
    indices: tuple[str, ...],
    staged: Roots,
    target: Roots,
    done: Replayed,
) -> str:
    """What the swap moves and removes: each staged file that differs from its place, and each
    old split or analytics file of the day the new set has not (an overview file is never
    removed: it is where the index quotes were recorded). What the swap would lose: the rows
    of old files at times the new ones have not, said in a line ("" when none)."""
    pairs: list[tuple[Path, Path]] = []
    for kind in ("splits", "overview", "analytics"):
        root: Path = getattr(staged, kind)
        for path in _day_files(root, kind, day, indices):
            pairs.append((path, getattr(target, kind) / path.relative_to(root)))
    for path in stored_profiles(staged.profiles):
        for one in (path, ledger_path(path)):
            pairs.append((one, target.profiles / one.relative_to(staged.profiles)))
    losing: dict[Path, list[str]] = {}
    for new, place in pairs:
        if not place.exists():
            done.added += 1
        else:
            before, after = place.read_bytes(), new.read_bytes()
            if before == after:
                done.same += 1
                continue
            day_file = place.name == f"{day.isoformat()}.csv"  # not a profile
            if day_file and (gone := sorted(_times(before) - _times(after))):
                losing[place] = gone
            done.changed += 1
        staging.place(new, place)
    made = {place for _, place in pairs}
    for kind in ("splits", "analytics"):
        for old in _day_files(getattr(target, kind), kind, day, indices):
            if old not in made:
                staging.remove(old)
                done.removed += 1
    if not losing:
        return ""
    first = min(losing, key=lambda p: losing[p][0])
    return (f"the raw legs of {day} miss cycles that {len(losing)} files hold (the first "
            f"{losing[first][0]} in {first}): a replay would lose those rows; --force replays "
            "anyway")  # fmt: skip


def _times(data: bytes) -> set[str]:
    """The first cells (the rows' times) of a CSV file's lines after its header."""
    return {line.split(b",", 1)[0].decode() for line in data.splitlines()[1:] if line}


def _day_files(root: Path, kind: str, day: date, indices: tuple[str, ...]) -> list[Path]:
    """The files of ``kind`` of ``day`` under ``root`` that belong to ``indices`` (and INDIA
    VIX's overview)."""
    pattern = {"splits": layout.SPLIT_FILES, "overview": layout.OVERVIEW_FILES,
               "analytics": layout.ANALYTICS_FILES}[kind]  # fmt: skip
    owners = {*indices, INDIA_VIX.key}
    name = f"{day.isoformat()}.csv"
    return [
        p
        for p in layout.archive_files(root, pattern)
        if p.name == name and p.relative_to(root).parts[0] in owners
    ]


def _close(indices: tuple[str, ...], day: date) -> datetime:
    """When the day's session closes (the regular close on a day the calendar has none)."""
    exchange = INDICES[indices[0]].exchange if indices[0] in INDICES else "NSE"
    session = calendar.provisional_session(exchange, day)
    return session.close if session is not None else datetime.combine(day, time(15, 30), IST)
