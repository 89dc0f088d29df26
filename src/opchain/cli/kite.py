"""Kite on the command line: ``opchain login``, ``opchain fake-kite``, and the kite broker of
``opchain run`` (polling or ticks), with the access token checked before a session starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from opchain.market.ist import IST

from .console import check_number, console, fail, load_settings, make_clock, out

if TYPE_CHECKING:  # Kite's client, the fake server and their web stack: imported when used
    import httpx

    from opchain.brokers.base import Broker
    from opchain.brokers.kite.broker import KiteBroker
    from opchain.brokers.kite.session import StoredToken
    from opchain.brokers.kite.ticks import TickBroker
    from opchain.market.clock import Clock
    from opchain.settings import Settings

# FakeKite's own defaults, written out so that `--help` need not import the fake server and its
# web stack (tests/test_cli.py holds them equal).
FAKE_KEY, FAKE_SECRET = "opchain_fake_key", "opchain_fake_secret"
FAKE_REDIRECT = "http://127.0.0.1:5010/kite/callback"

Start = Annotated[
    datetime | None,
    typer.Option(help="Market clock start, IST (default: now), e.g. 2026-11-20T09:15:00."),
]


def login(
    request_token: Annotated[
        str | None, typer.Option(help="The request_token from Kite's redirect, if you have it.")
    ] = None,
    paste: Annotated[
        bool, typer.Option("--paste", help="Ask for the token instead of catching the redirect.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the redirect.")] = 300.0,
) -> None:
    """Log in to Kite and keep the day's access token for every other command.

    Prints the login URL; after you log in, Kite redirects your browser to your app's redirect
    URL (OPCHAIN_KITE_REDIRECT_URL), where opchain catches the request token when that URL is on
    this machine. Otherwise paste the token, or the whole URL the browser landed on. The access
    token goes to OPCHAIN_KITE_TOKEN_FILE (mode 0600) and dies at 06:00 IST tomorrow.
    """
    import asyncio

    from opchain.brokers.kite.client import KiteClient, KiteError
    from opchain.brokers.kite.login import exchange
    from opchain.brokers.kite.session import login_url, save_token

    check_number("--timeout", timeout, above=True)
    settings = load_settings()
    if not settings.kite_api_key or settings.kite_api_secret is None:
        fail("opchain login needs KITE_API_KEY and KITE_API_SECRET (your Kite app's)")
    secret = settings.kite_api_secret.get_secret_value()
    url = login_url(settings.kite_api_key, settings.login_url)
    console.print(f"Log in to Kite at:\n  {url}", soft_wrap=True, highlight=False)
    token = request_token or (_ask() if paste else _catch(settings, timeout))
    client = KiteClient(settings.kite_api_key, "", settings.kite_root)

    async def run() -> StoredToken:
        try:
            return await exchange(client, token, secret)
        finally:
            await client.close()

    try:
        stored = asyncio.run(run())
    except KiteError as err:
        fail(f"Kite did not accept the login: {err}")
    save_token(settings.token_file, stored)
    out.print(
        f"Logged in to Kite as {stored.user_name} ({stored.user_id}). The access token is in "
        f"{settings.token_file} and expires at {stored.expires_at:%H:%M} IST on "
        f"{stored.expires_at:%a %d %b %Y}.",
        soft_wrap=True,
    )


def _ask() -> str:
    from opchain.brokers.kite.session import request_token_from

    answer = typer.prompt("Paste the request_token, or the URL the browser landed on")
    try:
        return request_token_from(answer)
    except ValueError as err:
        fail(str(err))


def _catch(settings: Settings, timeout: float) -> str:
    import asyncio

    from opchain.brokers.kite.login import catch_redirect, listen

    url = settings.kite_redirect_url
    try:
        sock = listen(url)
    except ValueError as err:
        console.print(str(err), soft_wrap=True)
        return _ask()
    except OSError as err:
        fail(f"cannot listen on {url} ({err.strerror}); pass --paste or --request-token")
    console.print(f"Waiting for Kite's redirect to {url} ...", soft_wrap=True, highlight=False)
    try:
        return asyncio.run(catch_redirect(sock, url, timeout))
    except TimeoutError:
        fail(f"no login arrived at {url} within {timeout:g} s")
    except ValueError as err:
        fail(str(err))
    finally:
        sock.close()


def kite_broker(
    settings: Settings,
    clock: Clock,
    accelerated: bool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[KiteBroker | TickBroker, StoredToken | None]:
    """The kite broker the settings ask for, and the stored login it uses (None for a token
    from the environment). Fails with a clear line when there is no usable token.
    ``transport`` carries its HTTP requests (the health tally counts them there)."""
    from opchain.brokers.kite.broker import KiteBroker
    from opchain.brokers.kite.client import ROOT, KiteClient
    from opchain.brokers.kite.ticks import TickBroker
    from opchain.brokers.tally import CountingTransport
    from opchain.store import layout

    if not settings.kite_api_key:
        fail("the kite broker needs KITE_API_KEY, and a login: run `opchain login`")
    if accelerated and settings.kite_root == ROOT:
        fail("--start and --speed are for simulated markets; Kite's market runs in real time")
    stored, read = _token_source(settings, clock)
    client = KiteClient(
        settings.kite_api_key, read(), settings.kite_root, clock, transport=transport
    )
    broker = KiteBroker(client, cache_dir=layout.kite_cache_dir(settings.data_dir))
    broker.tally = transport.tally if isinstance(transport, CountingTransport) else None
    if settings.kite_ticks:
        ticks = TickBroker(broker, read, settings.ticker_url)
        ticks.tally = broker.tally
        return ticks, stored
    return broker, stored


def _token_source(settings: Settings, clock: Clock) -> tuple[StoredToken | None, Callable[[], str]]:
    from opchain.brokers.kite.session import load_token

    if settings.kite_access_token is not None:
        value = settings.kite_access_token.get_secret_value()
        return None, lambda: value
    path = settings.token_file
    try:
        stored = load_token(path)
    except ValueError as err:
        fail(str(err))
    if stored is None:
        fail(f"no Kite login in {path}: run `opchain login` (or set KITE_ACCESS_TOKEN)")
    if stored.api_key != settings.kite_api_key:
        fail(f"the login in {path} is for another API key than KITE_API_KEY: log in again")
    if stored.expired(clock.now()):
        fail(f"the Kite login in {path} expired at {stored.expires_at:%Y-%m-%d %H:%M} IST: "
             "run `opchain login`", code=3)  # fmt: skip

    def read() -> str:  # afresh at each reconnect: a new login takes effect without a restart
        try:
            latest = load_token(path)
        except ValueError:
            latest = None
        return (latest or stored).access_token

    return stored, read


def make_broker(
    settings: Settings,
    clock: Clock,
    accelerated: bool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[Broker, KiteBroker | TickBroker | None, StoredToken | None]:
    """The broker the settings name (`opchain run` and `opchain collect`): the simulator, or
    Kite's (:func:`kite_broker`), then also returned as itself with its stored login."""
    if settings.broker == "kite":
        broker, stored = kite_broker(settings, clock, accelerated, transport)
        return broker, broker, stored
    if settings.broker == "replay":
        fail("the replay broker plays one recorded day: opchain run --broker replay --date D")
    from opchain.brokers.sim import SimBroker

    sim = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate, indices=settings.indices)
    return sim, None, None


async def login_checked(
    broker: KiteBroker | TickBroker, stored: StoredToken | None, clock: Clock, data_dir: Path
) -> None:
    """Before anything else: :func:`check_login`, said on the console and reported to health
    as the broker's state (ok)."""
    from opchain.health import state as health

    notice = await check_login(broker, stored, clock)
    console.print(notice, soft_wrap=True)
    health.report(data_dir, health.BROKER, "ok", notice, clock.now())


def token_expired(err: Exception, clock: Clock, data_dir: Path, then: str = "") -> NoReturn:
    """Kite stopped accepting the access token: the broker down in health, one line (and
    ``then``), exit code 3."""
    from opchain.health import state as health

    detail = f"Kite no longer accepts the access token ({err}); run `opchain login`"
    health.report(data_dir, health.BROKER, "down", detail, clock.now())
    console.print(f"[bold red]stopped:[/] {detail}.{then}", soft_wrap=True)
    raise typer.Exit(3) from None


async def check_login(
    broker: KiteBroker | TickBroker, stored: StoredToken | None, clock: Clock
) -> str:
    """Ask Kite who the token belongs to (raises TokenExpired if nobody); say until when."""
    from opchain.brokers.kite.ticks import TickBroker

    client = broker.rest.client if isinstance(broker, TickBroker) else broker.client
    profile = await client.profile()
    who = f"{profile.get('user_name', '?')} ({profile.get('user_id', '?')})"
    if stored is None:
        return f"Kite: logged in as {who}; the access token dies at 06:00 IST at the latest."
    left = stored.expires_at - clock.now()
    hours, minutes = divmod(int(left.total_seconds()) // 60, 60)
    return (
        f"Kite: logged in as {who}; the access token expires at {stored.expires_at:%H:%M} IST "
        f"on {stored.expires_at:%a %d %b} (in {hours} h {minutes:02d} min)."
    )


def fake_kite(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 5010,
    api_key: Annotated[str, typer.Option(help="The API key clients must use.")] = FAKE_KEY,
    api_secret: Annotated[
        str, typer.Option(help="The API secret the login checksum is made with.")
    ] = FAKE_SECRET,
    seed: Annotated[int | None, typer.Option(help="Market seed (default 7).")] = None,
    speed: Annotated[float, typer.Option(help="Market clock speed (1 = real time).")] = 1.0,
    start: Start = None,
    redirect_url: Annotated[
        str, typer.Option(help="Where the login redirects the browser.")
    ] = FAKE_REDIRECT,
    too_many: Annotated[float, typer.Option(help="Share of quote calls answered 429.")] = 0.0,
    server_error: Annotated[float, typer.Option(help="Share answered 500/502/503.")] = 0.0,
    html: Annotated[float, typer.Option(help="Share answered with an HTML 502 page.")] = 0.0,
    malformed: Annotated[float, typer.Option(help="Share answered with cut JSON.")] = 0.0,
    stall: Annotated[float, typer.Option(help="Share left unanswered for --stall-seconds.")] = 0.0,
    stall_seconds: Annotated[float, typer.Option(help="How long a stalled call hangs.")] = 10.0,
    latency: Annotated[float, typer.Option(help="Seconds added to every answer.")] = 0.0,
    token_expires_at: Annotated[
        datetime | None, typer.Option(help="Every access token dies then (IST).")
    ] = None,
    ws_drop: Annotated[float, typer.Option(help="Share of ticker frames that cut the line.")] = 0.0,
    ws_stall: Annotated[
        float, typer.Option(help="Share of ticker frames after which the ticker goes silent.")
    ] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
) -> None:
    """Serve a fake Kite Connect API on 127.0.0.1, with quotes from the simulated market.

    Speaks Kite's wire formats closely enough for Zerodha's own client: log in at
    /connect/login?api_key=KEY&v=3, use the API with root=http://127.0.0.1:PORT, and the ticker
    at ws://127.0.0.1:PORT. The fault options script trouble for clients to survive.
    """
    import uvicorn

    from opchain.api import server as api_server
    from opchain.brokers.kite.fake import FakeKite, Faults

    check_number("--port", port, high=65535)
    for option, share in (("--too-many", too_many), ("--server-error", server_error),
                          ("--html", html), ("--malformed", malformed), ("--stall", stall),
                          ("--ws-drop", ws_drop), ("--ws-stall", ws_stall)):  # fmt: skip
        check_number(option, share, high=1.0)
    check_number("--stall-seconds", stall_seconds)
    check_number("--latency", latency)
    settings = load_settings(sim_seed=seed)
    expires = token_expires_at
    faults = Faults(
        too_many=too_many, server_error=server_error, html=html, malformed=malformed,
        stall=stall, stall_seconds=stall_seconds, latency=latency, ws_drop=ws_drop,
        ws_stall=ws_stall, seed=fault_seed,
        token_expires_at=expires.replace(tzinfo=IST) if expires and not expires.tzinfo else expires,
    )  # fmt: skip
    fake = FakeKite(
        make_clock(start, speed), api_key, api_secret, settings.sim_seed,
        settings.sim_glitch_rate, redirect_url, faults=faults, indices=settings.indices,
    )  # fmt: skip
    try:
        sock = api_server.listen("127.0.0.1", port)  # TCP named: no Nagle delay
    except OSError as err:
        fail(f"cannot listen on 127.0.0.1:{port}: {err.strerror}")
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Listening before the line is printed: a client that reads it can connect at once.
    console.print(f"fake Kite listening on {root} (api_key {api_key})", soft_wrap=True)
    config = uvicorn.Config(fake.app(), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])  # Ctrl-C: uvicorn shuts down gracefully
