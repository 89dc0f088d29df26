"""``/profiles``: today's premium beside the weekday master and the DTE profile, and the
profiles themselves. Paths are built only from enum members, a checked offset label, a date
and an integer."""

from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam

from opchain.api.deps import (
    ERRORS,
    BucketName,
    DayQuery,
    Index,
    Offset,
    Weekday,
    guard,
    offset_exists,
    settings_of,
)
from opchain.api.models import ProfileFile, ProfileView
from opchain.api.routes.files import days_in, last_cell
from opchain.profiles.master import parse_ledger, parse_profile
from opchain.settings import Settings
from opchain.store.opmasters import WEEKDAYS
from opchain.store.profiles import dte_path, ledger_path
from opchain.store.query import today_vs_profile
from opchain.store.splits import split_path

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS, tags=["profiles"])
SettingsDep = Annotated[Settings, Depends(settings_of)]
Bucket = Annotated[BucketName, PathParam(description="The expiry bucket")]


def _series(settings: Settings, index: str, bucket: str, offset: str, day: date | None) -> date:
    """The day asked for, or the latest with a split file; 404 when there is none."""
    if not offset_exists(offset):
        raise HTTPException(404, f"there is no offset {offset}")
    folder = settings.split_root / index / bucket / offset
    if day is None:
        days = days_in(folder)
        if not days:
            raise HTTPException(404, f"no data for {index} {bucket} {offset}")
        return days[-1]
    if not split_path(settings.split_root, index, bucket, offset, day).exists():
        raise HTTPException(404, f"no data for {index} {bucket} {offset} on {day}")
    return day


@router.get("/profiles/{index}/{bucket}/{offset}", response_model=ProfileView)
def today_vs(
    index: Index, bucket: Bucket, offset: Offset, settings: SettingsDep, day: DayQuery = None
) -> dict[str, Any]:
    """Every session minute of the day: its premium beside the weekday's and the DTE's."""
    day = _series(settings, index, bucket, offset, day)
    split = split_path(settings.split_root, index, bucket, offset, day)
    dte_text = last_cell(split, "days_to_expiry")
    rows = today_vs_profile(settings.split_root, settings.profiles_root, index, bucket, offset, day)
    return {
        "index": index,
        "bucket": bucket.value,
        "offset": offset,
        "date": day.isoformat(),
        "weekday": WEEKDAYS[day.weekday()],
        "dte": int(dte_text) if dte_text and dte_text.isdigit() else None,
        "minutes": [row._asdict() for row in rows],
    }


def _profile_file(path: Path) -> dict[str, Any]:
    """A profile and the days its ledger says are in it, read without changing anything."""
    try:
        profile = parse_profile(path.read_text(encoding="utf-8"), path.name)
        ledger_file = ledger_path(path)
        text = ledger_file.read_text(encoding="utf-8") if ledger_file.exists() else ""
        ledger = parse_ledger(text, ledger_file.name)
    except FileNotFoundError:
        raise HTTPException(404, "there is no such profile yet") from None
    except (OSError, ValueError) as err:
        raise HTTPException(503, f"the profile cannot be read: {err}") from None
    return {
        "applied": [day.isoformat() for day in sorted(ledger)],
        "rows": [
            {
                "minute": minute,
                "n": cell.n,
                "avg": round(cell.total / cell.n / 100, 6),
                "min": cell.low / 100,
                "max": cell.high / 100,
                "last_updated": cell.updated.isoformat(),
            }
            for minute, cell in sorted(profile.items())
        ],
    }


@router.get("/profiles/{index}/{bucket}/{offset}/weekday/{weekday}", response_model=ProfileFile)
def weekday_master(
    index: Index, bucket: Bucket, offset: Offset, weekday: Weekday, settings: SettingsDep
) -> dict[str, Any]:
    """The weekday master: per minute the days, mean, low and high of the premium."""
    if not offset_exists(offset):
        raise HTTPException(404, f"there is no offset {offset}")
    root = settings.profiles_root / "weekday_masters"
    return _profile_file(root / index / bucket.value / offset / f"{weekday.value}.csv")


@router.get("/profiles/{index}/{bucket}/{offset}/dte/{n}", response_model=ProfileFile)
def dte_profile(
    index: Index,
    bucket: Bucket,
    offset: Offset,
    n: Annotated[int, PathParam(ge=0, le=99, description="Calendar days to expiry")],
    settings: SettingsDep,
) -> dict[str, Any]:
    """The DTE profile: the same, over the days with ``n`` days to expiry."""
    if not offset_exists(offset):
        raise HTTPException(404, f"there is no offset {offset}")
    return _profile_file(dte_path(settings.profiles_root, index, bucket.value, offset, n))
