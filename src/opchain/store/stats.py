"""Per-bucket chain analytics, one daily CSV per index and bucket, beside the overview:
``analytics/<INDEX>/<bucket>/<YYYY-MM-DD>.csv``, columns those of
:class:`~opchain.merge.stats.BucketStats`.
"""

import math
from datetime import date, datetime
from pathlib import Path

from opchain.market.ist import trading_date
from opchain.merge.stats import BucketStats
from opchain.store.appendlog import AppendLog, FlushSchedule

COLUMNS = BucketStats._fields
# Decimals kept per column: enough for the quantity, no float noise in the file.
_DECIMALS = {"forward": 2, "atm_iv": 6, "pcr_oi": 4, "pcr_volume": 4, "straddle": 2,
             "expected_move_pct": 4}  # fmt: skip


class StatsStore:
    def __init__(
        self, root: Path, durable: bool = False, flushes: FlushSchedule | None = None
    ) -> None:
        self.root, self.durable = root, durable
        self.flushes = flushes or FlushSchedule()
        self._logs: dict[tuple[str, str, date], AppendLog] = {}

    def log(self, index: str, bucket: str, day: date) -> AppendLog:
        key = (index, bucket, day)
        if key not in self._logs:
            path = self.root / index / bucket / f"{day.isoformat()}.csv"
            self._logs[key] = AppendLog(path, COLUMNS, self.durable)
        return self._logs[key]

    def write(self, ts: datetime, stats: list[BucketStats]) -> int:
        day, added = trading_date(ts), 0
        for row in stats:
            log = self.log(row.index, row.bucket, day)
            if log.append(ts, format_stats(row)):
                self.flushes.wrote(log)
                added += 1
        self.flushes.tick()
        return added

    def cursor(self, keys: list[tuple[str, str]], day: date) -> datetime | None:
        stamps = [self.log(index, bucket, day).last_ts for index, bucket in keys]
        if not stamps or any(s is None for s in stamps):
            return None
        return min(s for s in stamps if s is not None)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()


def format_stats(row: BucketStats) -> str:
    cells = []
    for name, value in zip(COLUMNS, row, strict=True):
        if isinstance(value, float):
            value = "" if math.isnan(value) else repr(round(value, _DECIMALS.get(name, 2)))
        cells.append(str(value))
    return ",".join(cells)
