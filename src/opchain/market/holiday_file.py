"""NSE's published trading-holiday list, read from text a user supplies (OPCHAIN_HOLIDAYS_FILE).

A year's holidays are published by the exchange in December; opchain ships the years it knew
when it was released (:mod:`.holidays`), and this reader lets a user add the next year without
an upgrade. Two of NSE's own formats are accepted (docs/calendar.md has the details):

- the CSV download of NSE's holidays page: a header row naming the columns (``Sr. No``,
  ``Date``, ``Day``, ``Description``; case, spaces and punctuation do not matter, and
  ``tradingDate``/``weekDay`` are read as ``Date``/``Day``), then one holiday a row;
- the JSON of ``https://www.nseindia.com/api/holiday-master?type=trading``: an object of
  segments, each a list of ``{"Sr_no", "tradingDate", "weekDay", "description", ...}``; the
  equity-derivatives segment ``FO`` is read (``CM``, the cash market, when there is no ``FO``),
  or a bare list of such objects.

Dates are written as NSE writes them (``26-Jan-2027``) or as ISO dates (``2027-01-26``). A day
column, where there is one, must name the date's weekday: a typo in a date is caught there.
Every problem is a :class:`HolidayFileError` naming the source and the line. Pure: the caller
reads the file and passes its text in.
"""

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

DATE_FORMATS = ("%d-%b-%Y", "%d-%B-%Y", "%Y-%m-%d")
SEGMENTS = ("FO", "CM")  # preferred first: index options trade in FO
_DATE_COLUMNS = ("date", "tradingdate", "holidaydate")
_DAY_COLUMNS = ("day", "weekday")
_NAME_COLUMNS = ("description", "holiday", "holidays", "occasion")


class HolidayFileError(ValueError):
    """A supplied holiday list that cannot be used: source, line (None: the whole file), why."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {message}")
        self.source, self.line, self.message = source, line, message


@dataclass(frozen=True, slots=True)
class SuppliedHolidays:
    """The holidays of a supplied list by year, each year's in date order."""

    source: str
    years: dict[int, dict[date, str]]
    segment: str  # the JSON segment read ("FO", "CM"), "" for a CSV or a bare list


def parse_holiday_file(text: str, source: str) -> SuppliedHolidays:
    """The holidays listed in ``text`` (NSE's CSV or JSON, found by its first character)."""
    body = text.removeprefix("\ufeff")
    if not body.strip():
        raise HolidayFileError(source, None, "the file is empty")
    if body.lstrip()[0] in "{[":
        rows, segment = _json_rows(body, source)
    else:
        rows, segment = _csv_rows(body, source), ""
    return SuppliedHolidays(source, _by_year(rows, source), segment)


Row = tuple[int, str, str | None, str]  # line, date text, weekday text (if any), description


def _csv_rows(text: str, source: str) -> list[Row]:
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        lines = [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
    except csv.Error as err:
        raise HolidayFileError(source, reader.line_num, f"not CSV: {err}") from None
    if not lines:
        raise HolidayFileError(source, None, "no holidays are listed")
    (header_line, names), body = lines[0], lines[1:]
    header = [_key(name) for name in names]
    at_date = _column(header, _DATE_COLUMNS)
    if at_date is None:
        found = ", ".join(repr(name.strip()) for name in names)
        raise HolidayFileError(
            source, header_line, f"no date column in the header (found {found}); "
            "expected NSE's columns such as Sr. No,Date,Day,Description",
        )  # fmt: skip
    at_day, at_name = _column(header, _DAY_COLUMNS), _column(header, _NAME_COLUMNS)
    rows: list[Row] = []
    for line, cells in body:
        if len(cells) != len(header):
            raise HolidayFileError(
                source, line, f"{len(cells)} cells where the header has {len(header)}"
            )
        weekday = (cells[at_day].strip() or None) if at_day is not None else None
        name = cells[at_name].strip() if at_name is not None else ""
        rows.append((line, cells[at_date].strip(), weekday, name))
    return rows


def _json_rows(text: str, source: str) -> tuple[list[Row], str]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise HolidayFileError(source, err.lineno, f"not JSON: {err.msg}") from None
    segment, start = "", 0
    if isinstance(body, dict):
        segment = next((s for s in SEGMENTS if s in body), "")
        if not segment:
            found = ", ".join(map(str, body)) or "none"
            raise HolidayFileError(
                source, None, f"no FO or CM segment in the JSON object (segments: {found})"
            )
        body = body[segment]
        start = max(text.find(f'"{segment}"'), 0)
    if not isinstance(body, list):
        raise HolidayFileError(source, None, "expected a list of holidays")
    rows: list[Row] = []
    cursor = text.find("[", start)
    for n, entry in enumerate(body, start=1):
        cursor = text.find("{", cursor + 1)  # the n-th object of the list: NSE's are flat
        value = entry.get("tradingDate") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(value, str):
            where = f"{segment} entry {n}" if segment else f"entry {n}"
            raise HolidayFileError(source, _line_at(text, cursor), f"{where} has no tradingDate")
        day, name = entry.get("weekDay"), entry.get("description")
        rows.append((
            _line_at(text, cursor),
            value.strip(),
            day.strip() if isinstance(day, str) else None,
            name.strip() if isinstance(name, str) else "",
        ))  # fmt: skip
    return rows, segment


def _by_year(rows: Iterable[Row], source: str) -> dict[int, dict[date, str]]:
    seen: dict[date, int] = {}
    years: dict[int, dict[date, str]] = {}
    for line, text, weekday, name in rows:
        day = _date(text)
        if day is None:
            raise HolidayFileError(
                source, line, f"{text!r} is not a date like 26-Jan-2027 (or 2027-01-26)"
            )
        if weekday is not None and weekday.lower() not in (
            f"{day:%A}".lower(),
            f"{day:%a}".lower(),
        ):
            raise HolidayFileError(source, line, f"{text} is a {day:%A}, not {weekday}")
        if day in seen:
            raise HolidayFileError(
                source, line, f"{day.isoformat()} is listed twice (lines {seen[day]} and {line})"
            )
        seen[day] = line
        years.setdefault(day.year, {})[day] = name or "holiday"
    if not years:
        raise HolidayFileError(source, None, "no holidays are listed")
    return {year: dict(sorted(days.items())) for year, days in sorted(years.items())}


def _date(text: str) -> date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a date, no time)
        except ValueError:
            continue
    return None


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((n for n, key in enumerate(header) if key in names), None)


def _line_at(text: str, offset: int) -> int:
    """The 1-based line of a character offset (the last line for -1: not found)."""
    return text.count("\n", 0, offset if offset >= 0 else len(text)) + 1
