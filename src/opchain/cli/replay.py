"""``opchain replay``: a recorded day derived again from its raw legs, and swapped in."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .console import (
    check_data_dir,
    console,
    fail,
    load_settings,
    make_clock,
    out,
    say_os_error,
)

if TYPE_CHECKING:
    from opchain.history.playback import ReplayBroker
    from opchain.market.clock import Clock
    from opchain.settings import Settings


def replay(
    day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The day.")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(help="Write the derived files into this data directory instead."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replay even where the raw legs miss cycles the files hold."),
    ] = False,
) -> None:
    """Derive a recorded day again from its raw legs and index overview, through the live
    pipeline's own code: split, overview and analytics files, and the weekday masters and DTE
    profiles the day feeds. Over an unchanged day every file comes out byte for byte as it
    was; after an upgrade or a changed setting (`OPCHAIN_STRIKE_WIDTH`, `OPCHAIN_RATE`) the
    files are made again. The new files are made beside the old ones and put in place in one
    step: a replay killed at any moment leaves the old files or the new ones, and the next
    command finishes or undoes it. `--into` writes into another data directory (its profiles
    from its own split files), leaving the recorded one as it is. A replay that would lose rows
    (the raw legs miss cycles the files hold) is refused unless `--force`."""
    from opchain.history.replay import ReplayError, replay_day
    from opchain.market.ist import IST
    from opchain.store import layout
    from opchain.store.appendlog import FileFormatError
    from opchain.store.csvrows import describe

    settings = load_settings(data_dir=data_dir)
    check_data_dir(settings.data_dir)
    if into is not None:
        check_data_dir(into)
        if into.resolve() == settings.data_dir.resolve():
            into = None  # the data directory itself: replaced in place
    when = day.date()
    with Progress(
        TextColumn(f"[bold]replaying {when}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, disable=not console.is_terminal, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("replaying", total=None)
        try:
            done = replay_day(
                settings,
                when,
                datetime.now(IST),
                into,
                lambda n: bar.update(task, completed=n),
                say=lambda line: console.print(line, soft_wrap=True),
                force=force,
            )
        except ReplayError as err:
            fail(str(err))
        except FileFormatError as err:
            fail(f"{err}; nothing was replaced")
        except OSError as err:  # a full disk while staging: the old files stand
            where = layout.swap_root(into if into is not None else settings.data_dir)
            fail(f"{say_os_error(err, where)}; nothing was replaced")
    where = into if into is not None else settings.data_dir
    out.print(
        f"{when}: {done.cycles:,} cycles of {', '.join(done.indices)} replayed into {where}; "
        f"{done.files:,} files: {done.same:,} the same, {done.changed:,} replaced, "
        f"{done.added:,} new; {done.removed:,} removed",
        soft_wrap=True,
    )
    for problem in done.problems:
        console.print(f"[yellow]skipped:[/] {describe(problem)}", soft_wrap=True)


@contextmanager
def playback(
    settings: "Settings",
    day: datetime | None,
    start: datetime | None,
    speed: float,
    cadence: float | None,
) -> Iterator[tuple["Settings", "Clock", "ReplayBroker"]]:
    """What `opchain run --broker replay` runs with: settings writing into a temporary data
    directory (removed on the way out), a clock from the day's open (or ``start``) at
    ``speed``, and the broker playing the day from the data directory."""
    from opchain.history.playback import ReplayBroker
    from opchain.history.replay import ReplayError
    from opchain.market.clock import VirtualClock
    from opchain.market.ist import IST

    if day is None:
        fail("--broker replay plays a recorded day: give it with --date YYYY-MM-DD")
    when = day.date()
    try:
        broker = ReplayBroker(settings.data_dir, when, VirtualClock(datetime.now(IST)))
    except ReplayError as err:
        fail(str(err))
    first = broker.first_cycles()
    if not first:
        fail(f"the raw legs of {when} hold no whole cycle: nothing to play")
    if cadence is None and len(first) == 2:
        cadence = (first[1] - first[0]).total_seconds()
    lead = min(max(5.0, 3 * speed), 1800.0)  # about 3 s of wall time to set up, on the day
    begin = start or first[0] - timedelta(seconds=lead)
    clock = make_clock(begin if begin.tzinfo else begin.replace(tzinfo=IST), speed)
    broker.clock = clock
    folder = Path(tempfile.mkdtemp(prefix=f"opchain-replay-{when}-"))
    try:
        played = settings.model_copy(
            update={"data_dir": folder, "csv_split_root": None, "adv_root": None,
                    "indices": broker.indices, "full_chain": broker.full_chain(),
                    "cadence_seconds": cadence or settings.cadence_seconds}
        )  # fmt: skip
        console.print(
            f"playing {when} from {settings.data_dir} at {speed:g}x, a cycle every "
            f"{played.cadence_seconds:g} s, into {folder} (removed when it stops)",
            soft_wrap=True,
        )
        yield played, clock, broker
    finally:
        shutil.rmtree(folder, ignore_errors=True)
