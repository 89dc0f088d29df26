"""The per-bucket chain analytics: each cycle's ``BucketStats``, one file per bucket and day."""

from datetime import datetime

from opchain.merge.cycle import Cycle
from opchain.outputs.base import Session
from opchain.store import layout
from opchain.store.stats import StatsStore


class Analytics:
    name = "analytics"
    durable = True

    def __init__(self, session: Session) -> None:
        settings = session.settings
        root = layout.analytics_root(settings.data_dir)
        self.store = StatsStore(root, settings.durable_writes, session.flushes)
        self.keys = [(w.index, w.bucket) for w in session.watches]
        self.day = session.day

    def reach(self) -> datetime | None:
        return self.store.cursor(self.keys, self.day)

    def write(self, cycle: Cycle) -> None:
        self.store.write(cycle.snapshot.ts, cycle.stats)

    def close(self, day_over: bool) -> None:
        self.store.close()


def open_output(session: Session) -> Analytics:
    return Analytics(session)
