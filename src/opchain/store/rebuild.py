"""Rebuilding weekday masters and DTE profiles from their sources (``opchain rebuild-masters``).

A profile's days come from two sources: the split files of those days (opchain's or OP's), and
the days an import took from OP's old weekday masters because their split files are gone; an
import keeps those at :func:`~opchain.store.profiles.op_master_path` so a rebuild pools them in
again (:func:`pool_op_masters`).

A rebuild is made beside the profiles, in memory, then saved over them one by one, each save
crash-safe with its ledger (``store.profiles``); profiles the rebuild no longer has are removed
only after every new one is in place. So a rebuild killed at any moment leaves every profile
there, the old one or the new one, and running it again finishes it. Saves run a few at a time
(each waits on its own fsyncs); none depends on another.

With a range of days (``--from``/``--to``) only the profiles that those days feed are rebuilt,
each from all of its days' sources (a low or a high cannot be taken out of a profile, so the
rest of its days are read again); every other profile is left as it is. A day a profile held
that no source has any more is left out, and said, one line per profile.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from opchain.profiles.master import Ledger, Profile, merge_profiles
from opchain.store.csvrows import Problem
from opchain.store.masters import Progress, build
from opchain.store.opdata import OpSplit
from opchain.store.profiles import (
    Damaged,
    ProfileBook,
    ledger_path,
    load,
    op_master_path,
    save,
    stored_profiles,
)

_SAVERS = 8  # profiles saved at once


@dataclass
class Rebuilt:
    read: int = 0  # split files read: those of the range and the other days of its profiles
    written: int = 0  # profiles saved
    removed: int = 0  # profiles no source feeds any more
    pooled: int = 0  # days pooled in from OP's old masters
    problems: list[Problem] = field(default_factory=list)  # what could not be read
    dropped: list[Problem] = field(default_factory=list)  # profiles that lost days


def rebuild(
    adv_root: Path,
    splits: list[OpSplit],
    first: date = date.min,
    last: date = date.max,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Rebuilt:
    """Rebuild the profiles the days from ``first`` to ``last`` feed (module docstring); a day
    whose session is not over at ``now`` is not closed (:func:`~opchain.store.masters.build`)."""
    whole = first == date.min and last == date.max
    wanted = {_series(s) for s in splits if first <= s.day <= last}
    used = splits if whole else [s for s in splits if _series(s) in wanted]
    book = ProfileBook(fresh=True)
    done = Rebuilt(read=len(used), problems=build(book, adv_root, used, progress, now))
    done.pooled, trouble = pool_op_masters(book, adv_root, None if whole else wanted)
    done.problems += trouble

    def in_range(ledger: Ledger) -> bool:
        return whole or any(first <= d <= last for d in ledger)

    new = {path for path in book if book[path][1] and in_range(book[path][1])}
    old: dict[Path, Ledger | None] = {}  # the profiles on disk this rebuild replaces
    for path in stored_profiles(adv_root):
        try:
            ledger: Ledger | None = load(path)[1]
        except (Damaged, OSError):
            ledger = None  # its days are unknown: replaced by what the sources give
        if whole or path in new or (ledger is not None and in_range(ledger)):
            old[path] = ledger
    new |= {path for path in old if path in book.loaded and book[path][1]}
    with ThreadPoolExecutor(max_workers=_SAVERS) as pool:  # each save waits on its fsyncs
        for _ in pool.map(lambda path: save(path, *book[path]), sorted(new)):
            done.written += 1
    for path, ledger in sorted(old.items()):
        lost = sorted((ledger or {}).keys() - (book[path][1] if path in new else {}).keys())
        if lost:
            shown = ", ".join(map(str, lost[:3])) + (", ..." if len(lost) > 3 else "")
            why = f"{len(lost)} days left out, no split file holds them any more ({shown})"
            done.dropped.append(Problem(path, None, why))
        if path not in new:
            for gone in (path, ledger_path(path)):
                gone.unlink(missing_ok=True)
            done.removed += 1
    return done


def keep_op_master(path: Path, profile: Profile, days: Iterable[date]) -> None:
    """Keep the days of OP's old master that an import pools into the weekday master at
    ``path`` (module docstring)."""
    target = op_master_path(path)
    if target is not None:
        save(target, profile, dict.fromkeys(days, "closed"))


def pool_op_masters(
    book: ProfileBook, adv_root: Path, series: set[tuple[str, str, str]] | None = None
) -> tuple[int, list[Problem]]:
    """Pool the kept parts of OP's old masters (of ``series``; all when None) into the weekday
    masters in ``book``, each whose days none of the master's are; returns the days pooled
    and what could not be (its days partly in the split files, or unreadable)."""
    pooled, problems = 0, []
    for kept in sorted((adv_root / "op_masters").glob("*/*/*/*.csv")):
        key = (kept.parents[2].name, kept.parents[1].name, kept.parent.name)
        if series is not None and key not in series:
            continue
        try:
            profile, days = load(kept)
        except (Damaged, OSError) as err:
            problems.append(
                err.problem if isinstance(err, Damaged) else Problem(kept, None, str(err))
            )
            continue
        path = adv_root / "weekday_masters" / kept.relative_to(adv_root / "op_masters")
        target, ledger = book[path]
        if not days or days.keys() <= ledger.keys():
            continue  # all of its days are in the split files, which win
        if days.keys() & ledger.keys():
            why = "not pooled in: its days are partly in the split files"
            problems.append(Problem(kept, None, why))
            continue
        merge_profiles(target, profile)
        ledger.update(days)
        book.touch(path)
        pooled += len(days)
    return pooled, problems


def _series(split: OpSplit) -> tuple[str, str, str]:
    return split.index, split.bucket, split.offset
