"""What the commands show: a progress bar while a session runs, a summary table after."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from opchain.pipeline import SessionReport
    from opchain.settings import Settings

PLAIN_EVERY_MINUTES = 15


class ProgressView:
    """A live bar on a terminal; elsewhere a plain line every 15 minutes of session time."""

    def __init__(self, console: Console, title: str) -> None:
        self.console, self.title = console, title
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_plain: datetime | None = None

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[clock]} IST"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title, total=None, clock="--:--")
        return self

    def update(self, ts: datetime, done: int, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total, clock=f"{ts:%H:%M:%S}")
            return
        minute = ts.replace(second=0, microsecond=0)
        if minute.minute % PLAIN_EVERY_MINUTES == 0 and minute != self._last_plain:
            self._last_plain = minute
            self.console.print(f"{ts:%H:%M} IST  {done}/{total} snapshots", highlight=False)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)


def print_report(console: Console, report: SessionReport, settings: Settings) -> None:
    from opchain.store import layout

    session = report.session
    if report.closed:  # a provisional day the exchange did not trade: nothing was written
        console.print(f"[bold]Session {report.day}[/]: closed; {report.closed}. Nothing recorded.")
        for warning in report.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
        return
    console.print(
        f"[bold]Session {report.day}[/] {session.open:%H:%M}-{session.close:%H:%M} IST"
        f"{f' ({session.note})' if session.note else ''}: {_counts(report)}"
    )
    if report.lost:
        detail = ", ".join(f"{reason} {n}" for reason, n in report.lost.most_common())
        console.print(
            f"[yellow]Lost to the broker:[/] {report.lost.total():,} cycles whose quotes it did "
            f"not give in time ({detail}); each is a gap of one cycle.",
            soft_wrap=True,
        )
    if report.lags:
        console.print(_lag_line(report.lags), highlight=False)
    table = Table(title=f"Daily split CSVs under {settings.split_root}", title_justify="left")
    for column in ("index", "bucket", "expiry", "files", "rows/file", "path"):
        table.add_column(column, justify="right" if column in ("files", "rows/file") else "left")
    expiry = {(w.index, w.bucket): w.expiry for w in report.watches}
    groups: dict[tuple[str, str], list[int]] = {}
    for (index, bucket, _offset, _day), rows in sorted(report.files.items()):
        groups.setdefault((index, bucket), []).append(rows)
    for (index, bucket), counts in groups.items():
        low, high = min(counts), max(counts)
        folder = Path(index) / bucket / "<offset>" / f"{report.day}.csv"
        table.add_row(
            index,
            bucket,
            str(expiry[(index, bucket)]),
            str(len(counts)),
            str(low) if low == high else f"{low}-{high}",
            str(folder),
        )
    console.print(table)
    data = settings.data_dir
    console.print(f"Index overview: {layout.overview_path(data, '<INDEX>', report.day)}")
    console.print(
        f"Raw legs (Parquet, zstd): {layout.raw_root(data) / f'date={report.day}'} "
        f"({report.raw_parts} parts written)"
    )
    console.print(f"Instruments dump: {layout.instruments_path(data, report.day)}")
    console.print(_flags_line(report.flags, report.legs))
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _counts(report: SessionReport) -> str:
    """What happened to the session's cycles, and where the quotes came from."""
    parts = [
        f"{report.cycles} snapshots recorded"
        + (f" every {report.cadence:g} s" if report.cadence else ""),
        f"{report.skipped} already on disk",
    ]
    if report.before_start:
        parts.append(f"{report.before_start} before this run started")
    parts.append(f"{report.missed} missed")
    if report.lost:
        parts.append(f"{report.lost.total()} lost to the broker")
    source = (
        f"{report.legs:,} legs from the tick stream"
        if report.streamed
        else f"{report.legs:,} legs in {report.quote_calls:,} quote calls"
    )
    return f"{', '.join(parts)}; {source}"


def _lag_line(lags: list[float]) -> str:
    """How long after each cycle's time its quotes were in."""
    ordered = sorted(lags)
    median = ordered[len(ordered) // 2]
    return (
        f"Quotes in {median:.2f} s after the cycle time (median; {ordered[-1]:.2f} s at most, "
        f"over {len(ordered):,} cycles)"
    )


def _flags_line(flags: Counter[str], legs: int) -> str:
    if not flags:
        return "Validation: every quote passed"
    detail = ", ".join(f"{reason} {count}" for reason, count in flags.most_common())
    return f"Validation: {sum(flags.values()):,} of {legs:,} legs flagged ({detail})"
