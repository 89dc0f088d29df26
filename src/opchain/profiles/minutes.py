"""A day's premium series, minute by minute: the last tick of each IST minute of the session.

Premiums are kept in integer paise. Every listed price is a whole number of paise, so sums of
them are exact, and adding days in any order gives the same totals to the last paisa (a float
sum would depend on the order in the last bits).
"""

from collections.abc import Iterable
from datetime import datetime, time
from typing import TypeVar

from opchain.market.ist import to_ist

T = TypeVar("T")

OPEN, CLOSE = time(9, 15), time(15, 30)
# The session's minutes, "09:15" .. "15:29": the rows of a master.
SESSION_MINUTES = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(9 * 60 + 15, 15 * 60 + 30))


def minute_of(ts: datetime) -> str:
    """The IST minute a timestamp falls in, as ``HH:MM``."""
    ist = to_ist(ts)
    return f"{ist.hour:02d}:{ist.minute:02d}"


def paise(rupees: float) -> int:
    """Rupees to whole paise (prices are quoted in multiples of 5 paise)."""
    return round(rupees * 100)


def last_per_minute(rows: Iterable[tuple[datetime, T | None]]) -> dict[str, T]:
    """The premium of the last row with a premium in each session minute, rows in time order.

    A minute whose every row lacks a premium (a leg missing) is absent, not zero. Rows outside
    09:15-15:29 IST are ignored (OP kept some; they are not part of the session).
    """
    minutes: dict[str, T] = {}
    for ts, value in rows:
        if value is None:
            continue
        ist = to_ist(ts)
        if OPEN <= ist.time() < CLOSE:
            minutes[f"{ist.hour:02d}:{ist.minute:02d}"] = value
    return minutes
