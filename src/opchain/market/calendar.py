"""NSE and BSE trading calendars from holiday tables: the built-in ones of ``holidays.py``, and
the years a user supplies in NSE's published format (``holiday_file.py``).

A day is a *trading day* when the exchange holds a normal-hours session on it: a weekday
that is not a holiday, or a special session such as a Budget weekend. A Muhurat session is
a session but not a trading day. Any question about a year without a table raises
:class:`YearNotCovered`: the calendar never assumes "open every weekday". Only
:func:`provisional_session` does, for a live broker whose quotes' exchange timestamps can
then say whether the day really traded; its sessions are marked ``provisional``.

The tables in use are :data:`BUILT_IN` unless the edge (the command line) installs others with
:func:`install`; every function also takes ``tables`` to ask about another set (the simulated
exchange of a test may know a year the recorder does not).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType

from opchain.market.holiday_file import SuppliedHolidays
from opchain.market.holidays import HOLIDAYS, LAST_CHECKED, SPECIAL_SESSIONS, SpecialSession
from opchain.market.ist import SESSION_CLOSE, SESSION_OPEN, at, to_ist

EXCHANGES = ("NSE", "BSE")
HOW_TO_SUPPLY = (
    "give NSE's published holiday list for {year} in OPCHAIN_HOLIDAYS_FILE (see `opchain calendar`)"
)

_ONE_DAY = timedelta(days=1)
_NORMAL_HOURS_KINDS = frozenset({"regular", "special"})


class CalendarUnavailable(ValueError):
    """The tables do not cover the year (or the session) asked about."""


class YearNotCovered(CalendarUnavailable):
    """No holiday table for ``year`` on ``exchange``."""

    def __init__(self, message: str, exchange: str, year: int) -> None:
        super().__init__(message)
        self.exchange, self.year = exchange, year


@dataclass(frozen=True, slots=True)
class Session:
    """One exchange session; ``open`` and ``close`` are IST-aware."""

    day: date
    open: datetime
    close: datetime
    # "regular", "special" (normal hours on a non-trading day), "muhurat", or "provisional"
    # (a weekday of a year without a holiday table, assumed to trade at regular hours)
    kind: str
    note: str  # "" for regular, else the occasion


@dataclass(frozen=True, slots=True)
class Tables:
    """Holidays by exchange and year, special sessions by exchange and day, and where each
    year's table came from (:data:`BUILT_IN_SOURCE` or the supplied file)."""

    holidays: Mapping[str, Mapping[int, Mapping[date, str]]]
    specials: Mapping[str, Mapping[date, SpecialSession]]
    sources: Mapping[str, Mapping[int, str]]


BUILT_IN_SOURCE = f"built in (exchange circulars, checked {LAST_CHECKED.isoformat()})"

BUILT_IN = Tables(
    holidays={
        exchange: {year: MappingProxyType(dict(sorted(rows))) for year, rows in years.items()}
        for exchange, years in HOLIDAYS.items()
    },
    specials={
        exchange: {special.day: special for special in specials}
        for exchange, specials in SPECIAL_SESSIONS.items()
    },
    sources={
        exchange: dict.fromkeys(years, BUILT_IN_SOURCE) for exchange, years in HOLIDAYS.items()
    },
)

_installed = BUILT_IN


def install(tables: Tables) -> None:
    """Use ``tables`` wherever no other tables are passed (the edge does this once)."""
    global _installed
    _installed = tables


def installed() -> Tables:
    return _installed


def with_supplied(supplied: SuppliedHolidays, base: Tables = BUILT_IN) -> Tables:
    """``base`` plus the years of a supplied list that ``base`` has no table for, for NSE and
    BSE alike (their lists have been identical). A year ``base`` holds is kept as it is: the
    built-in tables carry the special sessions and ad-hoc holidays the published list lacks."""
    holidays = {exchange: dict(years) for exchange, years in base.holidays.items()}
    sources = {exchange: dict(years) for exchange, years in base.sources.items()}
    for exchange in EXCHANGES:
        for year, days in supplied.years.items():
            if year not in holidays[exchange]:
                holidays[exchange][year] = MappingProxyType(dict(days))
                sources[exchange][year] = supplied.source
    return Tables(holidays=holidays, specials=base.specials, sources=sources)


def _pick(tables: Tables | None) -> Tables:
    return _installed if tables is None else tables


def _check_exchange(exchange: str) -> None:
    if exchange not in EXCHANGES:
        raise ValueError(f"unknown exchange {exchange!r}; known exchanges: {', '.join(EXCHANGES)}")


def _year_table(exchange: str, year: int, tables: Tables | None) -> Mapping[date, str]:
    """The holiday table of ``year``, or a one-line error naming what is covered."""
    _check_exchange(exchange)
    years = _pick(tables).holidays[exchange]
    if year not in years:
        known = ", ".join(str(covered) for covered in sorted(years))
        raise YearNotCovered(
            f"no {exchange} trading calendar for {year}: the holiday tables cover {known} only; "
            + HOW_TO_SUPPLY.format(year=year),
            exchange,
            year,
        )
    return years[year]


def _lookup(
    exchange: str, day: date, tables: Tables | None
) -> tuple[str | None, SpecialSession | None]:
    """The holiday name (if any) and the special session (if any) of ``day``."""
    if isinstance(day, datetime):  # a datetime never equals a table's date: refuse it
        raise TypeError(f"expected a date, got the datetime {day.isoformat()}")
    holiday = _year_table(exchange, day.year, tables).get(day)
    return holiday, _pick(tables).specials[exchange].get(day)


def covered_years(exchange: str, tables: Tables | None = None) -> tuple[int, ...]:
    """The years with a holiday table, ascending."""
    _check_exchange(exchange)
    return tuple(sorted(_pick(tables).holidays[exchange]))


def is_covered(exchange: str, year: int, tables: Tables | None = None) -> bool:
    return year in covered_years(exchange, tables)


def source(exchange: str, year: int, tables: Tables | None = None) -> str:
    """Where the table of ``year`` came from; raises for an uncovered year."""
    _year_table(exchange, year, tables)
    return _pick(tables).sources[exchange][year]


def holidays(exchange: str, year: int, tables: Tables | None = None) -> dict[date, str]:
    """Every holiday of ``year``, weekday and weekend, with its name, in date order."""
    return dict(_year_table(exchange, year, tables))


def special_sessions(
    exchange: str, year: int, tables: Tables | None = None
) -> list[SpecialSession]:
    """The special sessions (Budget weekends, Muhurat) of ``year``, in date order."""
    _year_table(exchange, year, tables)
    found = _pick(tables).specials[exchange].values()
    return sorted((s for s in found if s.day.year == year), key=lambda s: s.day)


def session(exchange: str, day: date, tables: Tables | None = None) -> Session | None:
    """The session held on ``day``, or None when the exchange is closed.

    Raises YearNotCovered for an uncovered year, and CalendarUnavailable for a special
    session whose timings have not been published (such as the Muhurat session of 2026-11-08).
    """
    holiday, special = _lookup(exchange, day, tables)
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


def provisional_session(exchange: str, day: date, tables: Tables | None = None) -> Session | None:
    """:func:`session` where the tables reach; in a year without a table, a weekday's regular
    hours marked ``provisional`` (whether it really trades is for the exchange's own timestamps
    to say), and no session at the weekend. For a live broker only: a simulator must not guess.
    """
    if is_covered(exchange, day.year, tables):
        return session(exchange, day, tables)
    if day.weekday() >= 5:
        return None
    note = f"provisional: no {exchange} holiday table for {day.year}"
    return Session(day, at(day, SESSION_OPEN), at(day, SESSION_CLOSE), "provisional", note)


def is_trading_day(exchange: str, day: date, tables: Tables | None = None) -> bool:
    """Whether ``day`` has a normal-hours session (regular or special; Muhurat is not)."""
    holiday, special = _lookup(exchange, day, tables)
    if special is not None:
        return special.kind in _NORMAL_HOURS_KINDS
    return holiday is None and day.weekday() < 5


def previous_trading_day(exchange: str, day: date, tables: Tables | None = None) -> date:
    """The last trading day strictly before ``day``."""
    candidate = day - _ONE_DAY
    while not is_trading_day(exchange, candidate, tables):
        candidate -= _ONE_DAY
    return candidate


def next_trading_day(exchange: str, day: date, tables: Tables | None = None) -> date:
    """The first trading day strictly after ``day``."""
    candidate = day + _ONE_DAY
    while not is_trading_day(exchange, candidate, tables):
        candidate += _ONE_DAY
    return candidate


def last_trading_day(exchange: str, on_or_before: date, tables: Tables | None = None) -> date:
    """``on_or_before`` itself if it is a trading day, else the trading day before it."""
    if is_trading_day(exchange, on_or_before, tables):
        return on_or_before
    return previous_trading_day(exchange, on_or_before, tables)


def upcoming_session(
    exchange: str, now: datetime, provisional: bool = False, tables: Tables | None = None
) -> Session:
    """The first normal-hours session that has not closed at ``now``: today's while it runs,
    else the next trading day's. With ``provisional``, a year without a table has weekday
    sessions (:func:`provisional_session`); without, such a year raises YearNotCovered."""
    now = to_ist(now)
    day = now.date()
    while True:
        if provisional and not is_covered(exchange, day.year, tables):
            held = provisional_session(exchange, day, tables)
        else:
            held = session(exchange, day, tables) if is_trading_day(exchange, day, tables) else None
        if held is not None and now < held.close:
            return held
        day += _ONE_DAY


def sessions_between(
    exchange: str, start: date, end: date, tables: Tables | None = None
) -> list[Session]:
    """Every session from ``start`` to ``end`` inclusive, Muhurat and special ones included.

    Empty when ``start`` is after ``end``; raises like :func:`session` for any day in range.
    """
    _check_exchange(exchange)
    sessions = []
    day = start
    while day <= end:
        held = session(exchange, day, tables)
        if held is not None:
            sessions.append(held)
        day += _ONE_DAY
    return sessions


def shift_expiry(exchange: str, nominal: date, tables: Tables | None = None) -> date:
    """The actual expiry day for a ``nominal`` one.

    The exchange rule: an expiry falling on a trading holiday moves to the previous trading
    day. A Muhurat day counts as a holiday here, since it has no normal-hours session.
    """
    return last_trading_day(exchange, nominal, tables)


def heads_up(exchange: str, today: date, tables: Tables | None = None, within: int = 45) -> str:
    """A warning when the tables do not cover ``today``'s year, or end within ``within`` days
    and the next year has no table yet; "" otherwise."""
    year = today.year
    if not is_covered(exchange, year, tables):
        return (
            f"no {exchange} holiday table for {year}: a live broker records weekdays at regular "
            "hours, provisionally, and takes a day whose quotes carry no timestamp of that day "
            "for closed; the simulator refuses the year; " + HOW_TO_SUPPLY.format(year=year)
        )
    left = (date(year, 12, 31) - today).days
    if left < within and not is_covered(exchange, year + 1, tables):
        return (
            f"the {exchange} holiday tables end on {year}-12-31, in {left} days; "
            + HOW_TO_SUPPLY.format(year=year + 1)
        )
    return ""
