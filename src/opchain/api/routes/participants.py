"""``/participants``: NSE's participant-wise open interest of the days kept
(``opchain participants import``/``fetch``), with each participant's net index positions and
their change from the previous day kept. A kept file that cannot be read (damaged by hand or
by the disk) is left out, as a bad line is everywhere, and named once in the log."""

import bisect
import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from opchain.api.deps import DATE_PATTERN, ERRORS, day_text, guard, settings_of
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.participants import Day, ParticipantsError, Position, load, stored_days

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS, tags=["participants"])

DEFAULT_DAYS = 30  # without ``from``: the latest days kept up to ``to``
MAX_DAYS = 400  # a range longer than this answers its latest days
log = logging.getLogger(__name__)
_warned: set[Path] = set()  # damaged files already named in the log


class NetChange(BaseModel):
    net_index_futures: int
    net_index_calls: int
    net_index_puts: int


class ParticipantRow(BaseModel):
    """One participant's open interest (contracts), NSE's columns, and the derived nets."""

    participant: str
    future_index_long: int
    future_index_short: int
    future_stock_long: int
    future_stock_short: int
    option_index_call_long: int
    option_index_put_long: int
    option_index_call_short: int
    option_index_put_short: int
    option_stock_call_long: int
    option_stock_put_long: int
    option_stock_call_short: int
    option_stock_put_short: int
    total_long: int
    total_short: int
    net_index_futures: int
    net_index_calls: int
    net_index_puts: int
    change: NetChange | None


class ParticipantsDay(BaseModel):
    date: str
    previous: str | None
    rows: list[ParticipantRow]


class Participants(BaseModel):
    days: list[ParticipantsDay]


def _date_param(name: str, doc: str) -> Any:
    return Query(
        alias=name,
        pattern=DATE_PATTERN,
        max_length=10,
        description=doc,
        json_schema_extra={"format": "date"},
    )


def _nets(p: Position) -> dict[str, int]:
    return {
        "net_index_futures": p.net_index_futures,
        "net_index_calls": p.net_index_calls,
        "net_index_puts": p.net_index_puts,
    }


def day_view(today: Day, before: Day | None) -> dict[str, Any]:
    """A day's rows as the API answers them; ``change`` against ``before`` (None: no day
    before is kept)."""
    earlier = {p.participant: _nets(p) for p in before.positions} if before else {}
    rows = []
    for p in today.positions:
        nets = _nets(p)
        then = earlier.get(p.participant)
        change = None if then is None else {k: v - then[k] for k, v in nets.items()}
        rows.append({**vars(p), **nets, "change": change})
    return {
        "date": today.day.isoformat(),
        "previous": before.day.isoformat() if before else None,
        "rows": rows,
    }


def _load(settings: Settings, day: date) -> Day | None:
    """A kept day; None, and a warning in the log (once a file), when its file is damaged."""
    try:
        return load(settings.data_dir, day)
    except (OSError, ParticipantsError) as err:
        path = layout.participants_path(settings.data_dir, day)
        if path not in _warned:
            _warned.add(path)
            log.warning("%s: left out of /participants: %s", path, err)
        return None


@router.get("/participants", response_model=Participants)
def participants(
    settings: Annotated[Settings, Depends(settings_of)],
    start: Annotated[
        str | None, _date_param("from", "First day, YYYY-MM-DD (default: 30 days kept before to)")
    ] = None,
    end: Annotated[
        str | None, _date_param("to", "Last day, YYYY-MM-DD (default: the latest kept)")
    ] = None,
) -> dict[str, Any]:
    """Each kept day from `from` to `to`, oldest first (at most the latest 400): the four
    participants' open interest, their net index futures, calls and puts (long − short) and
    the change of each from the previous day kept."""
    first, last = day_text(start), day_text(end)
    if first is not None and last is not None and first > last:
        raise HTTPException(422, f"from: {first} is after to {last}")
    kept = stored_days(settings.data_dir)
    stop = bisect.bisect_right(kept, last) if last is not None else len(kept)
    begin = bisect.bisect_left(kept, first) if first is not None else max(0, stop - DEFAULT_DAYS)
    begin = max(begin, stop - MAX_DAYS)
    if begin >= stop:
        return {"days": []}
    before = None
    for day in reversed(kept[:begin]):  # the change's base: the last readable day before
        before = _load(settings, day)
        if before is not None:
            break
    days = []
    for day in kept[begin:stop]:
        today = _load(settings, day)
        if today is not None:
            days.append(day_view(today, before))
            before = today
    return {"days": days}
