"""``opchain verify``'s profile part: the weekday masters and DTE profiles a day feeds, against
a rebuild from the split files.

Each split file of the day feeds two profiles, its weekday master and its DTE profile (which
ones: :func:`opchain.store.masters.build` into a fresh in-memory book, the way ``opchain
rebuild-masters`` finds them). Each is read as it is on disk (``store.profiles.peek``: nothing
is changed) and is not right when it

- is missing, or is not one save (a profile and its ledger that do not belong together),
- does not hold the day closed in its ledger (a day missing from it, or added only in part),
- differs from a rebuild in memory from the split files of the days its ledger lists (and the
  days an import kept from OP's old masters, as a rebuild pools them): the minutes whose lines
  differ are named, the first with both lines.

A profile whose ledger lists days no split file holds any more cannot be rebuilt whole: only
whether it holds the day is checked. Days whose session is not over are not checked (the
recorder is still adding to their profiles). Each profile is compared once per run
(:data:`Checked`).
"""

from datetime import date, datetime
from pathlib import Path

from opchain.market.ist import IST
from opchain.profiles.master import (
    CLOSED,
    Ledger,
    Profile,
    format_profile,
    parse_ledger,
    parse_profile,
)
from opchain.store.masters import build, day_over
from opchain.store.opdata import OpSplit, split_of
from opchain.store.profiles import Damaged, ProfileBook, ledger_path, peek
from opchain.store.rebuild import pool_op_masters

# A profile compared in this run: its ledger as found (None: none), and what is wrong with it
# as a whole (None: it is what a rebuild gives)
Checked = dict[Path, tuple[Ledger | None, str | None]]


def check(
    adv_root: Path,
    split_root: Path,
    files: list[Path],
    day: date,
    checked: Checked,
    now: datetime | None = None,
) -> tuple[int, list[tuple[Path, str]]]:
    """How many profiles the day's split ``files`` feed, and those that are not right, each
    with what is wrong (module docstring)."""
    if not day_over(day, now or datetime.now(IST)):
        return 0, []
    splits = [s for s in (split_of(p, p.relative_to(split_root).parts) for p in files)
              if isinstance(s, OpSplit)]  # fmt: skip
    book = ProfileBook(fresh=True)
    build(book, adv_root, splits)
    fed = sorted(path for path in book if book[path][1])
    wrong: list[tuple[Path, str]] = []
    for path in fed:
        if path not in checked:
            checked[path] = _compare(adv_root, split_root, path)
        ledger, whole = checked[path]
        if ledger is not None and ledger.get(day) != CLOSED:
            mark = ledger.get(day)
            held = f"{len(ledger)} day{'s' * (len(ledger) != 1)}"
            what = f"holds {day} only to {mark}" if mark else f"holds no {day} (its ledger: {held})"
            wrong.append((path, what))
        elif whole is not None:
            wrong.append((path, whole))
    return len(fed), wrong


def _compare(adv_root: Path, split_root: Path, path: Path) -> tuple[Ledger | None, str | None]:
    try:
        found = peek(path)
        edited = found is None and path.exists()  # not what its ledger's hash says
        if edited:
            found = (
                parse_profile(path.read_text(encoding="utf-8"), str(path)),
                parse_ledger(ledger_path(path).read_text(encoding="utf-8"), str(path)),
            )
    except Damaged as err:
        return None, err.problem.reason
    except (OSError, ValueError) as err:
        return None, f"not read ({err})"
    if found is None:
        return None, "missing: no such profile (run `opchain eod` or `opchain rebuild-masters`)"
    profile, ledger = found
    index, bucket, offset = path.parents[2].name, path.parents[1].name, path.parent.name
    splits = []
    for day in sorted(ledger):
        file = split_root / index / bucket / offset / f"{day.isoformat()}.csv"
        if file.is_file():
            splits.append(OpSplit(file, index, bucket, offset, day))
    book = ProfileBook(fresh=True)
    build(book, adv_root, splits)
    pool_op_masters(book, adv_root, {(index, bucket, offset)})
    rebuilt, days = book[path]
    gone = sorted(ledger.keys() - days.keys())
    if gone:
        return ledger, None  # not comparable whole; the report says nothing costly
    extra = sorted(days.keys() - ledger.keys())
    if extra:
        return ledger, f"lacks {len(extra)} days its split files give (the first {extra[0]})"
    differ = _differ(profile, rebuilt)
    if edited:
        differ = "changed since its last save (its ledger's hash differs)" + (
            f"; {differ}" if differ else ""
        )
    return ledger, differ


def _differ(profile: Profile, rebuilt: Profile) -> str | None:
    """The minutes whose lines differ, the first shown with both; None when none does."""
    mine, theirs = (_lines(p) for p in (profile, rebuilt))
    differ = sorted(m for m in mine.keys() | theirs.keys() if mine.get(m) != theirs.get(m))
    if not differ:
        return None
    first = differ[0]
    count = f"{len(differ)} minutes differ" if len(differ) > 1 else "1 minute differs"
    return (
        f"{count} from a rebuild from the split files, the first {first}: "
        f"{mine.get(first, 'no row')!r} where the rebuild has {theirs.get(first, 'no row')!r}"
    )


def _lines(profile: Profile) -> dict[str, str]:
    return {line.split(",", 1)[0]: line for line in format_profile(profile).splitlines()[1:]}
