"""The Hub: the latest ``Live`` message per index, and the WebSocket fan-out of new ones.

Two sources feed it. Inside ``opchain run`` the collector hands over every snapshot
(:meth:`Hub.publish`, the pipeline's ``on_cycle``); that only stores a reference and wakes the
waiting clients, so the collector pays nothing when nobody watches. The messages are built on
the first request for them (from the IVs and Greeks ``merge`` solved for the cycle, and its
previous close's open interest) and kept, with their encoded bytes, until the next cycle.
``opchain serve`` follows the live files a collector writes (:meth:`Hub.poll`, called by
:meth:`Hub.follow` twice a second, or directly by tests); ``opchain serve --bus`` takes the
messages the recorders publish in Redis (:meth:`Hub.put`, fed by :mod:`opchain.bus.live`), and
keeps their bytes as they came, so that every instance sends every client the same frames.

Fan-out keeps no queues: each client waits for the index's ``changed`` event and then sends
whatever is newest, so a slow client skips what it had no time for.
"""

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opchain.api.models import Live
from opchain.market.indices import INDIA_VIX, INDICES
from opchain.merge.cycle import Cycle
from opchain.merge.view import live_messages
from opchain.store import layout
from opchain.store.live import encode
from opchain.store.regular import read_regular

log = logging.getLogger(__name__)
Message = dict[str, Any]
POLL_SECONDS = 0.5


class Hub:
    def __init__(self, data_dir: Path, rate: float = 0.0) -> None:
        self.data_dir, self.rate = data_dir, rate
        self._pending: Cycle | None = None
        self._messages: dict[str, Message] = {}
        self._cache: dict[tuple[str, str], Any] = {}  # (index, what) -> encoded view
        self._versions: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._stamps: dict[str, tuple[int, int]] = {}  # live file -> (mtime_ns, size)

    # Feeding it.

    def publish(self, cycle: Cycle) -> None:
        """A new cycle from the collector in this process (call it on the event loop)."""
        self._pending = cycle
        self._changed({chain.index for chain in cycle.snapshot.chains})

    def poll(self) -> list[str]:
        """Load the live files that changed since the last look; the indices updated."""
        updated = []
        for index in INDICES:
            path = layout.live_path(self.data_dir, index)
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._stamps.get(index) == stamp:
                continue
            self._stamps[index] = stamp
            message = live_message(path, layout.live_root(self.data_dir))
            if message is not None and message.get("index") == index:
                self._build()  # an in-process snapshot pending is older than the file
                self._messages[index] = message
                updated.append(index)
        self._changed(set(updated))
        return updated

    def put(self, index: str, data: bytes) -> bool:
        """A new encoded ``Live`` message of ``index`` (from Redis); False when it is not one
        (:func:`decode`) or is the very message held. It is decoded once, for the REST views;
        WebSocket clients get ``data`` itself."""
        if data == self._cache.get((index, "live")):
            return False
        message = decode(data)
        if message is None or message.get("index") != index:
            return False
        self._build()  # an in-process snapshot pending is older than this one
        self._messages[index] = message
        self._changed({index})
        self._cache[index, "live"] = data
        self._cache[index, "live-text"] = data.decode()
        return True

    async def follow(self, interval: float = POLL_SECONDS) -> None:
        """Poll the live files forever (``opchain serve``)."""
        while True:
            self.poll()
            await asyncio.sleep(interval)

    # Reading it.

    def message(self, index: str) -> Message | None:
        """The newest ``Live`` message of ``index``, built now if it is not yet."""
        self._build()
        return self._messages.get(index)

    def messages(self) -> dict[str, Message]:
        self._build()
        return dict(self._messages)

    def cached(self, index: str, what: str, make: Callable[[Message], Any]) -> Any:
        """``make(message)`` of the newest message, computed once per snapshot."""
        key = (index, what)
        if key not in self._cache:
            message = self.message(index)
            if message is None:
                return None
            self._cache[key] = make(message)
        return self._cache[key]

    def encoded(self, index: str) -> bytes | None:
        data: bytes | None = self.cached(index, "live", encode)
        return data

    def version(self, index: str) -> int:
        return self._versions.get(index, 0)

    def changed(self, index: str) -> asyncio.Event:
        """An event set at the next new message of ``index``."""
        event = self._events.get(index)
        if event is None:
            event = self._events[index] = asyncio.Event()
        return event

    # Inside.

    def _changed(self, indices: set[str]) -> None:
        for index in indices:
            self._versions[index] = self.version(index) + 1
            for key in [k for k in self._cache if k[0] == index]:
                del self._cache[key]
            event = self._events.pop(index, None)
            if event is not None:
                event.set()

    def _build(self) -> None:
        if self._pending is None:
            return
        cycle, self._pending = self._pending, None
        self._messages.update(live_messages(cycle, self.rate))


def live_message(path: Path, root: Path) -> Message | None:
    """The ``Live`` message of a live file, or None when it is not one: not a regular file
    inside ``root`` (a FIFO would block the event loop), not JSON, NaN or Infinity in it, or
    not the shape docs/api.md gives a ``Live`` message (strictly, so every view made of it is
    one the schema allows). A file from elsewhere may be anything; the routes index into
    what they get."""
    try:
        data = read_regular(path, root)
    except OSError:
        return None
    return decode(data)


def decode(data: bytes) -> Message | None:
    """The ``Live`` message ``data`` encodes, or None: not JSON, NaN or Infinity in it, or not
    the shape docs/api.md gives a ``Live`` message (:func:`live_message`)."""
    try:
        message = json.loads(data, parse_constant=_no_constant)
        Live.model_validate(message, strict=True)
    except ValueError:  # ValidationError and UnicodeDecodeError are ValueErrors
        return None
    return message if isinstance(message, dict) else None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def vix_overview(messages: Mapping[str, Message]) -> Message | None:
    """INDIA VIX's overview from the newest message that has one."""
    newest = sorted(messages.values(), key=lambda m: str(m.get("ts")), reverse=True)
    for message in newest:
        vix = message.get("vix")
        if isinstance(vix, dict) and vix.get("index") == INDIA_VIX.key:
            return vix
    return None
