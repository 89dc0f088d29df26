"""Quote validation: every bad quote gets one reason, and a bad quote never costs a good one.

The first failing check names the reason; a leg's other side and its neighbours are untouched.
Reasons after which the price is unusable are in :data:`opchain.model.chain.UNUSABLE_FLAGS`;
the others (``crossed_book``, ``missing_side``, ``stale``) keep the price and warn.
"""

import math
from datetime import datetime

from opchain.model import Quote

STALE_AFTER_SECONDS = 120.0


def validate(
    quote: Quote | None, received_at: datetime, stale_after: float = STALE_AFTER_SECONDS
) -> str | None:
    """None for a good quote, else the reason it is not."""
    if quote is None:
        return "missing"
    price = quote.last_price
    if not math.isfinite(price):
        return "nan_price"
    if price < 0:
        return "negative_price"
    if price == 0:
        return "no_trade"
    bids, asks = quote.bids, quote.asks  # Quote.bid and .ask, spelled out: a million legs a day
    if not (bids and bids[0].quantity > 0 and asks and asks[0].quantity > 0):
        return "missing_side"
    if bids[0].price > asks[0].price:
        return "crossed_book"
    if (
        quote.timestamp is not None
        and (received_at - quote.timestamp).total_seconds() > stale_after
    ):
        return "stale"
    return None


def validate_index(quote: Quote | None) -> str | None:
    """Index quotes have no book and no trades: only the level itself can be wrong."""
    if quote is None:
        return "missing"
    if not math.isfinite(quote.last_price) or quote.last_price <= 0:
        return "bad_level"
    return None
