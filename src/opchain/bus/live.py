"""``opchain serve --bus``: the live messages the recorders keep in Redis, fed to the Hub.

The recorders (:mod:`opchain.outputs.redislive`) SET each index's newest message at its live key
and PUBLISH it on the live channel. An API instance subscribes to the channel, then GETs every
index's key (so it starts with what is there), and hands each message's bytes to the Hub as
they came (``Hub.put``), which wakes that index's WebSocket clients. When Redis goes away it
says so (:attr:`LiveFeed.check`, shown by ``/health`` as ``bus``), retries with backoff, and on
reconnecting GETs the keys again, so nothing newer is missed.

Subscribing before the GETs means a message published just before a GET can arrive after it on
the channel, older than what the GET gave. A PING sent on the subscription after the GETs comes
back behind every such message; until it does, a message not newer than the GET's is dropped.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis.asyncio
import redis.exceptions

from opchain import redisconn
from opchain.health.checks import Check, redact
from opchain.health.state import Status
from opchain.market.indices import INDICES
from opchain.market.ist import IST
from opchain.settings import Settings

log = logging.getLogger(__name__)

NAME = "bus"  # the check /health shows
FIRST_RETRY, LAST_RETRY = 0.5, 5.0  # seconds between attempts while Redis is away, doubling
SYNC = b"opchain-live-sync"  # the PING's message that closes the window after the GETs
KEEPALIVE = 15.0  # seconds of a quiet channel before a PING asks whether Redis is still there

Put = Callable[[str, bytes], bool]  # Hub.put: index, encoded message -> taken


class LiveFeed:
    """Feeds ``put`` from Redis for as long as :meth:`run` runs."""

    def __init__(
        self, settings: Settings, put: Put, now: Callable[[], datetime] = lambda: datetime.now(IST)
    ) -> None:
        self.settings, self.put, self.now = settings, put, now
        self.where = redact(redisconn.url(settings))
        self.keys = redisconn.Keys(settings.bus_prefix)
        self.check = Check(NAME, "down", f"not connected to Redis at {self.where} yet", now())
        self.received = 0  # channel messages taken
        self._lost = False  # Redis went away (said once in the log) and is not back yet
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        delay = FIRST_RETRY
        while True:
            client = redisconn.connect(self.settings)
            try:
                await self._follow(client)
            except (redis.exceptions.RedisError, OSError) as err:
                detail = f"Redis at {self.where} unreachable: {err}; reconnecting in {delay:g} s"
                if not self._lost:
                    log.warning("live feed: %s", detail)
                    self._lost = True
                await self._say("down", detail)
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY)

    async def wait_for(self, status: Status) -> None:
        """Until the feed's state is ``status`` (tests; bound it with ``asyncio.timeout``)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.check.status == status)

    async def _follow(self, client: "redis.asyncio.Redis") -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.keys.channel())
            # Ok from here: whatever a client gets next came from this connection.
            await self._say("ok", f"following live messages in Redis at {self.where}")
            if self._lost:
                log.warning("live feed: following Redis at %s again", self.where)
                self._lost = False
            got: dict[str, str] = {}  # index -> ts of the message the GET gave
            for index in INDICES:
                data = await client.get(self.keys.live(index))
                if isinstance(data, bytes):
                    self.put(index, data)
                    got[index] = _ts(data)
            await pubsub.ping(SYNC)
            syncing, asked = True, False
            while True:
                message = await pubsub.get_message(timeout=KEEPALIVE)
                if message is None:  # a quiet channel, or a connection dead without a word
                    if asked:
                        raise redis.exceptions.ConnectionError(
                            f"no answer to a PING in {KEEPALIVE:g} s"
                        )
                    await pubsub.ping()
                    asked = True
                    continue
                asked = False
                if message["type"] == "pong" and message["data"] == SYNC:
                    syncing = False
                elif message["type"] == "message":
                    self._take(message, got if syncing else None)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _take(self, message: dict[str, Any], older: dict[str, str] | None) -> None:
        index, _, data = bytes(message["data"]).partition(b"\n")
        name = index.decode(errors="replace")
        if older is not None and name in older and _ts(data) <= older[name]:
            return  # published before the GET that gave something as new
        self.received += 1
        self.put(name, data)

    async def _say(self, status: Status, detail: str) -> None:
        if status != self.check.status or detail != self.check.detail:
            since = self.check.since if status == self.check.status else self.now()
            self.check = Check(NAME, status, detail, since)
        async with self._changed:
            self._changed.notify_all()


def _ts(data: bytes) -> str:
    """A message's ``ts`` (ISO-8601, IST: comparable as text), "" when it has none."""
    try:
        found = json.loads(data).get("ts")
    except (ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""
