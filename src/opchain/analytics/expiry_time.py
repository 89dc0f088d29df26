"""Time to expiry in years: calendar seconds to the 15:30 IST close of the expiry day / 365 days.

This is the Black-76 convention the pipeline uses (analytics.md §3.4): index options are
cash-settled at the close, so 15:30 IST on the expiry date is t = 0.
"""

from datetime import UTC, date, datetime

from opchain.market.ist import SESSION_CLOSE, at, to_ist

SECONDS_PER_YEAR = 365 * 24 * 3600


def years_to_expiry(now: datetime, expiry: date) -> float:
    """Calendar years from ``now`` (timezone-aware) to 15:30 IST on ``expiry``; 0.0 once past."""
    start = to_ist(now).astimezone(UTC)  # to_ist raises ValueError for a naive datetime
    seconds = (at(expiry, SESSION_CLOSE).astimezone(UTC) - start).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR
