"""Per-bucket chain analytics, one daily CSV per index and bucket, beside the overview:
``analytics/<INDEX>/<bucket>/<YYYY-MM-DD>.csv``, columns those of
:class:`~opchain.merge.stats.BucketStats`.
"""

import math
from datetime import date, datetime
from pathlib import Path

from opchain.market.ist import trading_date
from opchain.merge.stats import BucketStats
from opchain.store.appendlog import FlushSchedule, LogBook

COLUMNS = BucketStats._fields
# Decimals kept per column: enough for the quantity, no float noise in the file.
_DECIMALS = {"forward": 2, "atm_iv": 6, "pcr_oi": 4, "pcr_volume": 4, "straddle": 2,
             "expected_move_pct": 4}  # fmt: skip


class StatsStore:
    def __init__(
        self, root: Path, durable: bool = False, flushes: FlushSchedule | None = None
    ) -> None:
        self.flushes = flushes or FlushSchedule()
        self.logs: LogBook[tuple[str, str, date]] = LogBook(
            lambda key: root / key[0] / key[1] / f"{key[2].isoformat()}.csv", COLUMNS, durable
        )

    def write(self, ts: datetime, stats: list[BucketStats]) -> int:
        day, added = trading_date(ts), 0
        for row in stats:
            log = self.logs[row.index, row.bucket, day]
            if log.append(ts, format_stats(row)):
                self.flushes.wrote(log)
                added += 1
        self.flushes.tick()
        return added

    def cursor(self, keys: list[tuple[str, str]], day: date) -> datetime | None:
        return self.logs.cursor((index, bucket, day) for index, bucket in keys)

    def close(self) -> None:
        self.logs.close()


def format_stats(row: BucketStats) -> str:
    cells = []
    for name, value in zip(COLUMNS, row, strict=True):
        if isinstance(value, float):
            value = "" if math.isnan(value) else repr(round(value, _DECIMALS.get(name, 2)))
        cells.append(str(value))
    return ",".join(cells)
