"""The index overview: each cycle's index quotes, one file per index and day."""

from datetime import datetime

from opchain.market.indices import INDIA_VIX
from opchain.merge.cycle import Cycle
from opchain.outputs.base import Session
from opchain.store import layout
from opchain.store.overview import OverviewStore


class Overview:
    name = "overview"
    durable = True

    def __init__(self, session: Session) -> None:
        settings = session.settings
        root = layout.overview_root(settings.data_dir)
        self.store = OverviewStore(root, settings.durable_writes, session.flushes)
        owns = session.owns
        self.indices = list(owns) if owns is not None else [*settings.indices, INDIA_VIX.key]
        self.day = session.day

    def reach(self) -> datetime | None:
        return self.store.cursor(self.indices, self.day)

    def write(self, cycle: Cycle) -> None:
        self.store.write(cycle.snapshot, self.indices)

    def close(self, day_over: bool) -> None:
        self.store.close()


def open_output(session: Session) -> Overview:
    return Overview(session)
