"""The one interface every broker adapter implements (SPEC §3.2)."""

from collections.abc import Sequence
from typing import Protocol

from opchain.model import Instrument, Quote


class Broker(Protocol):
    """A source of instruments and quotes.

    ``quote`` takes Kite-style keys (``NFO:NIFTY25N0424000CE``, ``NSE:NIFTY 50``), at most
    ``max_quote_batch`` per call, and returns the quotes it has, keyed as asked: an unknown or
    silent instrument is simply absent.
    """

    name: str
    max_quote_batch: int

    async def instruments(self) -> list[Instrument]: ...

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]: ...

    async def close(self) -> None: ...
