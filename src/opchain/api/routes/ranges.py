"""``/series/{index}/analytics`` and ``/series/{index}/overview``: the rows of the analytics and
overview files between two moments, across days, oldest first, a page at a time.

Each answer has ``next``, the cursor of the rows after its last one while there are more
(null when the page reached the end of what is there now), and ``poll``, the cursor after the
last row seen (returned now or before): passed back later, it gives only the rows written since.
A cursor is the last row's timestamp, base64url, opaque to the client. Rows are compared by
that timestamp: the writer appends only newer ones (``store.appendlog``), so "after the
cursor" neither repeats nor misses a row.

The files are read as every reader reads them (``store.csvrows``): only regular files inside
their root, a damaged line skipped and named once in the log, a last line without its newline
not yet a row. Today's files are followed as they grow (``api.series.Tail``); other days' are
read whole.
"""

import base64
import binascii
import bisect
import re
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from opchain.api.deps import ERRORS, BucketName, Index, guard, settings_of
from opchain.api.models import AnalyticsRange, AnalyticsRow, OverviewRange, OverviewRow
from opchain.api.routes.files import days_in
from opchain.api.series import Tail
from opchain.market.clock import Clock
from opchain.market.ist import IST, at, to_ist, trading_date
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.csvrows import aware, read_all
from opchain.store.regular import regular_file

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS, tags=["series"])
SettingsDep = Annotated[Settings, Depends(settings_of)]

MAX_LIMIT = 10_000
# YYYY-MM-DD, or that and THH:MM[:SS[.ffffff]] with an optional offset (none: IST)
MOMENT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TAILS: dict[Path, Tail] = {}
_MOMENT_DOC = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (IST unless an offset is given)"


def moment(name: str, text: str | None, end: bool) -> datetime | None:
    """A ``from``/``to`` parameter as an aware instant: a date alone is its first instant
    (``from``) or its last (``to``), a time without an offset is IST; 422 when it is no real
    date or time."""
    if text is None:
        return None
    try:
        if _DATE_ONLY.fullmatch(text):
            return at(date.fromisoformat(text), time.max if end else time.min)
        found = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{name}: {text} is not a calendar date and time") from None
    return found.replace(tzinfo=IST) if found.tzinfo is None else found


def encode_cursor(ts: datetime) -> str:
    return base64.urlsafe_b64encode(ts.isoformat().encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> datetime | None:
    """The timestamp a cursor stands for; 422 when it is not one this API gave."""
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        return aware(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HTTPException(
            422, "cursor: not a cursor this API gave; pass back `next` or `poll` as it came"
        ) from None


FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=MOMENT_PATTERN,
        max_length=32,
        description=f"Rows at or after: {_MOMENT_DOC} (default: today's first instant)",
    ),
]
ToQuery = Annotated[
    str | None,
    Query(
        pattern=MOMENT_PATTERN,
        max_length=32,
        description=f"Rows at or before: {_MOMENT_DOC}; a date alone is its whole day "
        "(default: no end)",
    ),
]
CursorQuery = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        max_length=64,
        description="`next` or `poll` of an earlier answer: only the rows after it",
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows at most")]


def _parser(header: list[str]) -> Callable[[list[str]], dict[str, str]]:
    """Rows as dictionaries, the timestamp checked (a row without a real one is damaged)."""
    if "ts" not in header:
        raise ValueError("the header has no ts column")
    at_ts = header.index("ts")

    def parse(found: list[str]) -> dict[str, str]:
        aware(found[at_ts])
        return dict(zip(header, found, strict=True))

    return parse


def _rows_of(path: Path, root: Path, today: date, day: date) -> list[dict[str, str]]:
    if day >= today:  # still being written: followed, only what was added is read
        tail = _TAILS.get(path)
        if tail is None:
            if len(_TAILS) > 64:
                _TAILS.clear()
            tail = _TAILS[path] = Tail(path, root, _parser)
        return tail.update()
    real = regular_file(path, root)
    return [] if real is None else read_all(real, _parser)


def _stamp(row: dict[str, str]) -> datetime:
    return aware(row["ts"])


def page(
    folder: Path,
    root: Path,
    clock: Clock,
    start: datetime | None,
    end: datetime | None,
    after: datetime | None,
    limit: int,
) -> tuple[list[dict[str, str]], bool]:
    """Up to ``limit`` rows of the daily files in ``folder`` with ``start`` <= ts <= ``end``
    and ts > ``after``, oldest first, and whether there are more."""
    today = trading_date(clock.now())
    if start is None and after is None:
        start = at(today, time.min)
    lows = [to_ist(m) for m in (start, after) if m is not None]
    first = max(lows).date() if lows else today  # no row before that day counts
    last = to_ist(end).date() if end is not None else None
    found: list[dict[str, str]] = []
    for day in days_in(folder, root):
        if day < first or (last is not None and day > last):
            continue
        rows = _rows_of(folder / f"{day.isoformat()}.csv", root, today, day)
        lo = 0
        if start is not None:
            lo = max(lo, bisect.bisect_left(rows, start, key=_stamp))
        if after is not None:
            lo = max(lo, bisect.bisect_right(rows, after, key=_stamp))
        for row in rows[lo:]:
            if end is not None and _stamp(row) > end:
                return found, False
            if len(found) == limit:
                return found, True
            found.append(row)
    return found, False


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value == value and abs(value) != float("inf") else None


def _count(text: str | None) -> int | None:
    value = _number(text)
    return None if value is None or value != int(value) else int(value)


def shaped(row: dict[str, str], model: type[AnalyticsRow] | type[OverviewRow]) -> dict[str, Any]:
    """A file's row as the model's fields: texts as they are (empty: null), numbers as numbers
    (empty or not a finite number: null), a column the file lacks null."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        text = row.get(name)
        if name == "ts":
            out[name] = text
        elif info.annotation == (int | None):
            out[name] = _count(text)
        elif info.annotation == (float | None):
            out[name] = _number(text)
        else:
            out[name] = text or None
    return out


def _answer(
    request: Request,
    folder: Path,
    root: Path,
    from_: str | None,
    to: str | None,
    cursor: str | None,
    limit: int,
    model: type[AnalyticsRow] | type[OverviewRow],
) -> dict[str, Any]:
    start, end = moment("from", from_, False), moment("to", to, True)
    after = decode_cursor(cursor)
    if start is not None and end is not None and start > end:
        raise HTTPException(422, f"from: {from_} is after to ({to})")
    rows, more = page(folder, root, request.app.state.clock, start, end, after, limit)
    last = encode_cursor(_stamp(rows[-1])) if rows else cursor
    return {
        "rows": [shaped(r, model) for r in rows],
        "next": last if more else None,
        "poll": last,
    }


@router.get("/series/{index}/analytics", response_model=AnalyticsRange)
def analytics_range(
    request: Request,
    index: Index,
    bucket: Annotated[BucketName, Query(description="The expiry bucket")],
    settings: SettingsDep,
    from_: FromQuery = None,
    to: ToQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 1000,
) -> dict[str, Any]:
    """The rows of the index's analytics files of one bucket between `from` and `to`, oldest
    first, `limit` at most; `next` continues, `poll` later gives what is new."""
    root = layout.analytics_root(settings.data_dir)
    folder = root / index / bucket.value
    answer = _answer(request, folder, root, from_, to, cursor, limit, AnalyticsRow)
    return {"index": index, "bucket": bucket.value, **answer}


@router.get("/series/{index}/overview", response_model=OverviewRange)
def overview_range(
    request: Request,
    index: Index,
    settings: SettingsDep,
    from_: FromQuery = None,
    to: ToQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 1000,
) -> dict[str, Any]:
    """The rows of the index's overview files between `from` and `to`, oldest first, `limit`
    at most; `next` continues, `poll` later gives what is new."""
    root = layout.overview_root(settings.data_dir)
    answer = _answer(request, root / index, root, from_, to, cursor, limit, OverviewRow)
    return {"index": index, **answer}
