"""``opchain serve``: the API and dashboard over a data directory, following the live files
of a collector running elsewhere (or, with ``--bus``, the live messages in Redis); and what
``opchain run`` needs to serve them beside it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .console import check_data_dir, fail, load_settings

if TYPE_CHECKING:  # the web stack is imported by the functions that serve
    import socket

    import uvicorn
    from fastapi import FastAPI

    from opchain.api.live import Hub
    from opchain.brokers.tally import BrokerTally
    from opchain.health.metrics import Metrics
    from opchain.market.clock import Clock
    from opchain.merge.cycle import Cycle
    from opchain.pipeline import OnCycle
    from opchain.settings import Settings


def each(*hooks: OnCycle | None) -> OnCycle | None:
    """One ``on_cycle`` that calls every hook given, in order (None: no hook at all)."""
    chosen = [hook for hook in hooks if hook is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]

    def call(cycle: Cycle) -> None:
        for hook in chosen:
            hook(cycle)

    return call


def bind(settings: Settings) -> socket.socket:
    """The API's listening socket, or one clear line and exit code 2."""
    from opchain.api.server import listen

    try:
        return listen(settings.api_host, settings.api_port)
    except OSError as err:
        fail(f"cannot listen on {settings.api_host}:{settings.api_port}: {err.strerror or err}")


def make_app(
    settings: Settings,
    hub: Hub,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    tally: BrokerTally | None = None,
) -> FastAPI:
    """The application, or one clear line when the settings cannot make one (a bad key).
    ``metrics`` and ``tally`` are the collector's when it runs in the same process, so
    ``/metrics`` and ``/health`` see its counters and its broker's answers."""
    from opchain.api.app import create_app

    try:
        app = create_app(settings, hub, clock)
    except ValueError as err:
        fail(f"bad settings: api_keys: {err}")
    if metrics is not None:
        app.state.metrics = metrics
    if tally is not None:
        app.state.broker_tally = tally
    return app


def announce(sock: socket.socket) -> None:
    """The one line the dashboard's tests (and people) read to find the API."""
    from opchain.api.server import address

    print(f"API at {address(sock)}", flush=True)


@contextlib.asynccontextmanager
async def api_beside(
    settings: Settings,
    hub: Hub,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    tally: BrokerTally | None = None,
) -> AsyncIterator[uvicorn.Server]:
    """Serve the API in this event loop while the block runs (``opchain run``)."""
    import asyncio

    from opchain.api.server import server

    api = server(make_app(settings, hub, clock, metrics, tally))
    sock = bind(settings)
    task = asyncio.create_task(api.serve(sockets=[sock]))
    announce(sock)
    try:
        yield api
    finally:
        api.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def serve(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address (env OPCHAIN_API_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port, 0 for any free one (env OPCHAIN_API_PORT).")
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            metavar="URL",
            help="Live messages from this Redis (the scale-out's recorders), not live files: "
            "redis://host:6379/0, rediss://... (its password: OPCHAIN_REDIS_PASSWORD).",
        ),
    ] = None,
) -> None:
    """Serve the API and the dashboard over DATA_DIR.

    Shows the last snapshot each index's live file holds (`opchain demo` leaves one), and
    follows the files while a collector elsewhere replaces them (about twice a second). With
    --bus, the live messages come from Redis instead, every one the recorders publish
    (docs/scale-out.md); the other files are still read from DATA_DIR.
    """
    import asyncio

    from opchain.api.live import Hub
    from opchain.api.server import server

    from .bus import check_bus_url, check_credentials

    settings = load_settings(data_dir=data_dir, api_host=host, api_port=port, redis_url=bus)
    check_data_dir(settings.data_dir)
    if bus is not None:
        check_bus_url(bus)
        check_credentials(settings)
    hub = Hub(settings.data_dir, settings.rate)
    app = make_app(settings, hub)
    api = server(app)
    sock = bind(settings)
    if bus:
        from opchain.bus.live import LiveFeed

        feed = LiveFeed(settings, hub.put)
        app.state.own_checks = [lambda: feed.check]
        follow = feed.run
    else:
        hub.poll()
        follow = hub.follow

    async def main() -> None:
        follower = asyncio.create_task(follow())
        try:
            await api.serve(sockets=[sock])
        finally:
            follower.cancel()

    announce(sock)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
