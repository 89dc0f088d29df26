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
from opchain.profiles.master import HEADER, Profile, parse_ledger, parse_profile
from opchain.settings import Settings
from opchain.store.opmasters import WEEKDAYS
from opchain.store.profiles import dte_path, ledger_path
from opchain.store.query import compare
from opchain.store.regular import read_regular, regular_file
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
        days = days_in(folder, settings.split_root)
        if not days:
            raise HTTPException(404, f"no data for {index} {bucket} {offset}")
        return days[-1]
    split = split_path(settings.split_root, index, bucket, offset, day)
    if regular_file(split, settings.split_root) is None:
        raise HTTPException(404, f"no data for {index} {bucket} {offset} on {day}")
    return day


@router.get("/profiles/{index}/{bucket}/{offset}", response_model=ProfileView)
def today_vs(
    index: Index, bucket: Bucket, offset: Offset, settings: SettingsDep, day: DayQuery = None
) -> dict[str, Any]:
    """Every session minute of the day: its premium beside the weekday's and the DTE's, over
    the days before it only (``weekday_days``, ``dte_days``)."""
    day = _series(settings, index, bucket, offset, day)
    split = split_path(settings.split_root, index, bucket, offset, day)
    dte_text = last_cell(split, "days_to_expiry", settings.split_root)
    skipped: list[str] = []
    found = compare(
        settings.split_root, settings.profiles_root, index, bucket, offset, day, skipped
    )
    return {
        "index": index,
        "bucket": bucket.value,
        "offset": offset,
        "date": day.isoformat(),
        "weekday": WEEKDAYS[day.weekday()],
        "dte": int(dte_text) if dte_text and dte_text.isdigit() else None,
        "minutes": [row._asdict() for row in found.minutes],
        "weekday_days": found.weekday_days,
        "dte_days": found.dte_days,
        "skipped": skipped,
    }


def _profile_file(path: Path, root: Path) -> dict[str, Any]:
    """A profile and the days its ledger says are in it, read without changing anything
    (regular files inside ``root`` only). A damaged line costs only its own row and is named
    in ``skipped``; a minute that counts no day has no mean, low or high."""
    if regular_file(path, root) is None:
        raise HTTPException(404, "there is no such profile yet")
    where = f"{root.name}/{path.relative_to(root)}"
    ledger_file = ledger_path(path)
    try:
        profile, skipped = _lenient_profile(read_regular(path, root), where)
        has_ledger = regular_file(ledger_file, root) is not None
        text = read_regular(ledger_file, root) if has_ledger else b""
    except OSError as err:
        raise HTTPException(503, f"{where} cannot be read: {err.strerror or err}") from None
    try:
        ledger = parse_ledger(text.decode("utf-8"), f"{where}.ledger")
    except ValueError as err:  # UnicodeDecodeError is a ValueError
        named = str(err) if str(err).startswith(f"{where}.ledger") else f"{where}.ledger: {err}"
        skipped.append(f"{named} (so the days applied are not known)")
        ledger = {}
    return {
        "applied": [day.isoformat() for day in sorted(ledger)],
        "rows": [
            {
                "minute": minute,
                "n": cell.n,
                "avg": round(cell.total / cell.n / 100, 6) if cell.n > 0 else None,
                "min": cell.low / 100 if cell.n > 0 else None,
                "max": cell.high / 100 if cell.n > 0 else None,
                "last_updated": cell.updated.isoformat(),
            }
            for minute, cell in sorted(profile.items())
        ],
        "skipped": skipped,
    }


def _lenient_profile(data: bytes, where: str) -> tuple[Profile, list[str]]:
    """The rows of a profile file that ``parse_profile`` accepts one by one, and one sentence
    per line it does not (the header wrong: the whole file)."""
    lines = data.split(b"\n")
    if lines[0].rstrip(b"\r").decode("utf-8", errors="replace") != HEADER:
        return {}, [f"{where}: not read (line 1 is not the header {HEADER})"]
    profile: Profile = {}
    bad: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            profile.update(parse_profile(f"{HEADER}\n{line.decode('utf-8')}", where))
        except ValueError as err:  # UnicodeDecodeError is a ValueError
            bad.append(f"line {number}: {str(err).removeprefix(f'{where}: line 2: ')}")
    if not bad:
        return profile, []
    shown = "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
    return profile, [f"{where}: {len(bad)} damaged line(s) left out ({shown})"]


@router.get("/profiles/{index}/{bucket}/{offset}/weekday/{weekday}", response_model=ProfileFile)
def weekday_master(
    index: Index, bucket: Bucket, offset: Offset, weekday: Weekday, settings: SettingsDep
) -> dict[str, Any]:
    """The weekday master: per minute the days, mean, low and high of the premium."""
    if not offset_exists(offset):
        raise HTTPException(404, f"there is no offset {offset}")
    root = settings.profiles_root / "weekday_masters"
    path = root / index / bucket.value / offset / f"{weekday.value}.csv"
    return _profile_file(path, settings.profiles_root)


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
    path = dte_path(settings.profiles_root, index, bucket.value, offset, n)
    return _profile_file(path, settings.profiles_root)
