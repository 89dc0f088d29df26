"""India Standard Time: every minute bucket and every file date is IST, never host-local."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)


def at(day: date, clock: time) -> datetime:
    """The IST instant of ``clock`` on ``day``."""
    return datetime.combine(day, clock, tzinfo=IST)


def to_ist(moment: datetime) -> datetime:
    """Convert an aware datetime to IST; a naive one is a programming error."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: opchain needs timezone-aware times")
    return moment.astimezone(IST)


def trading_date(moment: datetime) -> date:
    """The IST calendar date of an instant: the date a daily file is named after."""
    return to_ist(moment).date()
