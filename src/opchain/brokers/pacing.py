"""Request pacing on a clock: Kite allows one quote request a second per API key.

The Kite client paces its quote calls with it, and so does the simulated broker, so that a
cycle needing a second call sees the same market second from either (and a session replayed
against the simulator behaves like one against Kite).
"""

from datetime import datetime, timedelta

from opchain.market.clock import Clock


class Pacer:
    """At most one call per ``interval`` seconds of ``clock`` time."""

    def __init__(self, clock: Clock, interval: float = 1.0) -> None:
        self.clock, self.interval = clock, timedelta(seconds=interval)
        self._last: datetime | None = None

    async def wait(self) -> None:
        """Return when the next call may go out, and count it as gone."""
        if self._last is not None and self.clock.now() < self._last + self.interval:
            await self.clock.sleep_until(self._last + self.interval)
        self._last = self.clock.now()
