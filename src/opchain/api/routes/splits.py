"""``/splits``: a day's split files of an index, and each file itself as CSV; only regular
files inside the split root count (a symlink out of it, a FIFO or a device is not there)."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi import Path as PathParam

from opchain.api.deps import (
    DATE_PATTERN,
    ERRORS,
    BucketName,
    DayQuery,
    Index,
    Offset,
    day_text,
    guard,
    offset_exists,
    settings_of,
)
from opchain.api.models import SplitList
from opchain.api.routes.files import days_in, whole_lines
from opchain.settings import Settings
from opchain.store.csvrows import count_rows
from opchain.store.regular import regular_file
from opchain.store.splits import split_path

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS, tags=["splits"])
SettingsDep = Annotated[Settings, Depends(settings_of)]
_OFFSET = re.compile(r"atm(_[pm][1-9][0-9]?|_p[1-9][0-9]?m[1-9][0-9]?)?")


def _series_folders(settings: Settings, index: str) -> list[tuple[str, str]]:
    """(bucket, offset) of every split folder of the index, checked names only."""
    found = []
    for bucket in BucketName:
        folder = settings.split_root / index / bucket.value
        if folder.is_dir():
            found += [
                (bucket.value, p.name)
                for p in folder.iterdir()
                if p.is_dir() and _OFFSET.fullmatch(p.name) and offset_exists(p.name)
            ]
    return sorted(found)


@router.get("/splits/{index}", response_model=SplitList)
def split_files(index: Index, settings: SettingsDep, day: DayQuery = None) -> dict[str, Any]:
    """The day's split files (default: the latest day with any), with rows and bytes."""
    folders = _series_folders(settings, index)
    if day is None:
        root = settings.split_root
        days = {d for b, o in folders for d in days_in(root / index / b / o, root)}
        if not days:
            raise HTTPException(404, f"there are no split files of {index}")
        day = max(days)
    files = []
    for bucket, offset in folders:
        path = split_path(settings.split_root, index, bucket, offset, day)
        if regular_file(path, settings.split_root) is not None:
            data = whole_lines(path, settings.split_root)
            files.append(
                {
                    "bucket": bucket,
                    "offset": offset,
                    "rows": count_rows(path, data),  # its damaged lines are not rows
                    "bytes": len(data),
                    "url": f"/splits/{index}/{bucket}/{offset}/{day.isoformat()}.csv",
                }
            )
    if not files:
        raise HTTPException(404, f"there are no split files of {index} on {day}")
    return {"date": day.isoformat(), "files": files}


@router.get(
    "/splits/{index}/{bucket}/{offset}/{date}.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def split_csv(
    index: Index,
    bucket: Annotated[BucketName, PathParam(description="The expiry bucket")],
    offset: Offset,
    date: Annotated[
        str,
        PathParam(pattern=DATE_PATTERN, max_length=10, json_schema_extra={"format": "date"}),
    ],
    settings: SettingsDep,
) -> Response:
    """One split file as it is on disk (up to its last complete row)."""
    day = day_text(date)
    if day is None or not offset_exists(offset):
        raise HTTPException(404, f"there is no offset {offset}")
    path = split_path(settings.split_root, index, bucket.value, offset, day)
    if regular_file(path, settings.split_root) is None:  # missing, or not a file to serve
        raise HTTPException(404, f"there is no split file {index} {bucket.value} {offset} {day}")
    name = f"{index}_{bucket.value}_{offset}_{day.isoformat()}.csv"
    return Response(
        whole_lines(path, settings.split_root),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
