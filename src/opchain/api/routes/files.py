"""Finding the days on disk: file names are checked against a strict date pattern before
they count, so a stray file never becomes an answer."""

import re
from datetime import date
from pathlib import Path

from fastapi import HTTPException

from opchain.store.appendlog import last_line

_DAY_CSV = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\.csv")


def days_in(folder: Path) -> list[date]:
    """The dates of the ``YYYY-MM-DD.csv`` files in ``folder``, ascending."""
    days = []
    if folder.is_dir():
        for path in folder.iterdir():
            if _DAY_CSV.fullmatch(path.name):
                try:
                    days.append(date.fromisoformat(path.stem))
                except ValueError:
                    continue
    return sorted(days)


def whole_lines(path: Path) -> bytes:
    """A CSV being appended to, up to its last complete line."""
    try:
        data = path.read_bytes()
    except OSError:
        raise HTTPException(404, "that file is not there") from None
    return data[: data.rfind(b"\n") + 1]


def last_cell(path: Path, column: str) -> str | None:
    """``column`` of a CSV's last line (None when it has no such column or no rows)."""
    try:
        with path.open(encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split(",")
        cells = last_line(path).split(",")
    except (OSError, UnicodeDecodeError):
        return None
    if column not in header or len(cells) != len(header) or cells == header:
        return None
    return cells[header.index(column)]
