"""Intraday premium profiles: per session minute, how many days, their sum, mean, low and high.

A weekday master (SPEC §3.4, OP's ``adv_io`` format) holds the days of one weekday, a DTE
profile the days with one number of days to expiry; both are a :data:`Profile`. What makes
them safe to update live is the :data:`Ledger`: for every day it says how far that day has been
added (``CLOSED`` when whole, else the last minute added), so a minute is never added twice,
whatever order days and minutes arrive in and however often a run restarts.

Counts, sums in paise, lows and highs are all order-free, so a profile built minute by minute
during the sessions equals one rebuilt from the split files at once, byte for byte.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import NamedTuple

from opchain.profiles.minutes import SESSION_MINUTES

HEADER = "time_bucket,n_tot,sum_tot,avg_tot,min_tot,max_tot,last_updated"
CLOSED = "closed"  # ledger mark of a day added whole


class Cell(NamedTuple):
    """One minute of a profile. Money in paise; ``updated`` the newest tick added."""

    n: int
    total: int
    low: int
    high: int
    updated: datetime


Profile = dict[str, Cell]  # "HH:MM" -> cell
Ledger = dict[date, str]  # day -> CLOSED or the last minute added ("HH:MM")


def applied_through(ledger: Mapping[date, str], day: date) -> str | None:
    """The last minute of ``day`` already in the profile: None for none, "15:29" when closed."""
    mark = ledger.get(day)
    return SESSION_MINUTES[-1] if mark == CLOSED else mark


def add_minutes(
    profile: Profile,
    ledger: Ledger,
    day: date,
    minutes: Mapping[str, int],
    updated: Mapping[str, datetime],
    close: bool = False,
) -> int:
    """Add ``day``'s values for the minutes after those the ledger has; ``close`` marks the
    day whole (nothing of it will be added again). Returns how many minutes were added.

    ``minutes`` maps "HH:MM" to the premium in paise, ``updated`` to the tick's time. A caller
    streaming the day passes only finished minutes (a later minute has begun); the ledger
    then records the last of them, so a restart goes on from there.
    """
    if ledger.get(day) == CLOSED:
        return 0
    after = ledger.get(day)
    added = 0
    for minute in sorted(minutes):
        if after is not None and minute <= after:
            continue
        value, stamp = minutes[minute], updated[minute]
        cell = profile.get(minute)
        profile[minute] = (
            Cell(1, value, value, value, stamp)
            if cell is None
            else Cell(
                cell.n + 1,
                cell.total + value,
                min(cell.low, value),
                max(cell.high, value),
                max(cell.updated, stamp),
            )
        )
        ledger[day] = minute
        added += 1
    if close:
        ledger[day] = CLOSED
    return added


def merge_profiles(into: Profile, other: Mapping[str, Cell]) -> None:
    """Pool ``other``'s days into ``into`` (the two must hold different days)."""
    for minute, cell in other.items():
        mine = into.get(minute)
        into[minute] = (
            cell
            if mine is None
            else Cell(
                mine.n + cell.n,
                mine.total + cell.total,
                min(mine.low, cell.low),
                max(mine.high, cell.high),
                max(mine.updated, cell.updated),
            )
        )


Formatted = dict[str, tuple[Cell, str]]  # minute -> the cell last formatted, and its line


def format_profile(profile: Mapping[str, Cell], formatted: Formatted | None = None) -> str:
    """The profile as OP's master CSV: rupees with their paise exact, the mean to 6 places,
    ``last_updated`` in UTC (``...Z``), minutes in session order.

    ``formatted`` keeps each minute's line between calls for one profile: a live update
    changes one minute of 375, and only that line is formatted again."""
    lines = [HEADER]
    for minute in sorted(profile):
        c = profile[minute]
        known = formatted.get(minute) if formatted is not None else None
        if known is not None and known[0] == c:
            lines.append(known[1])
            continue
        stamp = c.updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = (
            f"{minute},{c.n},{_rupees(c.total)},{c.total / c.n / 100:.6f},"
            f"{_rupees(c.low)},{_rupees(c.high)},{stamp}"
        )
        if formatted is not None:
            formatted[minute] = (c, line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def parse_profile(text: str, where: str = "profile") -> Profile:
    """Read :func:`format_profile`'s output back (``where`` names the file in errors)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"{where}: line 1: expected the header {HEADER!r}")
    profile: Profile = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            minute, n, total, _, low, high, stamp = line.split(",")
            profile[minute] = Cell(
                int(n), _paise(total), _paise(low), _paise(high),
                datetime.fromisoformat(stamp.replace("Z", "+00:00")),
            )  # fmt: skip
        except ValueError as err:
            raise ValueError(f"{where}: line {number}: {err}") from None
    return profile


def format_ledger(ledger: Mapping[date, str]) -> str:
    """One line per day, oldest first: ``YYYY-MM-DD`` for a whole day (OP's ledger format),
    ``YYYY-MM-DD HH:MM`` for a day added up to that minute."""
    return "".join(
        f"{day.isoformat()}\n" if mark == CLOSED else f"{day.isoformat()} {mark}\n"
        for day, mark in sorted(ledger.items())
    )


def parse_ledger(text: str, where: str = "ledger") -> Ledger:
    ledger: Ledger = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (number == 1 and line.startswith("#")):  # blank, the hash
            continue
        day, _, mark = line.strip().partition(" ")
        try:
            ledger[date.fromisoformat(day)] = mark or CLOSED
        except ValueError:
            raise ValueError(f"{where}: line {number}: not a date: {day!r}") from None
        if mark and mark not in _MINUTES:  # any other mark would hide minutes never added
            raise ValueError(f"{where}: line {number}: not a session minute HH:MM: {mark!r}")
    return ledger


_MINUTES = frozenset(SESSION_MINUTES)


def _rupees(paise: int) -> str:
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(paise), 100)
    return f"{sign}{whole}.{part:02d}"


def _paise(text: str) -> int:
    whole, _, part = text.strip().lstrip("-").partition(".")
    value = int(whole) * 100 + int((part + "00")[:2] or 0)
    if len(part) > 2 and part[2:].strip("0"):
        value = round(float(text.strip().lstrip("-")) * 100)
    return -value if text.strip().startswith("-") else value
