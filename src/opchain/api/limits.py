"""Rate limiting: a token bucket per client (its key, or its address without one).

A bucket holds up to ``burst`` tokens and gains ``rate`` a second; each request takes one.
An empty bucket answers how long until a token is back, which becomes ``Retry-After``. Full
buckets carry no information, so they are dropped when the table grows: memory stays bounded
by the clients active in the last ``burst / rate`` seconds.
"""

import math
import time
from collections.abc import Callable, Hashable

MAX_CLIENTS = 10_000  # past this many buckets, the full ones are dropped


class RateLimiter:
    def __init__(self, rate: float, burst: int, now: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.now = rate, burst, now
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # client -> (tokens, when)

    def take(self, client: Hashable) -> int | None:
        """Take a token for ``client``: None when granted, else whole seconds to wait (≥ 1)."""
        now = self.now()
        tokens, then = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._prune(now)
            return None
        self._buckets[client] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _prune(self, now: float) -> None:
        full = [
            client
            for client, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.rate >= self.burst
        ]
        for client in full:
            del self._buckets[client]
