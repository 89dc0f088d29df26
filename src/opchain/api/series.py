"""Today's series from the analytics files, read incrementally: each file is followed from
where the last read stopped (whole lines only), so a request during a live session reads only
the rows added since the one before."""

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from opchain.api.deps import BucketName
from opchain.store.stats import stats_path


@dataclass
class Tail:
    """The rows of one growing CSV file, parsed as dictionaries."""

    path: Path
    offset: int = 0
    header: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)

    def update(self) -> list[dict[str, str]]:
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, io.SEEK_END)
                if size < self.offset:  # replaced by a shorter file: start again
                    self.offset, self.header, self.rows = 0, [], []
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError:
            return self.rows
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        lines = list(csv.reader(io.StringIO(whole.decode("utf-8", errors="replace"))))
        if not self.header and lines:
            self.header, lines = lines[0], lines[1:]
        self.rows += [dict(zip(self.header, cells, strict=False)) for cells in lines]
        return self.rows


_TAILS: dict[Path, Tail] = {}


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
            tail = _TAILS[path] = Tail(path)
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
