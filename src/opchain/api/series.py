"""Today's series from the analytics files, read incrementally: each file is followed from
where the last read stopped (whole lines only), so a request during a live session reads only
the rows added since the one before."""

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from opchain.api.deps import BucketName
from opchain.store.csvrows import Follow, ParserFor
from opchain.store.regular import open_regular
from opchain.store.stats import stats_path


@dataclass
class Tail:
    """The rows of one growing CSV file under ``root``, as dictionaries: read only while it is
    a regular file inside ``root`` (never a FIFO that would block the event loop), a damaged
    line left out and named once in the log, as every reader of these files does
    (``store.csvrows``)."""

    path: Path
    root: Path
    parser_for: ParserFor[dict[str, str]] = field(default=lambda header: _dicts(header))
    follow: Follow[dict[str, str]] = field(init=False)
    rows: list[dict[str, str]] = field(default_factory=list)
    last: bytes = b""  # the bytes just before the offset, to see that the file was only appended

    def __post_init__(self) -> None:
        self.follow = Follow(self.path, self.parser_for)

    def _same_start(self, f: BinaryIO) -> bool:
        """Whether what was read before is still there (an append-only file keeps it; a
        repaired or replaced one, even as long, does not)."""
        f.seek(self.follow.offset - len(self.last))
        return f.read(len(self.last)) == self.last

    def update(self) -> list[dict[str, str]]:
        try:
            with open_regular(self.path, self.root) as f:
                size = f.seek(0, io.SEEK_END)
                if size < self.follow.offset or not self._same_start(f):  # rewritten: again
                    self.follow, self.last, self.rows = Follow(self.path, self.parser_for), b"", []
                f.seek(self.follow.offset)
                data = f.read(size - self.follow.offset)
        except OSError:
            return self.rows
        self.rows += self.follow.feed(data)
        self.last = (self.last + data[: data.rfind(b"\n") + 1])[-_CHECKED:]
        return self.rows


def _dicts(header: list[str]) -> Callable[[list[str]], dict[str, str]]:
    return lambda cells: dict(zip(header, cells, strict=True))


_TAILS: dict[Path, Tail] = {}
_CHECKED = 256  # bytes before the offset compared on every read


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def pcr_series(root: Path, index: str, buckets: list[str], ts: str) -> list[dict[str, Any]]:
    """Every cycle's PCR by OI and by volume of the day of ``ts``, bucket by bucket, in time
    order."""
    try:
        day = date.fromisoformat(ts[:10])
    except ValueError:
        return []
    known = {b.value for b in BucketName}
    points: list[dict[str, Any]] = []
    for bucket in buckets:
        if bucket not in known:
            continue
        path = stats_path(root, index, bucket, day)
        tail = _TAILS.get(path)
        if tail is None:
            if len(_TAILS) > 64:
                _TAILS.clear()
            tail = _TAILS[path] = Tail(path, root)
        points += [
            {
                "ts": row.get("ts", ""),
                "bucket": bucket,
                "pcr_oi": _number(row.get("pcr_oi")),
                "pcr_volume": _number(row.get("pcr_volume")),
            }
            for row in tail.update()
        ]
    points.sort(key=lambda p: (p["ts"], p["bucket"]))
    return points
