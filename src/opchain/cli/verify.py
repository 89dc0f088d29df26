"""``opchain verify``: a data-quality report per recorded day and index, for people and for cron."""

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .console import console, fail, load_settings, out


def verify(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
    ] = None,
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="One day (default: the last recorded)."),
    ] = None,
    start: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First day of a range.")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day of a range.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of the reports instead.")
    ] = False,
    min_score: Annotated[
        float, typer.Option(min=0, max=100, help="The score every report must reach to exit 0.")
    ] = 100.0,
) -> None:
    """Check how well days were recorded: one report per day and index, scored out of 100
    (coverage of the session's minutes 50, duplicated timestamps 10, stale and crossed quotes
    10, raw legs behind every split row 10, lines and files that do not parse 10, weekday
    masters and DTE profiles against a rebuild from the split files 10), each finding
    naming its file and its line or minute. Exit code 0 when every report scores at least
    `--min-score` (100), 1 when one does not, 2 for bad input. Only reads."""
    from opchain.history import verify as check

    if day is not None and (start is not None or end is not None):
        fail("--date is one day, --from/--to a range: give one or the other")
    if start is not None and end is not None and start > end:
        fail(f"--from {start.date()} is after --to {end.date()}")
    settings = load_settings(data_dir=data_dir)
    roots = check.Roots.of(settings.data_dir, settings.split_root, settings.profiles_root)
    recorded = check.recorded_days(roots)
    if not recorded:
        fail(f"no recorded day under {settings.data_dir}")
    if day is not None:
        chosen = _pick(recorded, day.date(), day.date())
        if not chosen:
            fail(f"{day.date()} is not recorded under {settings.data_dir} (recorded: "
                 f"{_days(recorded)})")  # fmt: skip
    elif start is not None or end is not None:
        chosen = _pick(recorded, start.date() if start else date.min,
                       end.date() if end else date.max)  # fmt: skip
        if not chosen:
            fail(f"no day from {start.date() if start else 'the first'} to "
                 f"{end.date() if end else 'the last'} is recorded under {settings.data_dir} "
                 f"(recorded: {_days(recorded)})")  # fmt: skip
    else:
        last = max(recorded)
        chosen = {last: recorded[last]}
    total = sum(len(indices) for indices in chosen.values())
    with Progress(
        TextColumn("[bold]verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not console.is_terminal or total < 2, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("verifying", total=total)
        reports = check.verify_days(
            roots, chosen, lambda done, n: bar.update(task, completed=done, total=n)
        )
    if as_json:
        print(json.dumps([r.as_json() for r in reports], indent=1))
    else:
        table = Table(title=f"Data quality, {len(reports)} report{'s' * (len(reports) > 1)}")
        for column in ("day", "index", "score", "findings"):
            table.add_column(column, justify="right" if column in ("score", "findings") else "left")
        table.add_column("worst finding", overflow="fold")  # its file named whole
        for r in reports:
            worst = r.worst()
            what = "" if worst is None else f"{worst.kind}: {worst.where()}: {worst.detail}"
            colour = "green" if r.score >= min_score else "red"
            table.add_row(r.day.isoformat(), r.index, f"[{colour}]{r.score:.1f}[/]",
                          str(len(r.findings)), what)  # fmt: skip
        out.print(table)
    if any(r.score < min_score for r in reports):
        raise typer.Exit(1)


def _pick(recorded: dict[date, list[str]], first: date, last: date) -> dict[date, list[str]]:
    return {d: indices for d, indices in recorded.items() if first <= d <= last}


def _days(recorded: dict[date, list[str]]) -> str:
    days = sorted(recorded)
    if len(days) <= 3:
        return ", ".join(d.isoformat() for d in days)
    return f"{len(days)} days, {days[0]} to {days[-1]}"
