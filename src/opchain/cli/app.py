"""``opchain``: typer commands. Errors are one clear line; the detail goes to the log."""

import asyncio
import logging
import socket
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from opchain import __version__
from opchain.brokers.base import Broker
from opchain.brokers.kite.broker import KiteBroker
from opchain.brokers.kite.client import ROOT, KiteClient, TokenExpired
from opchain.brokers.kite.fake import FakeKite
from opchain.brokers.sim import SimBroker
from opchain.cli.report import ProgressView, print_report
from opchain.market import calendar
from opchain.market.clock import Clock, ScaledClock, VirtualClock, WallClock
from opchain.market.indices import INDICES
from opchain.market.ist import IST
from opchain.pipeline import SessionReport, record_session, run_sessions
from opchain.settings import Settings

app = typer.Typer(
    name="opchain",
    help="Options-market data pipeline for Indian index options (NIFTY 50, NIFTY BANK, SENSEX).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)  # progress and errors
out = Console()  # results
log = logging.getLogger("opchain")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
]
Seed = Annotated[int | None, typer.Option(help="Simulator seed (env OPCHAIN_SIM_SEED; default 7).")]
Cadence = Annotated[
    float | None,
    typer.Option(help="Seconds between snapshots (env OPCHAIN_CADENCE_SECONDS; default 30)."),
]


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(2)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        fail(f"bad settings: {problems}")
        raise


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
    settings = load_settings(data_dir=data_dir, sim_seed=seed, cadence_seconds=cadence)
    session_day = day.date() if day else _last_trading_day()
    session = _session_or_fail(settings, session_day)
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    with ProgressView(console, f"{session_day} seed {settings.sim_seed}") as view:
        report = asyncio.run(record_session(settings, broker, clock, session_day, view.update))
    print_report(out, report, settings)


@app.command()
def run(
    broker: Annotated[str, typer.Option(help="sim or kite (env OPCHAIN_BROKER).")] = "",
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
) -> None:
    """Collect continuously: wait for each session's open, record it, repeat."""
    settings = load_settings(
        broker=broker or None, data_dir=data_dir, sim_seed=seed, cadence_seconds=cadence
    )
    clock = _clock(start, speed)
    source: Broker
    if settings.broker == "kite":
        source = _kite_broker(settings, clock, accelerated=start is not None or speed != 1.0)
    else:
        source = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)

    def done(report: SessionReport) -> None:
        print_report(out, report, settings)

    try:
        asyncio.run(run_sessions(settings, source, clock, sessions, on_session=done))
    except KeyboardInterrupt:
        console.print("stopped; every file is complete up to the last snapshot")
    except calendar.CalendarUnavailable as err:
        fail(str(err))
    except TokenExpired as err:
        log.critical("Kite session ended: %s", err)
        console.print(
            f"[bold red]stopped:[/] Kite no longer accepts the access token ({err}). Every "
            "file is complete up to the last snapshot; log in again and rerun to continue.",
            soft_wrap=True,
        )
        raise typer.Exit(3) from None


def _kite_broker(settings: Settings, clock: Clock, accelerated: bool) -> KiteBroker:
    token = settings.kite_access_token
    if not settings.kite_api_key or token is None:
        fail("the kite broker needs KITE_API_KEY and KITE_ACCESS_TOKEN (today's access token)")
        raise AssertionError
    if accelerated and settings.kite_root == ROOT:
        fail("--start and --speed are for simulated markets; Kite's market runs in real time")
    client = KiteClient(settings.kite_api_key, token.get_secret_value(), settings.kite_root, clock)
    return KiteBroker(client, cache_dir=settings.data_dir / "cache" / "kite")


@app.command("fake-kite")
def fake_kite(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 5010,
    api_key: Annotated[str, typer.Option(help="The API key clients must use.")] = FakeKite.api_key,
    api_secret: Annotated[
        str, typer.Option(help="The API secret the login checksum is made with.")
    ] = FakeKite.api_secret,
    seed: Seed = None,
    speed: Annotated[float, typer.Option(help="Market clock speed (1 = real time).")] = 1.0,
    start: Annotated[
        datetime | None,
        typer.Option(help="Market clock start, IST (default: now), e.g. 2026-11-20T09:15:00."),
    ] = None,
) -> None:
    """Serve a fake Kite Connect API on 127.0.0.1, with quotes from the simulated market.

    Speaks Kite's wire format closely enough for Zerodha's own client: log in at
    /connect/login?api_key=KEY&v=3, then use the API with root=http://127.0.0.1:PORT.
    """
    settings = load_settings(sim_seed=seed)
    fake = FakeKite(
        _clock(start, speed), api_key, api_secret, settings.sim_seed, settings.sim_glitch_rate
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError as err:
        fail(f"cannot listen on 127.0.0.1:{port}: {err.strerror}")
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Listening before the line is printed: a client that reads it can connect at once.
    console.print(f"fake Kite listening on {root} (api_key {api_key})", soft_wrap=True)
    config = uvicorn.Config(fake.app(), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])  # Ctrl-C: uvicorn shuts down gracefully


def _clock(start: datetime | None, speed: float) -> Clock:
    if start is not None:
        return ScaledClock(start if start.tzinfo else start.replace(tzinfo=IST), speed)
    if speed != 1.0:
        return ScaledClock(datetime.now(IST), speed)
    return WallClock()


def _last_trading_day() -> date:
    today = datetime.now(IST).date()
    exchange = INDICES["NIFTY"].exchange
    try:
        return calendar.last_trading_day(exchange, today)
    except calendar.CalendarUnavailable as err:
        fail(f"{err}; pass --date")
        raise


def _session_or_fail(settings: Settings, day: date) -> calendar.Session:
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
