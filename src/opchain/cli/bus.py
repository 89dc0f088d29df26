"""``opchain collect`` and ``opchain worker``: the scale-out roles on Redis Streams
(docs/scale-out.md). ``opchain serve --bus`` is the third."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .console import MAX_SPEED, check_data_dir, console, fail, load_settings, make_clock, out

if TYPE_CHECKING:
    from opchain.health.metrics import Metrics
    from opchain.market.clock import PacedClock
    from opchain.settings import Settings

Bus = Annotated[
    str | None,
    typer.Option(
        "--bus",
        help="Redis, e.g. redis://host:6379/0 or rediss://... (default: OPCHAIN_REDIS_URL, "
        "REDIS_URL, or REDIS_HOST and REDIS_PORT).",
    ),
]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
]
EXIT_FENCED = 3  # a worker whose partition another took: nothing more of it may be written


SCHEMES = ("redis://", "rediss://", "unix://")


def check_bus_url(address: str) -> None:
    """One clear line for what cannot be a Redis address."""
    if not address.startswith(SCHEMES):
        fail(f"--bus {address!r} is not a Redis URL: redis://host:6379/0, rediss://host:6380/0 "
             "(TLS) or unix:///path/redis.sock")  # fmt: skip


def _bus_settings(bus: str | None, **given: object) -> Settings:
    from opchain.redisconn import NotConfigured, url

    settings = load_settings(redis_url=bus, **given)
    try:
        check_bus_url(url(settings))
    except NotConfigured as err:
        fail(str(err))
    check_data_dir(settings.data_dir)
    check_credentials(settings)
    return settings


def check_credentials(settings: Settings) -> None:
    """One clear line for a Redis that refuses us (a wrong password, an untrusted TLS
    certificate); a Redis that does not answer yet is the roles' to wait for."""
    import redis.exceptions

    from opchain.health.checks import redact
    from opchain.redisconn import connect_sync, url

    client = connect_sync(settings)
    try:
        client.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError) as err:
        fail(f"Redis at {redact(url(settings))} refused the credentials: {err} "
             "(OPCHAIN_REDIS_PASSWORD, or the URL's)")  # fmt: skip
    except redis.exceptions.ResponseError as err:  # NOAUTH: a password is needed
        fail(f"Redis at {redact(url(settings))} refused us: {err} (OPCHAIN_REDIS_PASSWORD)")
    except redis.exceptions.ConnectionError as err:
        if "certificate" in str(err):
            fail(f"Redis at {redact(url(settings))}: {err} (OPCHAIN_REDIS_TLS_CA)")
    finally:
        client.close()


def serve_metrics(settings: Settings) -> Metrics | None:
    """The role's metrics, served at OPCHAIN_API_HOST:OPCHAIN_METRICS_PORT and said in one
    line (``metrics at ...``); None without a port. A taken port: one clear line, exit 2."""
    if settings.metrics_port is None:
        return None
    from opchain.health.metrics import Metrics

    metrics = Metrics()
    try:
        where = metrics.serve(settings.api_host, settings.metrics_port)
    except OSError as err:
        fail(f"cannot serve metrics on {settings.api_host}:{settings.metrics_port}: "
             f"{err.strerror or err} (OPCHAIN_METRICS_PORT)")  # fmt: skip
    print(f"metrics at {where}", flush=True)
    return metrics


def paced(start: datetime, speed: float) -> PacedClock:
    from opchain.market.clock import PacedClock

    if not 0 < speed <= MAX_SPEED:  # NaN too
        fail(f"--speed must be a positive number up to {MAX_SPEED:g}, not {speed:g}")
    return PacedClock(start, speed)


def collect(
    bus: Bus = None,
    broker: Annotated[str, typer.Option(help="sim or kite (env OPCHAIN_BROKER).")] = "",
    data_dir: DataDir = None,
    seed: Annotated[int | None, typer.Option(help="Simulator seed (env OPCHAIN_SIM_SEED).")] = None,
    cadence: Annotated[
        float | None, typer.Option(help="Seconds between snapshots (env OPCHAIN_CADENCE_SECONDS).")
    ] = None,
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            formats=["%Y-%m-%d"],
            help="sim: publish the whole session of this day, the cycles `opchain demo` "
            "records, then stop (at once, or at --speed).",
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Simulator clock speed (1 = real time; with --date: as fast as it can)."),
    ] = None,
    start: Annotated[
        datetime | None, typer.Option(help="Simulator clock start, IST (default: now).")
    ] = None,
    sessions: Annotated[
        int | None, typer.Option(help="Stop after this many sessions (default: run forever).")
    ] = None,
) -> None:
    """Collect and publish to Redis Streams: the broker and the cycle loop of `opchain run`,
    each cycle published for `opchain worker` to record. While Redis is away the cycles are
    spooled under the data directory and published, in order, when it is back."""
    import asyncio

    import httpx

    from opchain.brokers.kite.client import TokenExpired
    from opchain.brokers.tally import BrokerTally, CountingTransport
    from opchain.bus.collector import Publishing
    from opchain.bus.publish import Publisher
    from opchain.health import state as health
    from opchain.health.storage import StorageHealth
    from opchain.health.supervisor import supervise
    from opchain.market import calendar
    from opchain.market.clock import Clock, VirtualClock
    from opchain.pipeline import SessionReport, run_sessions
    from opchain.redisconn import Keys, connect
    from opchain.store import layout

    from . import kite
    from .app import _say, _session_or_fail

    settings = _bus_settings(bus, broker=broker or None, data_dir=data_dir, sim_seed=seed,
                             cadence_seconds=cadence)  # fmt: skip
    metrics = serve_metrics(settings)
    clock: Clock
    if day is not None:
        if settings.broker != "sim":
            fail("--date replays a simulated session: it needs the sim broker")
        if start is not None:
            fail("--date starts at the day's open: leave --start out")
        opens = _session_or_fail(settings, day.date()).open
        clock = VirtualClock(opens) if speed is None else paced(opens, speed)
        sessions = 1
    else:
        clock = make_clock(start, 1.0 if speed is None else speed)
    accelerated = start is not None or speed not in (None, 1.0)
    # The broker's HTTP answers counted as `opchain run` counts them (429s, errors, times).
    tally = BrokerTally(metrics.observe_request) if metrics and settings.broker == "kite" else None
    counted = CountingTransport(httpx.AsyncHTTPTransport(), tally) if tally else None
    source, kite_source, stored = kite.make_broker(settings, clock, accelerated, counted)
    spool = layout.bus_spool_dir(settings.data_dir)
    publisher = Publisher(lambda: connect(settings), spool, say=_say)
    publishing = Publishing(publisher, Keys(settings.bus_prefix))

    def done(report: SessionReport) -> None:
        if report.closed:
            out.print(f"{report.day}: {report.closed}", soft_wrap=True)
            return
        lost = sum(report.lost.values())
        out.print(f"{report.day}: {report.cycles} cycles published every {report.cadence:g} s "
                  f"({report.missed} missed, {lost} lost), {report.legs:,} legs in "
                  f"{report.quote_calls:,} quote calls; {publisher.published:,} entries to "
                  f"Redis, {publisher.spooled:,} waiting in the spool", soft_wrap=True)  # fmt: skip

    storage = StorageHealth(settings.data_dir, clock, say=_say)
    recorded: list[date] = []  # carried over the collector's restarts: no day twice

    async def collector() -> None:
        try:
            await run_sessions(settings, source, clock, sessions, on_session=done, say=_say,
                               recorded=recorded, record=publishing)  # fmt: skip
        except Exception as err:
            storage.check(err)  # a spool that cannot be written: storage down, restarted
            raise

    async def main() -> None:
        if kite_source is not None:
            await kite.login_checked(kite_source, stored, clock, settings.data_dir)
        try:
            # Restarted with backoff after a failure, as `opchain run`'s collector is; an
            # expired login or a missing calendar cannot be helped by a restart.
            await supervise(health.COLLECTOR, collector, settings.data_dir, clock,
                            give_up_on=(TokenExpired, calendar.CalendarUnavailable),
                            metrics=metrics)  # fmt: skip
        finally:
            await publisher.close(timeout=10.0)
            await source.close()
            if publisher.spooled:
                _say(f"{publisher.spooled} cycles wait in {spool} for Redis; the next "
                     "`opchain collect` publishes them first")  # fmt: skip

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        console.print("stopped; every published cycle is in Redis or in the spool")
    except calendar.CalendarUnavailable as err:
        fail(str(err))
    except TokenExpired as err:
        kite.token_expired(err, clock, settings.data_dir)


def worker(
    bus: Bus = None,
    data_dir: DataDir = None,
    name: Annotated[
        str | None, typer.Option(help="This worker's name in the group (default: host-pid).")
    ] = None,
) -> None:
    """Record what collectors publish: take a fair share of the partitions (one per index)
    through leases in Redis, merge each cycle and write every file `opchain run` writes.
    A dead worker's partitions are taken over by the others. Stops cleanly on Ctrl-C or
    SIGTERM (files flushed, partitions given back at once)."""
    import asyncio
    import logging
    import signal

    from opchain.bus.lease import LeaseLost
    from opchain.bus.worker import BusRefused, Worker
    from opchain.redisconn import connect

    from .app import _say

    settings = _bus_settings(bus, data_dir=data_dir)
    metrics = serve_metrics(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = connect(settings)
        try:
            job = Worker(settings, client, name, say=_say, metrics=metrics)
            _say(f"worker {job.name}: partitions {', '.join(settings.indices)}")
            await job.run(stop)
        finally:
            await client.aclose()

    try:
        asyncio.run(main())
    except BusRefused as err:
        fail(f"{err} (OPCHAIN_REDIS_PASSWORD, or the URL's)")
    except LeaseLost as err:
        # Another worker owns the partition now: exit at once, so that nothing this process
        # holds unflushed reaches its files (no buffered writer is flushed on the way out).
        logging.getLogger(__name__).critical("stopping: %s", err)
        console.print(f"[bold red]stopped:[/] {err}; the partition's new owner goes on")
        os._exit(EXIT_FENCED)
