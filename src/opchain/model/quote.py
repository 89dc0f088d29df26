from datetime import datetime
from typing import NamedTuple


class DepthLevel(NamedTuple):
    price: float
    quantity: int
    orders: int


class Quote(NamedTuple):
    """A full market quote, the fields of Kite's ``/quote`` response.

    Hot records (quotes, legs, split rows) are NamedTuples: immutable like frozen dataclasses,
    but several times cheaper to build, which matters at a million legs a day.

    ``timestamp`` is the exchange time of the quote and ``last_trade_time`` the time of the last
    trade; both are timezone-aware (IST) or None when the broker sent none (index quotes).
    ``close`` is the previous session's close, as in Kite's ``ohlc.close``.
    """

    instrument_token: int
    timestamp: datetime | None
    last_trade_time: datetime | None
    last_price: float
    last_quantity: int
    average_price: float
    volume: int
    buy_quantity: int
    sell_quantity: int
    oi: int
    oi_day_high: int
    oi_day_low: int
    open: float
    high: float
    low: float
    close: float
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()

    @property
    def bid(self) -> float | None:
        """Best bid price, or None when the buy side of the book is empty."""
        if self.bids and self.bids[0].quantity > 0:
            return self.bids[0].price
        return None

    @property
    def ask(self) -> float | None:
        """Best ask price, or None when the sell side of the book is empty."""
        if self.asks and self.asks[0].quantity > 0:
            return self.asks[0].price
        return None

    @property
    def net_change(self) -> float:
        """Change from the previous close (Kite's own ``net_change`` is unreliable for indices)."""
        return self.last_price - self.close if self.close else 0.0
