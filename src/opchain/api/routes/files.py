"""Finding the days on disk and reading the files: file names are checked against a strict date
pattern before they count, and a file is read only when it is a regular file inside its root
(``store.regular``), so a stray file, a symlink out of the data directory, a FIFO or a device
never becomes an answer or hangs one."""

import re
from datetime import date
from pathlib import Path

from fastapi import HTTPException

from opchain.store.csvrows import last_record, read_header
from opchain.store.regular import read_regular, regular_file

_DAY_CSV = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\.csv")


def days_in(folder: Path, root: Path) -> list[date]:
    """The dates of the ``YYYY-MM-DD.csv`` regular files in ``folder`` (under ``root``),
    ascending."""
    days = []
    if folder.is_dir():
        for path in folder.iterdir():
            if _DAY_CSV.fullmatch(path.name) and regular_file(path, root) is not None:
                try:
                    days.append(date.fromisoformat(path.stem))
                except ValueError:
                    continue
    return sorted(days)


def whole_lines(path: Path, root: Path) -> bytes:
    """A CSV being appended to, up to its last complete line."""
    try:
        data = read_regular(path, root)
    except OSError:
        raise HTTPException(404, "that file is not there") from None
    return data[: data.rfind(b"\n") + 1]


def last_cell(path: Path, column: str, root: Path) -> str | None:
    """``column`` of a CSV's last good row (None when it has no such column or no rows); a
    damaged last line is skipped and named once in the log (``store.csvrows``)."""
    real = regular_file(path, root)
    if real is None:
        return None
    header = read_header(real)
    if not isinstance(header, list) or column not in header:
        return None
    at = header.index(column)
    return last_record(real, lambda _: lambda found: found[at])
