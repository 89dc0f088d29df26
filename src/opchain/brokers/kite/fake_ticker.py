"""The fake Kite server's ticker: Kite's WebSocket stream over the simulated market.

A client connects to the server's root path with ``api_key`` and ``access_token`` in the query;
bad credentials are refused at the upgrade with HTTP 403, as Kite does. Text messages subscribe,
unsubscribe and set modes (``ltp``, ``quote``, ``full``; ``quote`` by default; tokens as JSON
numbers, strings ignored). The server then sends:

- a frame with every subscribed instrument each time its clock enters a new second, and at once
  a frame with instruments just subscribed or switched to another mode (their first tick);
- a one-byte heartbeat when nothing else went out for ``heartbeat`` wall seconds;
- ``{"type": "error", "data": ...}`` for a fourth connection or past 3,000 instruments.

The server's clock may be virtual, moved by the client side in tests, so the stream watches the
clock (every ``poll`` wall seconds) instead of sleeping on it. Scripted faults (``ws_drop``,
``ws_stall``, ``ws_script`` of :class:`~.fake.Faults`) act after a frame: ``drop`` cuts the
connection, ``stall`` silences it for good, ``mute`` leaves only heartbeats, and ``garbled``
sends a frame cut short before the frame itself.
"""

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import wire
from .ticker import MAX_CONNECTIONS, MAX_TOKENS, MODES

if TYPE_CHECKING:
    from .fake import FakeKite

HEARTBEAT = b"\x00"


class FakeTicker:
    def __init__(
        self, fake: "FakeKite", heartbeat: float = 1.0, poll: float = 0.01, busiest: float = 0.05
    ) -> None:
        # ``busiest``: the shortest wall time between full frames. An accelerated clock enters
        # a new second every few milliseconds; a client cannot decode that many frames.
        self.fake, self.heartbeat, self.poll, self.busiest = fake, heartbeat, poll, busiest
        self.open: defaultdict[str, int] = defaultdict(int)  # connections per API key
        self.frames = 0  # frames with ticks sent, all connections

    async def serve(self, ws: WebSocket, api_key: str, valid: Callable[[], bool]) -> None:
        """Stream to a client whose credentials the server has checked; the connection ends
        when ``valid()`` turns false (the access token expired or was revoked)."""
        if self.open[api_key] >= MAX_CONNECTIONS:
            await ws.accept()
            await _error(ws, f"Maximum {MAX_CONNECTIONS} connections per API key reached.")
            await ws.close(1008)
            return
        self.open[api_key] += 1  # counted before the accept: the client may connect again at once
        stream = _Stream(ws)
        reader: asyncio.Task[None] | None = None
        try:
            await ws.accept()
            reader = asyncio.get_running_loop().create_task(stream.read())
            await self._push(stream, reader, valid)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away
        finally:
            self.open[api_key] -= 1
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await reader

    async def _push(
        self, stream: "_Stream", reader: "asyncio.Task[None]", valid: Callable[[], bool]
    ) -> None:
        loop, fake = asyncio.get_running_loop(), self.fake
        last_second, last_sent, last_full, muted = -1, loop.time(), 0.0, False
        while not reader.done():
            now = fake.clock.now()
            second = fake.market().second_of(now)  # stands still outside the session
            tokens: list[int] = []
            if second != last_second and not valid():
                await stream.ws.close(1000, "session expired")
                return
            if second != last_second and stream.modes:
                # A new second goes out whole (never a fresh-only frame of it first), and no
                # sooner than ``busiest`` after the last whole frame.
                if loop.time() - last_full >= self.busiest:
                    tokens, last_second, last_full = list(stream.modes), second, loop.time()
                    stream.fresh.clear()
            elif stream.fresh:
                tokens = list(stream.fresh)
                stream.fresh.clear()
            if tokens and not muted:
                fault = fake.faults.draw_ws()
                frame = self._frame(stream.modes, tokens, now)
                if fault == "garbled":  # a frame cut short, then the frame itself
                    await stream.ws.send_bytes(frame[: len(frame) // 2])
                await stream.ws.send_bytes(frame)
                self.frames += 1
                last_sent = loop.time()
                if fault == "drop":
                    await stream.ws.close(1011)
                    return
                if fault == "stall":  # open and silent from now on: a dead feed
                    await reader
                    return
                muted = fault == "mute"  # heartbeats from now on, never data
            elif loop.time() - last_sent >= self.heartbeat:
                await stream.ws.send_bytes(HEARTBEAT)
                last_sent = loop.time()
            await asyncio.sleep(self.poll)  # wall time: the clock may be someone else's to move

    def _frame(self, modes: dict[int, str], tokens: list[int], now: datetime) -> bytes:
        market = self.fake.market()
        keys = self.fake.keys_by_token(market)
        wanted = {keys[t]: t for t in tokens if t in keys}
        quotes = market.quotes(list(wanted), now)
        return wire.encode_frame(
            [wire.encode_packet(q, modes[wanted[key]]) for key, q in quotes.items()]
        )


class _Stream:
    """One client's subscriptions, updated by its text messages."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.modes: dict[int, str] = {}
        self.fresh: set[int] = set()  # to send at once: just subscribed or switched mode

    async def read(self) -> None:
        while True:
            try:
                body = json.loads(await self.ws.receive_text())
            except ValueError:
                continue  # Kite ignores what it cannot read
            if not isinstance(body, dict):
                continue
            action, value = body.get("a"), body.get("v")
            if action == "subscribe" and isinstance(value, list):
                await self.subscribe(_tokens(value))
            elif action == "unsubscribe" and isinstance(value, list):
                for token in _tokens(value):
                    self.modes.pop(token, None)
            elif action == "mode" and isinstance(value, list) and len(value) == 2:
                mode, tokens = value
                if isinstance(mode, str) and mode in MODES and isinstance(tokens, list):
                    mine = [t for t in _tokens(tokens) if t in self.modes]
                    self.modes.update(dict.fromkeys(mine, mode))
                    self.fresh.update(mine)

    async def subscribe(self, tokens: list[int]) -> None:
        new = [t for t in dict.fromkeys(tokens) if t not in self.modes]
        room = MAX_TOKENS - len(self.modes)
        if len(new) > room:
            await _error(self.ws, f"Maximum {MAX_TOKENS} instruments per connection; "
                                  f"{len(new) - room} not subscribed.")  # fmt: skip
            new = new[:room]
        self.modes.update(dict.fromkeys(new, "quote"))
        self.fresh.update(new)


def _tokens(values: list[object]) -> list[int]:
    """Tokens as JSON numbers; Kite silently ignores strings (forum: kite.trade comment 6277)."""
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


async def _error(ws: WebSocket, message: str) -> None:
    await ws.send_text(json.dumps({"type": "error", "data": message}))
