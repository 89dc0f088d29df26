"""``opchain calendar``: the trading calendar opchain works with, and where each year came from."""

from datetime import date, datetime, time
from typing import Annotated

import typer

from opchain.market import calendar
from opchain.market.holiday_file import SuppliedHolidays
from opchain.market.indices import INDICES
from opchain.market.ist import IST, at

from .console import fail, load_settings, out

FEW = 10  # weekday holidays; NSE's lists of 2025 and 2026 had 14 and 15
WHERE = (
    "NSE publishes the list on its holidays page (a CSV download) and at "
    "https://www.nseindia.com/api/holiday-master?type=trading (JSON); docs/calendar.md says "
    "what is read"
)


def show_calendar(
    year: Annotated[
        int | None, typer.Option(help="The year whose holidays to list (default: this year).")
    ] = None,
    on: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="As of this day (default: today, IST)."),
    ] = None,
    exchange: Annotated[str, typer.Option(help="NSE or BSE.")] = "NSE",
    count: Annotated[
        int, typer.Option(min=1, max=60, help="How many sessions and expiries to show.")
    ] = 5,
) -> None:
    """Show the trading calendar: the years covered and where each came from, a year's holidays
    and special sessions, and the next sessions and expiries.

    OPCHAIN_HOLIDAYS_FILE adds a year opchain has no table for, from NSE's published list (its
    CSV download or its JSON); a file that cannot be used is one line naming the file and line.
    """
    from opchain.settings import read_holidays_file

    settings = load_settings()
    exchange = exchange.upper()
    if exchange not in calendar.EXCHANGES:
        fail(f"unknown exchange {exchange!r}; known: {', '.join(calendar.EXCHANGES)}")
    today = on.date() if on else datetime.now(IST).date()
    supplied = read_holidays_file(settings.holidays_file) if settings.holidays_file else None
    lines = [f"{exchange} trading calendar as of {today:%a %Y-%m-%d}", "", "Years covered:"]
    lines += _years(exchange, supplied)
    if notice := calendar.heads_up(exchange, today):
        lines += ["", f"warning: {notice}. {WHERE}."]
    lines += ["", *_year(exchange, year or today.year)]
    lines += ["", "Next sessions:", *_sessions(exchange, today, count)]
    lines += ["", "Next expiries (by the exchange's rules; a live run follows Kite's dump):"]
    lines += _expiries(today, count)
    out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def _years(exchange: str, supplied: SuppliedHolidays | None) -> list[str]:
    lines = []
    for year in calendar.covered_years(exchange):
        days = calendar.holidays(exchange, year)
        weekend = sum(1 for d in days if d.weekday() >= 5)
        specials = len(calendar.special_sessions(exchange, year))
        weekday = len(days) - weekend
        where = calendar.source(exchange, year)
        line = f"  {year}  {where}: {weekday} weekday holidays, {weekend} at weekends"
        line += f", {specials} special sessions" if specials else ""
        if where != calendar.BUILT_IN_SOURCE and weekday < FEW:
            line += f" (only {weekday} weekday holidays: is this the whole year's list?)"
        lines.append(line)
    if supplied is not None:
        for year, days in supplied.years.items():
            if calendar.source(exchange, year) != supplied.source:
                lines.append(f"  {year}  {_kept(exchange, year, days, supplied.source)}")
    return lines


def _kept(exchange: str, year: int, days: dict[date, str], source: str) -> str:
    """Why a year of the file is not used, and how the two lists differ."""
    built = calendar.holidays(exchange, year)
    extra, lacking = sorted(set(days) - set(built)), sorted(set(built) - set(days))
    parts = [f"the file adds {_few(extra)}"] if extra else []
    parts += [f"lacks {_few(lacking)}"] if lacking else []
    how = "; ".join(parts) or "the two agree"
    return f"in {source} too, not used: the built-in table is kept ({how})"


def _few(days: list[date], shown: int = 4) -> str:
    more = f" and {len(days) - shown} more" if len(days) > shown else ""
    return ", ".join(map(str, days[:shown])) + more


def _year(exchange: str, year: int) -> list[str]:
    if not calendar.is_covered(exchange, year):
        return [
            f"No holiday table for {year}: the simulator refuses its days; a live broker records "
            "its weekdays at regular hours, provisionally, and a weekday whose quotes carry no "
            "exchange timestamp of that day is reported closed. To add the table, set "
            f"OPCHAIN_HOLIDAYS_FILE to NSE's list for {year}: {WHERE}."
        ]
    lines = [f"Holidays of {year}:"]
    for day, name in calendar.holidays(exchange, year).items():
        lines.append(f"  {day} {day:%a}  {name}")
    specials = calendar.special_sessions(exchange, year)
    if specials:
        lines.append(f"Special sessions of {year}:")
    for special in specials:
        hours = (
            f"{special.hours[0]:%H:%M}-{special.hours[1]:%H:%M}"
            if special.hours
            else "timings not published"
        )
        lines.append(f"  {special.day} {special.day:%a}  {special.kind}, {hours}  {special.note}")
    return lines


def _sessions(exchange: str, today: date, count: int) -> list[str]:
    lines, moment = [], at(today, time(0))
    for _ in range(count):
        held = calendar.upcoming_session(exchange, moment, provisional=True)
        note = f"  ({held.note})" if held.note else ""
        lines.append(f"  {held.day} {held.day:%a}  {held.open:%H:%M}-{held.close:%H:%M}{note}")
        moment = held.close
    return lines


def _expiries(today: date, count: int) -> list[str]:
    from opchain.brokers.sim.listing import listed_expiries

    lines = []
    for spec in INDICES.values():
        shown = []
        for e in listed_expiries(spec, today)[:count]:
            kind = "monthly" if e.monthly else "weekly"
            shown.append(f"{e.day} {e.day:%a} {kind}{' (provisional)' if e.provisional else ''}")
        lines.append(f"  {spec.key:<10} {spec.exchange}  " + ", ".join(shown))
    return lines
