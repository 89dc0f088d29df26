"""What the broker's HTTP answers look like: counted at the transport, below the Kite client.

The Kite client retries 429s, 5xx and timeouts on its own, so the pipeline only ever sees the
quotes that finally arrived. To judge Kite's health the answers are counted where they come
in: :class:`CountingTransport` wraps httpx's transport (the client takes one), times every
request and sorts its outcome into ``ok``, ``rate_limited`` (429), ``server_error`` (5xx) or
``error`` (no answer: connection refused, timeout). The tally keeps the last requests for the
``kite_api`` check and passes each one on to the metrics.
"""

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

import httpx

Outcome = str  # "ok", "rate_limited", "server_error", "error"
Listener = Callable[[Outcome, float], None]  # (outcome, seconds): e.g. Metrics.observe_request


@dataclass(frozen=True)
class Recent:
    requests: int
    rate_limited: int
    failed: int  # server errors and requests without an answer
    mean_seconds: float


class BrokerTally:
    """The last ``keep`` requests' outcomes and answer times, and totals since the start."""

    def __init__(self, listener: Listener | None = None, keep: int = 100) -> None:
        self.listener = listener
        self.totals: Counter[Outcome] = Counter()
        self._recent: deque[tuple[Outcome, float]] = deque(maxlen=keep)

    def record(self, outcome: Outcome, seconds: float) -> None:
        self.totals[outcome] += 1
        self._recent.append((outcome, seconds))
        if self.listener is not None:
            self.listener(outcome, seconds)

    def recent(self) -> Recent:
        window = list(self._recent)
        outcomes = Counter(o for o, _ in window)
        mean = sum(s for _, s in window) / len(window) if window else 0.0
        failed = outcomes["server_error"] + outcomes["error"]
        return Recent(len(window), outcomes["rate_limited"], failed, mean)


def outcome_of(status: int) -> Outcome:
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "ok"


class CountingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that passes every request on to ``inner`` and tallies the answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tally: BrokerTally) -> None:
        self.inner, self.tally = inner, tally

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.tally.record("error", perf_counter() - start)
            raise
        self.tally.record(outcome_of(response.status_code), perf_counter() - start)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
