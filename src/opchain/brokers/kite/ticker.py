"""Kite's ticker: an asyncio WebSocket client for the binary market-data stream.

Kite pushes ticks over ``wss://ws.kite.trade?api_key=K&access_token=T``: binary frames of
packets (decoded in :mod:`.wire`), one-byte heartbeats, and text messages (errors, order
updates). The client sends ``{"a": "subscribe", "v": [tokens]}`` and
``{"a": "mode", "v": ["full", [tokens]]}``; a connection carries at most 3,000 instruments and an
API key at most three connections (research/kite.md §2.9).

What pykiteconnect's users keep hitting, handled here:

- **Silent stalls.** A socket can stay open while nothing arrives (pykiteconnect #229). A
  watchdog drops a connection that has been silent, heartbeats included, for ``stall_after``
  seconds, and reconnects.
- **Reconnects** back off exponentially with full jitter, read the access token afresh each time
  (a new login takes effect without a restart), and re-send every subscription with its mode.
- **Expired tokens.** Kite refuses the upgrade with HTTP 403: that is not retried; the ticker
  stops and :attr:`Ticker.failure` holds :class:`~.client.TokenExpired`.
- **Bad frames** are logged and skipped; the stream goes on.
- **Closing** stops a connection for good even when the cancellation is lost: Python 3.11's
  ``asyncio.wait_for`` drops a cancellation whose inner read finished at the same moment (the
  read ends with the connection that closing aborts), and the connection reconnected and traded
  heartbeats for ever after the session's summary. A flag set before the cancel ends the loop.

Timings here are wall-clock seconds: they concern the network, not the market.
"""

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterable
from contextlib import suppress
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from . import wire
from .client import TokenExpired

log = logging.getLogger(__name__)

URL = "wss://ws.kite.trade"
MAX_TOKENS = 3000  # instruments per connection
MAX_CONNECTIONS = 3  # connections per API key
MODES = ("ltp", "quote", "full")


class Stalled(Exception):
    """Nothing, not even a heartbeat, arrived for the watchdog's whole period."""


class Ticker:
    """Kite's tick stream over as many connections (at most three) as the subscriptions need.

    ``on_ticks`` gets every decoded frame's ticks, in arrival order, on the event loop; it
    should do in-memory work only (slow callbacks stall the socket, pykiteconnect #88).
    ``on_failure`` is called once the ticker has stopped for good (:attr:`failure`).
    """

    def __init__(
        self,
        api_key: str,
        access_token: Callable[[], str],
        on_ticks: Callable[[list[wire.Tick]], None],
        url: str = URL,
        stall_after: float = 10.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_tokens: int = MAX_TOKENS,
        seed: int | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.on_failure = on_failure
        self.api_key, self.access_token, self.on_ticks, self.url = (
            api_key,
            access_token,
            on_ticks,
            url,
        )
        self.stall_after, self.backoff, self.max_backoff = stall_after, backoff, max_backoff
        self.max_tokens = max_tokens
        self.jitter = random.Random(seed)
        self.connections: list[Connection] = []
        self.failure: TokenExpired | None = None
        self.errors: list[str] = []  # text error messages from the server, latest last

    async def subscribe(self, tokens: Iterable[int], mode: str = "full") -> None:
        """Stream ``tokens`` in ``mode``; tokens already streamed change mode. Connections open
        as needed, each with up to ``max_tokens`` instruments."""
        if mode not in MODES:
            raise ValueError(f"unknown ticker mode {mode!r}; one of {', '.join(MODES)}")
        pending = list(dict.fromkeys(tokens))
        for conn in self.connections:  # a mode change stays on the token's connection
            if mine := [t for t in pending if t in conn.modes]:
                await conn.add(mine, mode)
        known = self.tokens
        pending = [t for t in pending if t not in known]
        while pending:
            conn = next((c for c in self.connections if c.room > 0), None) or self._open()
            take, pending = pending[: conn.room], pending[conn.room :]
            await conn.add(take, mode)

    def _open(self) -> "Connection":
        if len(self.connections) == MAX_CONNECTIONS:
            raise ValueError(
                f"Kite streams at most {MAX_CONNECTIONS * self.max_tokens} instruments per API "
                f"key ({MAX_CONNECTIONS} connections of {self.max_tokens})"
            )
        conn = Connection(self, len(self.connections))
        self.connections.append(conn)
        return conn

    @property
    def tokens(self) -> set[int]:
        return {t for c in self.connections for t in c.modes}

    @property
    def reconnects(self) -> int:
        return sum(c.reconnects for c in self.connections)

    def reconnect(self) -> None:
        """Drop every connection now (each comes back with its subscriptions): for a stream
        that still sends heartbeats but no data."""
        for conn in self.connections:
            conn.drop()

    async def close(self) -> None:
        for conn in self.connections:
            await conn.close()


class Connection:
    """One WebSocket and its subscriptions, kept connected by its own task."""

    def __init__(self, ticker: Ticker, number: int) -> None:
        self.ticker, self.number = ticker, number
        self.modes: dict[int, str] = {}
        self.reconnects = 0
        self.closing = False
        self._ws: ClientConnection | None = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def room(self) -> int:
        return self.ticker.max_tokens - len(self.modes)

    async def add(self, tokens: list[int], mode: str) -> None:
        self.modes.update(dict.fromkeys(tokens, mode))
        if self._ws is not None:
            await _subscribe(self._ws, tokens, mode)

    def drop(self) -> None:
        if self._ws is not None:
            self._ws.transport.abort()  # the reader sees the connection closed and reconnects

    async def close(self) -> None:
        self.closing = True  # before anything that wakes the loop: it must not go round again
        self.drop()  # no close handshake to wait for: the process is done with the stream
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        ticker, attempt = self.ticker, 0
        while not self.closing:
            query = urlencode({"api_key": ticker.api_key, "access_token": ticker.access_token()})
            try:
                async with connect(
                    f"{ticker.url}?{query}",
                    additional_headers={"X-Kite-Version": "3"},
                    user_agent_header="opchain",
                    proxy=None,
                    open_timeout=max(ticker.stall_after, 1.0),
                    close_timeout=1.0,
                    ping_interval=None,  # Kite's heartbeats and the watchdog do this job
                    compression=None,
                ) as ws:
                    self._ws, attempt = ws, 0
                    for mode, tokens in _by_mode(self.modes).items():
                        await _subscribe(ws, tokens, mode)
                    await self._read(ws)
            except InvalidStatus as err:
                if err.response.status_code == 403:
                    ticker.failure = TokenExpired(
                        "ticker: upgrade refused (HTTP 403): TokenException: bad or expired token",
                        "TokenException",
                        403,
                    )
                    log.critical("%s", ticker.failure)
                    if ticker.on_failure is not None:
                        ticker.on_failure()
                    return
                log.warning("ticker %d: upgrade refused: %s", self.number, err)
            except (ConnectionClosed, Stalled, OSError, TimeoutError, WebSocketException) as err:
                log.warning(
                    "ticker %d: connection lost: %s", self.number, err or type(err).__name__
                )
            finally:
                self._ws = None
            if self.closing:
                return
            self.reconnects += 1
            attempt += 1
            delay = ticker.jitter.uniform(0, min(ticker.max_backoff, ticker.backoff * 2**attempt))
            log.info("ticker %d: reconnect %d in %.2f s", self.number, attempt, delay)
            await asyncio.sleep(delay)  # network backoff, in wall time

    async def _read(self, ws: ClientConnection) -> None:
        while not self.closing:
            try:
                message = await asyncio.wait_for(ws.recv(), self.ticker.stall_after)
            except TimeoutError:
                raise Stalled(f"silent for {self.ticker.stall_after:g} s") from None
            if isinstance(message, str):
                self._on_text(message)
                continue
            try:
                ticks = wire.decode_frame(message)
            except wire.WireError as err:
                log.warning("ticker %d: skipped a frame: %s", self.number, err)
                continue
            if ticks:
                self.ticker.on_ticks(ticks)

    def _on_text(self, message: str) -> None:
        try:
            body = json.loads(message)
        except ValueError:
            log.warning("ticker %d: unreadable text message %r", self.number, message[:80])
            return
        if isinstance(body, dict) and body.get("type") == "error":
            self.ticker.errors.append(str(body.get("data")))
            log.error("ticker %d: Kite says: %s", self.number, body.get("data"))


async def _subscribe(ws: ClientConnection, tokens: list[int], mode: str) -> None:
    """Subscribe and set the mode; Kite takes tokens as JSON numbers, never strings."""
    with suppress(ConnectionClosed):  # a reconnect re-sends every subscription
        await ws.send(json.dumps({"a": "subscribe", "v": tokens}))
        await ws.send(json.dumps({"a": "mode", "v": [mode, tokens]}))


def _by_mode(modes: dict[int, str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for token, mode in modes.items():
        groups.setdefault(mode, []).append(token)
    return groups
