"""Tick mode: the kite broker with quotes from Kite's ticker instead of ``/quote``.

Every tick updates a book of the latest quote per instrument (the last tick wins). A quote call
subscribes what it has not seen before (in ``full`` mode: depth, OI, timestamps) and reads the
book once the stream has caught up with the clock: a frame stamped at or after the current
second has arrived, and every instrument asked for has had its first tick. The instruments
still come from the REST API (:class:`~.broker.KiteBroker`), once a day.

Book reads are paced like ``/quote`` calls, one a clock second, so a cycle that needs a second
read (the market moved past the watched band) sees the next second of the market, exactly as
when polling: tick mode and polling record the same rows from the same market.

If the stream falls behind for ``wait`` wall seconds (heartbeats flowing, data not), the ticker
reconnects once and the read waits again, until the cycle's deadline (the next cycle's time,
:func:`opchain.brokers.pacing.until`; ``wait`` again outside a cycle); after that the book is
read as it is, and quotes older than the cycle are flagged ``stale`` by validation downstream.
On a virtual clock the deadline never comes while the read waits (the clock stands still), so
a replay through the ticker is the same whatever the machine's load.
"""

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime

from opchain.brokers import pacing
from opchain.brokers.tally import BrokerTally
from opchain.market.clock import wall_seconds
from opchain.model import Instrument, Quote

from .broker import KiteBroker
from .ticker import MAX_CONNECTIONS, MAX_TOKENS, URL, Ticker
from .wire import Tick

log = logging.getLogger(__name__)

READ_INTERVAL = 1.0  # clock seconds between book reads, as between /quote calls


class TickBroker:
    name = "kite-ticks"
    max_quote_batch = MAX_TOKENS * MAX_CONNECTIONS
    quote_interval = READ_INTERVAL
    tally: BrokerTally | None = None  # the REST broker's (instruments, the fallback quotes)

    def __init__(
        self,
        rest: KiteBroker,
        access_token: Callable[[], str],
        url: str = URL,
        wait: float = 5.0,
        stall_after: float = 10.0,
        backoff: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.rest, self.clock = rest, rest.client.clock
        self.access_token, self.url, self.wait = access_token, url, wait
        self.stall_after, self.backoff, self.seed = stall_after, backoff, seed
        self.book: dict[int, Quote] = {}
        self.newest: datetime | None = None  # the latest exchange time any tick carried
        self.late_reads = 0  # reads that gave up waiting for the stream
        self._tokens: dict[str, int] = {}
        self._pace = pacing.Pacer(self.clock, READ_INTERVAL, per_second=True)
        self._ticker: Ticker | None = None
        self._arrived: asyncio.Event | None = None

    @property
    def ticker(self) -> Ticker:
        if self._ticker is None:  # made on first use: its connections need the running loop
            self._ticker = Ticker(
                self.rest.client.api_key,
                self.access_token,
                self._on_ticks,
                self.url,
                stall_after=self.stall_after,
                backoff=self.backoff,
                seed=self.seed,
                on_failure=self._wake,
            )
        return self._ticker

    async def instruments(self) -> list[Instrument]:
        rows = await self.rest.instruments()
        self._tokens = {i.key: i.instrument_token for i in rows}
        return rows

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        """The latest tick of each key at the current clock second; unknown keys are absent."""
        ticker = self.ticker
        if ticker.failure is not None:
            raise ticker.failure
        await self._pace.wait()
        second = self.clock.now().replace(microsecond=0)
        tokens = {key: self._tokens[key] for key in keys if key in self._tokens}
        streamed = ticker.tokens
        if new := [t for t in tokens.values() if t not in streamed]:
            await ticker.subscribe(new, "full")

        def caught_up() -> bool:
            fresh = self.newest is not None and self.newest >= second
            return fresh and all(t in self.book for t in tokens.values())

        deadline = pacing.deadline()
        left = self.wait
        if deadline is not None:
            left = wall_seconds(self.clock, (deadline - self.clock.now()).total_seconds())
        if not await self._until(caught_up, min(self.wait, left)) and ticker.failure is None:
            log.warning("ticker: no ticks for %s yet; reconnecting", second.time())
            ticker.reconnect()
            if deadline is not None:
                left = wall_seconds(self.clock, (deadline - self.clock.now()).total_seconds())
            if not await self._until(caught_up, left) and ticker.failure is None:
                self.late_reads += 1
                log.warning("ticker: still behind at %s; reading the book as it is", second)
        if ticker.failure is not None:
            raise ticker.failure
        book = self.book
        return {key: book[t] for key, t in tokens.items() if t in book}

    async def close(self) -> None:
        if self._ticker is not None:
            await self._ticker.close()
        await self.rest.close()

    def _on_ticks(self, ticks: list[Tick]) -> None:
        book, newest = self.book, self.newest
        for tick in ticks:
            quote = tick.quote
            book[quote.instrument_token] = quote
            if quote.timestamp is not None and (newest is None or quote.timestamp > newest):
                newest = quote.timestamp
        self.newest = newest
        self._wake()

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    async def _until(self, condition: Callable[[], bool], wait: float) -> bool:
        """Wait, at most ``wait`` wall seconds, until ``condition`` holds after some ticks."""
        if self._arrived is None:
            self._arrived = asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not condition():
            if self._ticker is not None and self._ticker.failure is not None:
                return False
            self._arrived.clear()
            timeout = None if math.isinf(deadline) else deadline - loop.time()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return condition()
        return True
