"""The one interface every broker adapter implements (SPEC §3.2)."""

from collections.abc import Sequence
from typing import Protocol

from opchain.brokers.tally import BrokerTally
from opchain.model import Instrument, Quote


class QuoteUnavailable(Exception):
    """A quote call that could not be answered in time: the broker failed it (rate limits,
    server errors, garbled answers, stalls) as often as there was time to ask. The cycle
    that needed it is lost, not the collector; ``reason`` says why in a few words (a report
    counts lost cycles by it). ``attempts`` 0: no call went out, there was no time left for
    one (the cycle started late: it is missed, not lost to the broker)."""

    def __init__(self, message: str, reason: str = "unavailable", attempts: int = 1) -> None:
        super().__init__(message)
        self.reason, self.attempts = reason, attempts


class Broker(Protocol):
    """A source of instruments and quotes.

    ``quote`` takes Kite-style keys (``NFO:NIFTY25N0424000CE``, ``NSE:NIFTY 50``), at most
    ``max_quote_batch`` per call, and returns the quotes it has, keyed as asked: an unknown or
    silent instrument is simply absent. A call that fails for a while (and may succeed in a
    later cycle) raises :class:`QuoteUnavailable`.
    """

    name: str
    max_quote_batch: int
    quote_interval: float  # seconds between quote calls the broker's limits allow
    tally: BrokerTally | None  # its HTTP answers, counted at the transport (None: no HTTP)

    async def instruments(self) -> list[Instrument]: ...

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]: ...

    async def close(self) -> None: ...
