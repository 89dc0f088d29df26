"""``opchain influx backfill``: recorded days into InfluxDB, from the files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .console import console, fail, load_settings, out

if TYPE_CHECKING:
    from opchain.settings import Settings

DRAIN_SECONDS = 600.0  # what a day waits for InfluxDB to take its points before the next day

app = typer.Typer(
    name="influx",
    help="InfluxDB: fill it from the recorded days.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command()
def backfill(
    start: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    end: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
    ] = None,
) -> None:
    """Write every recorded cycle of the days from `--from` to `--to` (default: every day
    the data directory holds) to InfluxDB (OPCHAIN_INFLUXDB_URL), rebuilt from the raw legs
    and the analytics files: the points the live run writes, at the cycles' own times, so a
    day written again, or over what the live run wrote, changes nothing."""
    from opchain.outputs.influx.backfill import backfill as fill
    from opchain.outputs.influx.backfill import count_cycles, recorded_days
    from opchain.outputs.influx.output import make_writer, tags_for
    from opchain.store import layout

    settings = load_settings(data_dir=data_dir)
    first, last = start.date() if start else date.min, end.date() if end else date.max
    if first > last:
        fail(f"--from {first} is after --to {last}")
    if not settings.influxdb_url:
        fail("no InfluxDB URL is set: set OPCHAIN_INFLUXDB_URL (or INFLUXDB_URL), e.g. "
             "http://127.0.0.1:8086")  # fmt: skip
    recorded = recorded_days(settings)
    if not recorded:
        fail(f"no recorded days: {layout.raw_root(settings.data_dir)} holds no raw legs")
    days = [d for d in recorded if first <= d <= last]
    if not days:
        fail(f"no recorded day from {_shown(first)} to {_shown(last)} (recorded: "
             f"{recorded[0]} to {recorded[-1]})")  # fmt: skip
    totals = {day: count_cycles(settings, day) for day in days}
    writer = make_writer(settings, "backfill")
    tags = tags_for(settings)
    cycles, waiting = 0, False
    try:
        with _bar(sum(totals.values())) as step:
            for day in days:  # a day at a time: the writer's queue holds about one
                done = fill(settings, [day], writer, lambda *_: step(), tags)
                cycles += done.cycles
                waiting = not writer.drain(DRAIN_SECONDS)
                if waiting:  # InfluxDB is away: the rest would only wait in the spool
                    break
        stats = writer.stats()
    finally:
        writer.close(DRAIN_SECONDS)
    out.print(
        f"{len(days)} day{'s' if len(days) != 1 else ''}, {cycles} cycles: "
        f"{stats.points_written} points written, "
        f"{stats.points_rejected} rejected"
        + (f", {stats.points_dropped} dropped (the spool was full)" if stats.points_dropped else "")
    )
    if stats.points_dropped:
        fail("some points were dropped: run the backfill again, or raise OPCHAIN_INFLUXDB_SPOOL_MB")
    if waiting:
        fail(_waiting(settings, stats.spool_points), code=1)


def _shown(day: date) -> str:
    return "the first" if day == date.min else "the last" if day == date.max else str(day)


def _waiting(settings: Settings, spooled: int) -> str:
    return (
        f"InfluxDB at {settings.influxdb_url} did not take every point in time: "
        f"{spooled} points wait in the spool; run the backfill again to send them"
    )


@contextmanager
def _bar(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar of cycles (on a terminal only); yields its step."""
    with Progress(
        TextColumn("[bold]backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("backfill", total=total)
        yield lambda: bar.advance(task)
