from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of a Kite instruments dump (columns in the dump's order)."""

    instrument_token: int
    exchange_token: str
    tradingsymbol: str
    name: str
    last_price: float
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str  # CE, PE, FUT, EQ (indices are EQ in segment INDICES)
    segment: str  # NFO-OPT, BFO-OPT, INDICES, NSE, ...
    exchange: str  # NFO, BFO, NSE, BSE

    @property
    def key(self) -> str:
        """The quote key Kite expects: ``EXCHANGE:TRADINGSYMBOL``."""
        return f"{self.exchange}:{self.tradingsymbol}"
