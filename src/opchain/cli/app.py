"""``opchain``: typer commands. Errors are one clear line; the detail goes to the log.

Each command imports what it uses in its body: ``opchain --help`` and ``opchain version`` load
typer, rich and the commands' signatures, not the web framework, the numeric libraries or the
settings (BENCHMARKS.md, "Command start-up").
"""

import contextlib
import logging
import signal
import sys
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opchain import __version__

from . import bus, config, influx, kite, participants, profiles, query, replay, verify
from .calendar import show_calendar
from .console import (
    check_data_dir,
    console,
    fail,
    load_settings,
    log,
    make_clock,
    os_failure,
    out,
    say_os_error,
)
from .serve import serve

if TYPE_CHECKING:
    import asyncio

    from opchain.market import calendar
    from opchain.settings import Settings


class App(typer.Typer):
    """The ``opchain`` command. An operating-system error no command turned into its own line
    (a disk that filled, a folder that cannot be written) still ends as one line naming the
    file, exit code 2, with the traceback in the debug log (``opchain -v``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return super().__call__(*args, **kwargs)
        except OSError as err:
            log.debug("stopped by an operating-system error", exc_info=err)
            console.print(f"[bold red]error:[/] {say_os_error(err)}", soft_wrap=True)
            sys.exit(2)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (``docker stop``, Kubernetes, systemd) stops a command as Ctrl-C does: cleanly,
    its files flushed, its state saying so. Without a handler opchain would die on the spot, or,
    as a container's first process, not at all (the kernel drops a signal that process has no
    handler for) until it is killed ten seconds later."""
    interrupt = signal.getsignal(signal.SIGINT)  # asyncio's own while a loop runs
    if callable(interrupt):
        interrupt(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job of a script): stop anyway
        raise KeyboardInterrupt


app = App(
    name="opchain",
    help="Options-market data pipeline for Indian index options (NIFTY 50, NIFTY BANK, SENSEX).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are paragraphs: lines reflow to the terminal
)
app.command()(kite.login)
app.command("fake-kite")(kite.fake_kite)
app.command()(profiles.eod)
app.command("rebuild-masters")(profiles.rebuild_masters)
app.command("import")(profiles.import_op)
app.command()(serve)
app.command()(bus.collect)
app.command()(bus.worker)
app.command("calendar")(show_calendar)
app.command("config")(config.show_config)
app.command()(verify.verify)
app.command()(replay.replay)
app.command()(query.query)
app.command()(query.export)
app.add_typer(influx.app, name="influx")
app.add_typer(participants.app, name="participants")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
]
Seed = Annotated[int | None, typer.Option(help="Simulator seed (env OPCHAIN_SIM_SEED; default 7).")]
Cadence = Annotated[
    float | None,
    typer.Option(help="Seconds between snapshots (env OPCHAIN_CADENCE_SECONDS; default 30)."),
]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def version() -> None:
    """Print opchain's version."""
    print(__version__)


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="Where to write.")],
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="Session date (default: the last trading day)."
        ),
    ] = None,
    seed: Seed = None,
    cadence: Cadence = None,
) -> None:
    """Simulate a whole trading session in accelerated time and record it under DATA_DIR.

    Writes the daily split CSVs, the index overview and the raw legs exactly as a live session
    would, then prints what it wrote and where. Run it again after an interruption and it
    continues where it stopped; run it twice and the files are the same.
    """
    import asyncio

    from opchain.brokers.sim import SimBroker
    from opchain.market.clock import VirtualClock
    from opchain.pipeline import record_session

    from .report import ProgressView, print_report

    settings = load_settings(data_dir=data_dir, sim_seed=seed, cadence_seconds=cadence)
    check_data_dir(settings.data_dir)
    if settings.full_chain is None:  # a whole chain is 25 times the legs: the demo stays quick
        settings = settings.model_copy(update={"full_chain": False})
        _say("The demo keeps to the watched band of strikes, to be quick; "
             "OPCHAIN_FULL_CHAIN=true gives the analytics the whole chain.")  # fmt: skip
    session_day = day.date() if day else _last_trading_day()
    session = _session_or_fail(settings, session_day)
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate, indices=settings.indices)
    try:
        with ProgressView(console, f"{session_day} seed {settings.sim_seed}") as view:
            recording = record_session(settings, broker, clock, session_day, view.update, say=_say)
            report = asyncio.run(recording)
    except OSError as err:
        then = "; every file is complete up to its last line: rerun to continue"
        os_failure(err, settings.data_dir, then)
    print_report(out, report, settings)


@app.command()
def run(
    broker: Annotated[str, typer.Option(help="sim, kite or replay (env OPCHAIN_BROKER).")] = "",
    ticks: Annotated[
        bool | None,
        typer.Option("--ticks/--poll", help="kite: stream ticks, or poll /quote (the default)."),
    ] = None,
    data_dir: DataDir = None,
    seed: Seed = None,
    cadence: Cadence = None,
    speed: Annotated[float, typer.Option(help="Simulator clock speed (1 = real time).")] = 1.0,
    start: Annotated[
        datetime | None,
        typer.Option(help="Simulator clock start, IST (default: now), e.g. 2026-11-20T09:15:00."),
    ] = None,
    sessions: Annotated[
        int | None, typer.Option(help="Stop after this many sessions (default: run forever).")
    ] = None,
    api: Annotated[
        bool,
        typer.Option(
            "--api/--no-api",
            help="Serve the API and dashboard beside the collector (OPCHAIN_API_HOST, _PORT).",
        ),
    ] = True,
    played: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="replay: the recorded day to play."),
    ] = None,
) -> None:
    """Collect continuously: wait for each session's open, record it, repeat.

    `--broker replay --date D` plays a recorded day of the data directory again as if it were
    live (at `--speed`, from its open or `--start`, at its recorded cadence): the API, the
    dashboard and the outputs see it cycle by cycle; what it writes goes to a temporary data
    directory, removed when it stops, and the recorded day is left as it is.

    With the kite broker, the login of `opchain login` is checked with Kite before anything
    else, and the run says until when it is good. A disk that fills or a data directory that
    cannot be written stops nothing: the collector says so in one line, reports storage down
    (an alert) and tries again with growing waits, keeping everything already stored.
    """
    import asyncio

    import httpx

    from opchain.api.live import Hub
    from opchain.brokers.base import Broker
    from opchain.brokers.kite.client import TokenExpired
    from opchain.brokers.tally import BrokerTally, CountingTransport
    from opchain.health import state as health
    from opchain.health.metrics import Metrics
    from opchain.health.monitor import monitor
    from opchain.health.storage import StorageHealth
    from opchain.health.supervisor import supervise
    from opchain.market import calendar
    from opchain.pipeline import SessionReport, run_sessions

    from .report import print_report
    from .serve import api_beside, each

    settings = load_settings(
        broker=broker or None,
        kite_ticks=ticks,
        data_dir=data_dir,
        sim_seed=seed,
        cadence_seconds=cadence,
    )
    check_data_dir(settings.data_dir)
    if sessions is not None and sessions < 1:
        fail(f"--sessions must be at least 1, not {sessions}")
    scratch = contextlib.ExitStack()
    source: Broker
    if settings.broker == "replay":
        settings, clock, source = scratch.enter_context(
            replay.playback(settings, played, start, speed, cadence)
        )
        sessions, kite_source, stored = 1, None, None
    elif played is not None:
        fail("--date chooses the recorded day of --broker replay")
    else:
        clock = make_clock(start, speed)
    metrics = Metrics()
    tally = BrokerTally(metrics.observe_request) if settings.broker == "kite" else None
    counted = CountingTransport(httpx.AsyncHTTPTransport(), tally) if tally else None
    accelerated = start is not None or speed != 1.0
    if settings.broker != "replay":
        source, kite_source, stored = kite.make_broker(settings, clock, accelerated, counted)
    storage = StorageHealth(settings.data_dir, clock, say=_say)
    recorded: list[date] = []  # carried over the collector's restarts: no day twice

    def done(report: SessionReport) -> None:
        print_report(out, report, settings)

    async def collect() -> None:
        if kite_source is not None:
            await kite.login_checked(kite_source, stored, clock, settings.data_dir)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(source.close)
            hub = Hub(settings.data_dir, settings.rate) if api else None
            if hub is not None:
                await stack.enter_async_context(api_beside(settings, hub, clock, metrics, tally))
            watcher = asyncio.create_task(monitor(settings, clock, metrics, tally))
            stack.push_async_callback(_stop, watcher)
            on_cycle = each(
                storage.stored, metrics.observe_cycle, hub.publish if hub is not None else None
            )

            async def collector() -> None:
                try:
                    await run_sessions(settings, source, clock, sessions, on_session=done,
                                       on_cycle=on_cycle, recorded=recorded,
                                       say=_say, metrics=metrics)  # fmt: skip
                except Exception as err:
                    storage.check(err)  # a full disk, a read-only folder: storage down
                    raise

            # A failed collector is restarted with backoff and resumes from its files; an
            # expired login or a missing calendar cannot be helped by a restart.
            await supervise(
                health.COLLECTOR,
                collector,
                settings.data_dir,
                clock,
                give_up_on=(TokenExpired, calendar.CalendarUnavailable),
                metrics=metrics,
            )

    try:
        with scratch:
            asyncio.run(collect())
    except KeyboardInterrupt:
        console.print("stopped; every file is complete up to the last snapshot")
    except calendar.CalendarUnavailable as err:
        fail(str(err))
    except TokenExpired as err:
        log.critical("Kite session ended: %s", err)
        then = " Every file is complete up to the last snapshot; rerun to continue."
        kite.token_expired(err, clock, settings.data_dir, then)


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


async def _stop(task: "asyncio.Task[None]") -> None:
    import asyncio

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _last_trading_day() -> date:
    from opchain.market import calendar
    from opchain.market.indices import DEFAULT_INDICES, INDICES
    from opchain.market.ist import IST

    today = datetime.now(IST).date()
    exchange = INDICES[DEFAULT_INDICES[0]].exchange
    try:
        return calendar.last_trading_day(exchange, today)
    except calendar.CalendarUnavailable as err:
        fail(f"{err}; pass --date")
        raise


def _session_or_fail(settings: "Settings", day: date) -> "calendar.Session":
    from opchain.market import calendar
    from opchain.market.indices import INDICES

    exchange = INDICES[settings.indices[0]].exchange
    try:
        session = calendar.session(exchange, day)
    except calendar.CalendarUnavailable as err:
        fail(str(err))
        raise
    if session is None:
        what = "a weekend" if day.weekday() >= 5 else "a holiday"
        name = calendar.holidays(exchange, day.year).get(day)
        fail(f"{day} is {what}{f' ({name})' if name else ''}: there is no session to simulate")
        raise AssertionError
    return session


if __name__ == "__main__":
    sys.exit(app())
