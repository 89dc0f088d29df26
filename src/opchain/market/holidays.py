"""Exchange holiday and special-session tables: data, not code branches.

Source: the NSE and BSE annual trading-holiday circulars for the equity and equity-derivatives
segments, plus the ad-hoc holiday of 2026-01-15 (declared 2026-01-12) and the published
Budget and Muhurat sessions, as collected in the market research notes (market.md §2.2–2.3).
Last checked: 2026-11-21.

Add a year only from an official circular; a year missing here makes the calendar refuse
to answer rather than guess. NSE and BSE published identical lists for 2025 and 2026, so
their tables share the same (immutable) year lists; give an exchange its own list the day
the two differ.
"""

from dataclasses import dataclass
from datetime import date, time

LAST_CHECKED = date(2026, 11, 21)

Holidays = tuple[tuple[date, str], ...]

# Weekday holidays only: 14.
_HOLIDAYS_2025: Holidays = (
    (date(2025, 2, 26), "Mahashivratri"),
    (date(2025, 3, 14), "Holi"),
    (date(2025, 3, 31), "Id-Ul-Fitr (Ramadan Eid)"),
    (date(2025, 4, 10), "Shri Mahavir Jayanti"),
    (date(2025, 4, 14), "Dr. Baba Saheb Ambedkar Jayanti"),
    (date(2025, 4, 18), "Good Friday"),
    (date(2025, 5, 1), "Maharashtra Day"),
    (date(2025, 8, 15), "Independence Day"),
    (date(2025, 8, 27), "Ganesh Chaturthi"),
    (date(2025, 10, 2), "Mahatma Gandhi Jayanti / Dussehra"),
    (date(2025, 10, 21), "Diwali Laxmi Pujan (Muhurat trading)"),
    (date(2025, 10, 22), "Diwali Balipratipada"),
    (date(2025, 11, 5), "Prakash Gurpurb Sri Guru Nanak Dev Ji"),
    (date(2025, 12, 25), "Christmas"),
)

# 15 weekday holidays from the annual circular + 1 ad hoc = 16, then 4 on weekends.
_HOLIDAYS_2026: Holidays = (
    (date(2026, 1, 15), "Municipal Corporation elections in Maharashtra (ad hoc)"),
    (date(2026, 1, 26), "Republic Day"),
    (date(2026, 3, 3), "Holi"),
    (date(2026, 3, 26), "Shri Ram Navami"),
    (date(2026, 3, 31), "Shri Mahavir Jayanti"),
    (date(2026, 4, 3), "Good Friday"),
    (date(2026, 4, 14), "Dr. Baba Saheb Ambedkar Jayanti"),
    (date(2026, 5, 1), "Maharashtra Day"),
    (date(2026, 5, 28), "Bakri Id"),
    (date(2026, 6, 26), "Muharram"),
    (date(2026, 9, 14), "Ganesh Chaturthi"),
    (date(2026, 10, 2), "Mahatma Gandhi Jayanti"),
    (date(2026, 10, 20), "Dussehra"),
    (date(2026, 11, 10), "Diwali Balipratipada"),
    (date(2026, 11, 24), "Prakash Gurpurb Sri Guru Nanak Dev Ji"),
    (date(2026, 12, 25), "Christmas"),
    (date(2026, 2, 15), "Mahashivratri (Sunday)"),
    (date(2026, 3, 21), "Id-Ul-Fitr (Ramadan Eid) (Saturday)"),
    (date(2026, 8, 15), "Independence Day (Saturday)"),
    (date(2026, 11, 8), "Diwali Laxmi Pujan (Sunday, Muhurat trading)"),
)

HOLIDAYS: dict[str, dict[int, Holidays]] = {
    "NSE": {2025: _HOLIDAYS_2025, 2026: _HOLIDAYS_2026},
    "BSE": {2025: _HOLIDAYS_2025, 2026: _HOLIDAYS_2026},
}


@dataclass(frozen=True, slots=True)
class SpecialSession:
    """A session on a holiday or weekend, or at unusual hours."""

    day: date
    kind: str  # "special": normal hours on a non-trading day; "muhurat": the Diwali hour
    note: str  # the occasion
    hours: tuple[time, time] | None  # normal-market open and close; None = not published


_BUDGET_2025 = SpecialSession(
    date(2025, 2, 1), "special", "Union Budget (Saturday)", (time(9, 15), time(15, 30))
)
_MUHURAT_2025 = SpecialSession(
    date(2025, 10, 21), "muhurat", "Diwali Laxmi Pujan", (time(13, 45), time(14, 45))
)
_BUDGET_2026 = SpecialSession(
    date(2026, 2, 1), "special", "Union Budget (Sunday)", (time(9, 15), time(15, 30))
)
_MUHURAT_2026 = SpecialSession(date(2026, 11, 8), "muhurat", "Diwali Laxmi Pujan", None)

SPECIAL_SESSIONS: dict[str, tuple[SpecialSession, ...]] = {
    "NSE": (_BUDGET_2025, _MUHURAT_2025, _BUDGET_2026, _MUHURAT_2026),
    "BSE": (_BUDGET_2025, _MUHURAT_2025, _BUDGET_2026, _MUHURAT_2026),
}
