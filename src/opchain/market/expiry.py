"""Expiry buckets, derived from the instruments dump (SPEC §3.1, research/market.md §1.6).

The dump decides: ``this_week`` and ``next_week`` are the nearest and second-nearest live
expiries of an index that has weeklies; ``this_month`` and ``next_month`` the first and second
live monthly expiries, a monthly being the contract in the monthly symbol format (or, when the
symbol says nothing, the last listed expiry of its month). A bucket an index does not have is
absent. After 15:30 IST on its expiry day a contract is no longer live.

The exchanges' weekday rules are kept only to cross-check the dump (:func:`check_expiries`) and
for the simulator, which must list what the exchanges would list (:func:`rule_expiries`). An
expiry in a year without a holiday table cannot be shifted for its holidays: it is kept on its
nominal day and marked provisional, so that the buckets run on through the year's end.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from opchain.market import calendar
from opchain.market.instruments import is_monthly_symbol
from opchain.market.ist import SESSION_CLOSE, to_ist
from opchain.model import Instrument

BUCKETS = ("this_week", "next_week", "this_month", "next_month")

# Index-option expiry weekday by rule (an index's ``IndexSpec.expiry_rule``: its exchange's,
# or its own where it kept another weekday), by the expiry date it applies from (Mon=0).
# NSE moved to Tuesday and BSE to Thursday for contracts expiring on or after 2025-09-01;
# on 2025-01-01 NSE's FINNIFTY (last Tuesday) and MIDCPNIFTY (last Monday) monthlies moved to
# NSE's Thursday, and BSE's BANKEX (Monday) to BSE's Tuesday (docs/calendar.md, "Indices").
EXPIRY_WEEKDAYS: dict[str, tuple[tuple[date, int], ...]] = {
    "NSE": ((date(2024, 1, 1), 3), (date(2025, 9, 1), 1)),
    "BSE": ((date(2024, 1, 1), 4), (date(2025, 1, 1), 1), (date(2025, 9, 1), 3)),
    "FINNIFTY": ((date(2024, 1, 1), 1), (date(2025, 1, 1), 3), (date(2025, 9, 1), 1)),
    "MIDCPNIFTY": ((date(2024, 1, 1), 0), (date(2025, 1, 1), 3), (date(2025, 9, 1), 1)),
    "BANKEX": ((date(2024, 1, 1), 0), (date(2025, 1, 1), 1), (date(2025, 9, 1), 3)),
}


def live_expiries(options: Iterable[Instrument], now: datetime) -> list[date]:
    """Distinct expiries not yet past 15:30 IST on their day, nearest first."""
    now_ist = to_ist(now)
    today = now_ist.date()
    after_close = now_ist.time() >= SESSION_CLOSE
    return sorted(
        {
            o.expiry
            for o in options
            if o.expiry is not None
            and (o.expiry > today or (o.expiry == today and not after_close))
        }
    )


def monthly_expiries(options: Iterable[Instrument]) -> set[date]:
    """Expiries whose contracts carry the monthly symbol; by date where symbols don't say."""
    by_symbol: dict[date, bool | None] = {}
    for o in options:
        if o.expiry is None:
            continue
        kind = is_monthly_symbol(o.tradingsymbol, o.name)
        if by_symbol.get(o.expiry) is None:
            by_symbol[o.expiry] = kind
    monthly = {e for e, kind in by_symbol.items() if kind}
    unknown = [e for e, kind in by_symbol.items() if kind is None]
    if unknown:
        last_of_month: dict[tuple[int, int], date] = {}
        for e in by_symbol:
            key = (e.year, e.month)
            last_of_month[key] = max(e, last_of_month.get(key, e))
        monthly |= {e for e in unknown if last_of_month[(e.year, e.month)] == e}
    return monthly


def expiry_buckets(options: Iterable[Instrument], now: datetime) -> dict[str, date]:
    """Bucket -> expiry for one underlying's option rows (filter by ``name`` and segment first)."""
    rows = list(options)
    live = live_expiries(rows, now)
    monthly = sorted(e for e in monthly_expiries(rows) if e in set(live))
    has_weeklies = any(e not in monthly for e in live)
    buckets: dict[str, date] = {}
    if has_weeklies:
        for bucket, expiry in zip(("this_week", "next_week"), live, strict=False):
            buckets[bucket] = expiry
    for bucket, expiry in zip(("this_month", "next_month"), monthly, strict=False):
        buckets[bucket] = expiry
    return {b: buckets[b] for b in BUCKETS if b in buckets}


def index_options(dump: Iterable[Instrument], name: str, segment: str) -> list[Instrument]:
    """The CE/PE rows of one underlying, matched on the ``name`` column (never a substring of
    the tradingsymbol: "NIFTY" is inside "BANKNIFTY")."""
    return [
        i
        for i in dump
        if i.name == name and i.segment == segment and i.instrument_type in ("CE", "PE")
    ]


def strike_grid(options: Iterable[Instrument], expiry: date) -> list[float]:
    """The sorted distinct strikes listed for one expiry."""
    return sorted({o.strike for o in options if o.expiry == expiry})


def expiry_weekday(rule: str, expiry: date) -> int:
    """The weekday options of ``rule`` (an exchange, or an index with a weekday of its own)
    expired on at ``expiry`` (by the rules table)."""
    weekday = None
    for since, day in EXPIRY_WEEKDAYS[rule]:
        if expiry >= since:
            weekday = day
    if weekday is None:
        raise ValueError(f"no {rule} expiry weekday rule for {expiry}")
    return weekday


def nominal_weekly_expiries(rule: str, start: date, count: int) -> list[date]:
    """The next ``count`` nominal expiry weekdays on or after ``start`` (before holiday shifts)."""
    found: list[date] = []
    day = start
    while len(found) < count:
        if day.weekday() == expiry_weekday(rule, day):
            found.append(day)
        day += timedelta(days=1)
    return found


def monthly_nominal(rule: str, year: int, month: int) -> date:
    """The last expiry weekday of a month, before any holiday shift."""
    first_next = date(year + month // 12, month % 12 + 1, 1)
    day = first_next - timedelta(days=1)
    while day.weekday() != expiry_weekday(rule, day):
        day -= timedelta(days=1)
    return day


@dataclass(frozen=True, slots=True)
class RuleExpiry:
    """An expiry by the exchange's rules; ``provisional`` when its year has no holiday table
    (the nominal day, which a holiday may yet move)."""

    day: date
    monthly: bool
    provisional: bool = False


def actual_expiry(
    exchange: str, nominal: date, tables: calendar.Tables | None = None
) -> tuple[date, bool]:
    """The holiday-shifted expiry of a ``nominal`` one, and whether it is provisional: the
    nominal day itself when the tables do not reach its year."""
    try:
        return calendar.shift_expiry(exchange, nominal, tables), False
    except calendar.YearNotCovered:
        return nominal, True


def rule_expiries(
    exchange: str,
    day: date,
    weeklies: int,
    monthlies: int,
    tables: calendar.Tables | None = None,
    rule: str | None = None,
) -> list[RuleExpiry]:
    """The expiries an exchange lists on ``day`` by its rules, nearest first: ``monthlies``
    monthly ones (the last expiry weekday of each month) and ``weeklies`` weekly ones that are
    not also monthly, each moved off the exchange's holidays (or provisional, beyond the
    tables). ``rule``: the weekday rule (default: the exchange's)."""
    rule = rule or exchange
    found: list[RuleExpiry] = []
    year, month = day.year, day.month
    while len(found) < monthlies:
        nominal = monthly_nominal(rule, year, month)
        expiry, provisional = actual_expiry(exchange, nominal, tables)
        if expiry >= day:
            found.append(RuleExpiry(expiry, True, provisional))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    monthly_days = {e.day for e in found}
    weekly: list[RuleExpiry] = []
    for nominal in nominal_weekly_expiries(rule, day, 10):  # enough past the monthlies
        expiry, provisional = actual_expiry(exchange, nominal, tables)
        if expiry >= day and expiry not in monthly_days and len(weekly) < weeklies:
            weekly.append(RuleExpiry(expiry, False, provisional))
    return sorted(found + weekly, key=lambda e: e.day)


def check_expiries(
    exchange: str,
    expiries: Iterable[date],
    tables: calendar.Tables | None = None,
    rule: str | None = None,
) -> list[str]:
    """Warnings for listed expiries the weekday rule does not explain (the dump still decides).

    An expiry is explained when it is on the rule's weekday (``rule``, default the exchange's)
    or is the holiday shift of the next such weekday. Years without a calendar are reported,
    not guessed.
    """
    rule = rule or exchange
    warnings = []
    for expiry in sorted(set(expiries)):
        weekday = expiry_weekday(rule, expiry)
        nominal = expiry + timedelta(days=(weekday - expiry.weekday()) % 7)
        try:
            expected = calendar.shift_expiry(exchange, nominal, tables)
        except calendar.YearNotCovered as err:
            warnings.append(
                f"{expiry}: provisional: cannot check it for holiday shifts without the "
                f"{err.exchange} holidays of {err.year}"
            )
            continue
        except calendar.CalendarUnavailable as err:
            warnings.append(f"{expiry}: cannot check: {err}")
            continue
        if expected != expiry:
            warnings.append(
                f"{expiry}: not an {exchange} expiry by the rules (expected {expected}); "
                "the instruments dump is followed"
            )
    return warnings
