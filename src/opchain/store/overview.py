"""The index overview, one daily CSV per index: ``overview/<INDEX>/<YYYY-MM-DD>.csv``."""

from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path

from opchain.market.indices import OVERVIEW
from opchain.market.ist import trading_date
from opchain.model import Quote, Snapshot
from opchain.store import layout
from opchain.store.appendlog import FlushSchedule, LogBook

COLUMNS = (
    "ts",
    "index",
    "name",
    "last_price",
    "open",
    "high",
    "low",
    "prev_close",
    "net_change",
    "net_change_pct",
    "exchange_ts",
)


class OverviewStore:
    def __init__(
        self, root: Path, durable: bool = False, flushes: FlushSchedule | None = None
    ) -> None:
        self.flushes = flushes or FlushSchedule()
        self.logs: LogBook[tuple[str, date]] = LogBook(
            lambda key: layout.overview_file(root, *key), COLUMNS, durable
        )

    def write(self, snapshot: Snapshot, keys: Collection[str] | None = None) -> int:
        """Append the snapshot's index quotes (those of ``keys`` only, when given)."""
        day = trading_date(snapshot.ts)
        added = 0
        for index, quote in snapshot.indices.items():
            if keys is not None and index not in keys:
                continue
            log = self.logs[index, day]
            if log.append(snapshot.ts, _line(snapshot.ts, index, quote)):
                self.flushes.wrote(log)
                added += 1
        self.flushes.tick()
        return added

    def cursor(self, indices: list[str], day: date) -> datetime | None:
        return self.logs.cursor((i, day) for i in indices)

    def close(self) -> None:
        self.logs.close()


def _line(ts: datetime, index: str, q: Quote) -> str:
    change = round(q.net_change, 2)
    pct = round(change / q.close * 100, 4) if q.close else 0.0
    stamp = q.timestamp.isoformat() if q.timestamp else ""
    cells = (ts.isoformat(), index, OVERVIEW[index].display, q.last_price, q.open, q.high, q.low)
    return ",".join(str(c) for c in (*cells, q.close, change, pct, stamp))
