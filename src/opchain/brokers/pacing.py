"""Request pacing on a clock: Kite allows one quote request a second per API key.

The Kite client paces its quote calls with it, and so does the simulated broker, so that a
cycle needing a second call sees the same market second from either (and a session replayed
against the simulator behaves like one against Kite).

In-process (the simulator, tick mode's book) the rule is one call per second of the clock
(``per_second``): a call may go once the clock has entered a second after the previous call's.
Spaced a whole second from each call instead, a call that went out late (the event loop busy)
pushed every later one back by as much, for good: at a 1-second cadence a stall early in a
run left every cycle's quotes 0.86 s after its time all session (BENCHMARKS.md, "Live
timing"). Across a network what counts is when each request leaves (``from_sends``): a call
that left late must not bring the next one closer to it; and the spacing the server sees
varies with the network, so the Kite client asks for a margin on top of Kite's second
(:data:`opchain.brokers.kite.client.QUOTE_INTERVAL`).

A cycle's calls have until the next cycle is due: :func:`until` sets that deadline for the
calls made inside it, and a broker that retries gives up once the deadline leaves no time for
another attempt (:class:`~opchain.brokers.base.QuoteUnavailable`), so one bad cycle never
delays the next.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from opchain.market.clock import Clock

SECOND = timedelta(seconds=1)
_deadline: ContextVar[datetime | None] = ContextVar("quote_deadline", default=None)


class Pacer:
    """At most one call per ``interval`` seconds of ``clock`` time, counted from the moment
    each call went out (``from_sends``), from the slot each was given, or (``per_second``)
    one call per second of the clock."""

    def __init__(
        self,
        clock: Clock,
        interval: float = 1.0,
        from_sends: bool = False,
        per_second: bool = False,
    ) -> None:
        self.clock, self.interval = clock, timedelta(seconds=interval)
        self.from_sends, self.per_second = from_sends, per_second
        self._last: datetime | None = None

    def next_slot(self) -> datetime:
        """When the next call may go out (now, if it may go at once)."""
        now = self.clock.now()
        if self._last is None:
            return now
        if self.per_second:
            return max(now, self._last.replace(microsecond=0) + SECOND)
        return max(now, self._last + self.interval)

    async def wait(self) -> None:
        """Return when the next call may go out, and count it as gone."""
        slot = self.next_slot()
        if slot > self.clock.now():
            await self.clock.sleep_until(slot)
        self._last = max(slot, self.clock.now()) if self.from_sends or self.per_second else slot


def deadline() -> datetime | None:
    """When the calls being made must be done by (None: no limit)."""
    return _deadline.get()


@contextmanager
def until(moment: datetime | None) -> Iterator[None]:
    """Calls made inside have until ``moment``."""
    token = _deadline.set(moment)
    try:
        yield
    finally:
        _deadline.reset(token)
