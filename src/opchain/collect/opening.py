"""Whether the exchange is trading today, from its own timestamps rather than a guess.

In a year without a holiday table a live broker records every weekday provisionally; a weekday
holiday must then be recognised from the quotes themselves. The exchange stamps every quote
(``timestamp``, and ``last_trade_time`` for a traded contract); on a day it does not trade, the
newest stamps Kite serves are from the last day it did. So the index quotes are asked for from
the open: one stamped today means the market is open; if every stamp is from an earlier day
for ``grace`` after the open, the market is closed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from opchain.brokers.base import Broker
from opchain.market.clock import Clock
from opchain.market.ist import trading_date
from opchain.model import Quote

GRACE = timedelta(minutes=5)  # how long stale stamps may last after the open on an open day
STEP = timedelta(seconds=30)  # between two looks


@dataclass(frozen=True, slots=True)
class Opening:
    """What the exchange's timestamps said: ``open`` True (a stamp of the day), False (only
    earlier stamps, all through the grace), or None (no stamp at all: cannot tell)."""

    open: bool | None
    newest: datetime | None  # the newest exchange timestamp seen
    looks: int  # quote calls made


def newest_stamp(quotes: Sequence[Quote]) -> datetime | None:
    """The newest exchange timestamp (quote time or last trade time) among ``quotes``."""
    stamps = [s for q in quotes for s in (q.timestamp, q.last_trade_time) if s is not None]
    return max(stamps, default=None)


async def watch_opening(
    broker: Broker,
    clock: Clock,
    keys: Sequence[str],
    day: date,
    opens: datetime,
    grace: timedelta = GRACE,
    step: timedelta = STEP,
) -> Opening:
    """Look at the quotes of ``keys`` from ``opens`` (or now, if later) until their stamps
    say whether ``day`` trades, at most ``grace`` long."""
    await clock.sleep_until(opens)
    deadline = max(clock.now(), opens) + grace
    newest: datetime | None = None
    looks = 0
    while True:
        quotes = await broker.quote(list(keys))
        looks += 1
        stamp = newest_stamp(list(quotes.values()))
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
        if newest is not None and trading_date(newest) >= day:
            return Opening(True, newest, looks)
        if clock.now() >= deadline:
            return Opening(None if newest is None else False, newest, looks)
        await clock.sleep_until(min(clock.now() + step, deadline))
