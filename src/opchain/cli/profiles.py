"""``opchain eod``, ``opchain rebuild-masters`` and ``opchain import``: the historical layer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opchain.market import calendar
from opchain.market.ist import IST
from opchain.profiles.master import Cell as ProfileCell
from opchain.profiles.minutes import paise

from .console import console, fail, load_settings, out

if TYPE_CHECKING:  # the stores are imported by the commands that use them
    from opchain.store.masters import Progress as Step
    from opchain.store.opdata import OpMaster, OpSplit, Problem
    from opchain.store.profiles import ProfileBook

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
]
Day = Annotated[datetime | None, typer.Option("--date", formats=["%Y-%m-%d"])]


def eod(data_dir: DataDir = None, day: Day = None) -> None:
    """Close a day (default: the last trading day) in every weekday master and DTE profile,
    adding any minute the live updates missed, and write the day's quality report to
    `<data_adv>/eod/<date>.csv` (coverage, gaps, outliers per series). Running it twice
    changes nothing."""
    from opchain.store import eod as eod_store
    from opchain.store.masters import day_over

    settings = load_settings(data_dir=data_dir)
    now = datetime.now(IST)
    when = day.date() if day else _last_session(now)
    if not day_over(when, now):  # closed now, the day would lose the rest of its session
        fail(f"the session of {when} is not over yet (it closes at 15:30 IST): run eod after "
             "it; meanwhile the recorder adds each minute as it ends")  # fmt: skip
    series = eod_store.day_series(settings.split_root, when)
    if not series:
        fail(f"no split files for {when} under {settings.split_root}")
    done = eod_store.reconcile(settings.split_root, settings.profiles_root, when)
    problems = list(done.problems)
    path, scores = eod_store.report(settings.split_root, settings.profiles_root, when, problems)
    table = Table(title=f"End of day {when}: {len(scores)} series, {done.added} minutes added now")
    for column in ("series", "minutes", "coverage %", "gaps", "outliers"):
        table.add_column(column, justify="left" if column in ("series", "gaps") else "right")
    for s in scores:
        gaps = ", ".join(a if a == b else f"{a}-{b}" for a, b in s.gaps[:3])
        more = f" (+{len(s.gaps) - 3})" if len(s.gaps) > 3 else ""
        table.add_row("/".join(s.series), str(s.minutes), f"{s.coverage:.1f}", gaps + more,
                      str(len(s.outliers)))  # fmt: skip
    out.print(table)
    out.print(f"report: {path}")
    _print_problems(_once(problems))
    _refused(done.blocked)


def rebuild_masters(
    data_dir: DataDir = None,
    start: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    end: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
) -> None:
    """Recompute the weekday masters and DTE profiles from the split CSVs (and the days an
    import took from OP's old masters). With `--from`/`--to`, only the profiles those days
    feed are recomputed, each from all its days; the others are left as they are. Each
    profile is replaced only when its new version is complete, so an interrupted rebuild
    leaves every profile there: run it again to finish."""
    from opchain.store.opdata import find_splits
    from opchain.store.rebuild import rebuild

    settings = load_settings(data_dir=data_dir)
    root = settings.split_root
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        fail(f"no split files: {root} {what} (record a session first, or set "
             "OPCHAIN_CSV_SPLIT_ROOT)")  # fmt: skip
    splits, problems = find_splits(root)
    first, last = start.date() if start else date.min, end.date() if end else date.max
    chosen = [s for s in splits if first <= s.day <= last]
    if not chosen:
        within = "" if start is None and end is None else "in those dates "
        fail(f"no split files {within}under {root}")
    with _bar("rebuilding", len(chosen)) as step:
        done = rebuild(settings.profiles_root, splits, first, last, step, datetime.now(IST))
    days = len({s.day for s in chosen})
    more = done.read - len(chosen)
    line = f"{done.written} profiles from {len(chosen)} split files ({days} days)"
    line += f", with {more} split files of their other days" if more else ""
    line += f", {done.removed} removed (no split file feeds them)" if done.removed else ""
    out.print(line)
    if done.pooled:
        out.print(f"{done.pooled} days pooled in again from OP's old masters (kept by import)")
    _print_problems(done.dropped, "profiles lost days")
    _print_problems(problems + done.problems)


def import_op(
    source: Annotated[
        Path, typer.Argument(metavar="PATH", help="An OP data directory (or its csv_data).")
    ],
    data_dir: DataDir = None,
) -> None:
    """Read an OP data directory as it is (nothing there is changed), report what it holds and
    what could not be read, and build opchain's weekday masters and DTE profiles from its split
    CSVs, adding the days of OP's own masters whose split files are gone."""
    from opchain.store.masters import build
    from opchain.store.opdata import survey
    from opchain.store.profiles import ProfileBook

    settings = load_settings(data_dir=data_dir)
    try:
        found = survey(source)
    except (FileNotFoundError, NotADirectoryError) as err:
        fail(str(err))
    for line in found.summary():
        out.print(line, highlight=False)
    book = ProfileBook(warn=False)  # profiles left as they were are listed below
    problems = list(found.problems)
    with _bar("importing", len(found.splits)) as step:
        problems += build(book, settings.profiles_root, found.splits, step, datetime.now(IST))
    merged, skipped, trouble = _old_masters(
        book, settings.profiles_root, found.masters, found.splits
    )
    problems += trouble
    written = book.save()
    out.print(f"{written} profiles written under {settings.profiles_root}")
    if merged:
        out.print(f"{merged} days from OP's masters whose split files are gone, added")
    for line in skipped:
        out.print(line, highlight=False)
    _print_problems(problems)
    _refused(list(book.blocked.values()))


def _refused(blocked: list[Problem]) -> None:
    """Name the profiles a command left as they were (not one save) and fail, exit code 2."""
    if blocked:
        _print_problems(blocked, "profiles were left as they were")
        fail(f"{len(blocked)} profiles not updated (named above); run `opchain "
             "rebuild-masters` to rebuild them from the split files")  # fmt: skip


def _old_masters(
    book: ProfileBook, adv_root: Path, masters: list[OpMaster], splits: list[OpSplit]
) -> tuple[int, list[str], list[Problem]]:
    """Pool OP's ``adv`` weekday masters into ours for the days only they still hold, keeping
    each such part (``store.rebuild``) so a rebuild pools it in again."""
    from opchain.store.profiles import weekday_path
    from opchain.store.rebuild import keep_op_master, pool_op_masters

    have = {(s.index, s.bucket, s.offset, s.day) for s in splits}
    skipped = []
    for m in masters:
        if m.kind != "adv" or m.offset is None or m.weekday is None:
            skipped.append(f"not added: {m.path} ({m.kind} format has no low and high per minute)")
            continue
        if not m.ledger:
            skipped.append(f"not added: {m.path} (no ledger: its days are unknown)")
            continue
        days = [d for d in m.ledger if (m.index, m.bucket, m.offset, d) not in have]
        if not days or len(days) != len(m.ledger):
            if days:
                skipped.append(f"not added: {m.path} (its days are partly in the split files)")
            continue
        stamp = datetime.combine(max(days), datetime.min.time(), tzinfo=IST)
        part = {
            minute: ProfileCell(c.n, paise(c.total if c.total is not None else c.mean * c.n),
                                paise(c.low if c.low is not None else c.mean),
                                paise(c.high if c.high is not None else c.mean), stamp)
            for minute, c in m.cells.items()
        }  # fmt: skip
        keep_op_master(weekday_path(adv_root, m.index, m.bucket, m.offset, days[0]), part, days)
    merged, problems = pool_op_masters(book, adv_root)
    return merged, skipped, problems


@contextmanager
def _bar(what: str, total: int) -> Iterator[Step]:
    with Progress(
        TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_problems(problems: list[Problem], what: str = "things could not be read") -> None:
    """One line per problem, ``<path>:<line>: <reason>`` (the first 20; the rest counted)."""
    from opchain.store.csvrows import describe

    if not problems:
        return
    console.print(f"[yellow]{len(problems)} {what}:[/]")
    for p in problems[:20]:
        console.print(f"  {describe(p)}", highlight=False, soft_wrap=True)
    if len(problems) > 20:
        console.print(f"  ... and {len(problems) - 20} more")


def _once(problems: list[Problem]) -> list[Problem]:
    """Each file's line once (two readers of one file find the same bad lines)."""
    seen: dict[tuple[Path, int | None], Problem] = {}
    for p in problems:
        seen.setdefault((p.path, p.line), p)
    return sorted(seen.values(), key=lambda p: (str(p.path), p.line or 0))


def _last_session(now: datetime) -> date:
    """The last trading day whose session is over at ``now``."""
    try:
        day = calendar.last_trading_day("NSE", now.date())
        if datetime.combine(day, time(15, 30), IST) > now:  # today's, still running
            day = calendar.previous_trading_day("NSE", day)
        return day
    except calendar.CalendarUnavailable as err:  # past the tables: say so, in one line
        fail(f"{err}; or pass --date")
