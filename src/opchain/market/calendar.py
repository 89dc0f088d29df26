"""NSE and BSE trading calendars from the published holiday tables in ``holidays.py``.

A day is a *trading day* when the exchange holds a normal-hours session on it: a weekday
that is not a holiday, or a special session such as a Budget weekend. A Muhurat session is
a session but not a trading day. Any question about a year without a published table
raises :class:`CalendarUnavailable`: the calendar never assumes "open every weekday".
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType

from opchain.market.holidays import HOLIDAYS, SPECIAL_SESSIONS, SpecialSession
from opchain.market.ist import SESSION_CLOSE, SESSION_OPEN, at

EXCHANGES = ("NSE", "BSE")

_ONE_DAY = timedelta(days=1)
_NORMAL_HOURS_KINDS = frozenset({"regular", "special"})


class CalendarUnavailable(ValueError):
    """The tables do not cover the year (or the session) asked about."""


@dataclass(frozen=True, slots=True)
class Session:
    """One exchange session; ``open`` and ``close`` are IST-aware."""

    day: date
    open: datetime
    close: datetime
    kind: str  # "regular", "special" (normal hours on a non-trading day) or "muhurat"
    note: str  # "" for regular, else the occasion


_HOLIDAY_TABLES: dict[str, dict[int, Mapping[date, str]]] = {
    exchange: {year: MappingProxyType(dict(sorted(rows))) for year, rows in years.items()}
    for exchange, years in HOLIDAYS.items()
}
_SPECIALS: dict[str, dict[date, SpecialSession]] = {
    exchange: {special.day: special for special in specials}
    for exchange, specials in SPECIAL_SESSIONS.items()
}


def _check_exchange(exchange: str) -> None:
    if exchange not in EXCHANGES:
        raise ValueError(f"unknown exchange {exchange!r}; known exchanges: {', '.join(EXCHANGES)}")


def _year_table(exchange: str, year: int) -> Mapping[date, str]:
    """The holiday table of ``year``, or a one-line error naming what is covered."""
    _check_exchange(exchange)
    tables = _HOLIDAY_TABLES[exchange]
    if year not in tables:
        published = ", ".join(str(covered) for covered in sorted(tables))
        raise CalendarUnavailable(
            f"no {exchange} trading calendar for {year}: "
            f"holidays are published for {published} only"
        )
    return tables[year]


def _lookup(exchange: str, day: date) -> tuple[str | None, SpecialSession | None]:
    """The holiday name (if any) and the special session (if any) of ``day``."""
    if isinstance(day, datetime):  # a datetime never equals a table's date: refuse it
        raise TypeError(f"expected a date, got the datetime {day.isoformat()}")
    return _year_table(exchange, day.year).get(day), _SPECIALS[exchange].get(day)


def covered_years(exchange: str) -> tuple[int, ...]:
    """The years with a published holiday table, ascending."""
    _check_exchange(exchange)
    return tuple(sorted(_HOLIDAY_TABLES[exchange]))


def holidays(exchange: str, year: int) -> dict[date, str]:
    """Every holiday of ``year``, weekday and weekend, with its name, in date order."""
    return dict(_year_table(exchange, year))


def session(exchange: str, day: date) -> Session | None:
    """The session held on ``day``, or None when the exchange is closed.

    Raises CalendarUnavailable for an uncovered year, and for a special session whose
    timings have not been published (such as the Muhurat session of 2026-11-08).
    """
    holiday, special = _lookup(exchange, day)
    if special is not None:
        if special.hours is None:
            raise CalendarUnavailable(
                f"the {exchange} {special.kind.capitalize()} timings for {day.isoformat()} "
                f"are not published ({special.note})"
            )
        opens, closes = special.hours
        return Session(day, at(day, opens), at(day, closes), special.kind, special.note)
    if holiday is None and day.weekday() < 5:
        return Session(day, at(day, SESSION_OPEN), at(day, SESSION_CLOSE), "regular", "")
    return None


def is_trading_day(exchange: str, day: date) -> bool:
    """Whether ``day`` has a normal-hours session (regular or special; Muhurat is not)."""
    holiday, special = _lookup(exchange, day)
    if special is not None:
        return special.kind in _NORMAL_HOURS_KINDS
    return holiday is None and day.weekday() < 5


def previous_trading_day(exchange: str, day: date) -> date:
    """The last trading day strictly before ``day``."""
    candidate = day - _ONE_DAY
    while not is_trading_day(exchange, candidate):
        candidate -= _ONE_DAY
    return candidate


def next_trading_day(exchange: str, day: date) -> date:
    """The first trading day strictly after ``day``."""
    candidate = day + _ONE_DAY
    while not is_trading_day(exchange, candidate):
        candidate += _ONE_DAY
    return candidate


def last_trading_day(exchange: str, on_or_before: date) -> date:
    """``on_or_before`` itself if it is a trading day, else the trading day before it."""
    if is_trading_day(exchange, on_or_before):
        return on_or_before
    return previous_trading_day(exchange, on_or_before)


def sessions_between(exchange: str, start: date, end: date) -> list[Session]:
    """Every session from ``start`` to ``end`` inclusive, Muhurat and special ones included.

    Empty when ``start`` is after ``end``; raises like :func:`session` for any day in range.
    """
    _check_exchange(exchange)
    sessions = []
    day = start
    while day <= end:
        held = session(exchange, day)
        if held is not None:
            sessions.append(held)
        day += _ONE_DAY
    return sessions


def shift_expiry(exchange: str, nominal: date) -> date:
    """The actual expiry day for a ``nominal`` one.

    The exchange rule: an expiry falling on a trading holiday moves to the previous trading
    day. A Muhurat day counts as a holiday here, since it has no normal-hours session.
    """
    return last_trading_day(exchange, nominal)
