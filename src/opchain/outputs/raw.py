"""The raw legs as Parquet: journaled before any other file of the cycle is written (it is
listed first), folded into a part per window."""

from datetime import datetime, timedelta

from opchain.merge.cycle import Cycle
from opchain.outputs.base import Session
from opchain.outputs.outlets import Written
from opchain.store import layout
from opchain.store.raw import RawStore


class Raw:
    name = "raw"
    durable = True

    def __init__(self, session: Session) -> None:
        settings = session.settings
        window = timedelta(minutes=settings.raw_window_minutes)
        root = layout.raw_root(settings.data_dir)
        self.store = RawStore(root, window, settings.durable_writes, session.flushes)
        self.indices = sorted({w.index for w in session.watches})
        self.day = session.day
        self.owns = session.owns

    def reach(self) -> datetime | None:
        """The journals a killed run left become parts first, before anything reads them."""
        self.store.recover(self.owns)
        cursors = [self.store.cursor(self.day, index) for index in self.indices]
        if not cursors or any(c is None for c in cursors):
            return None
        return min(c for c in cursors if c is not None)

    def write(self, cycle: Cycle) -> None:
        self.store.add(cycle.snapshot)

    def close(self, day_over: bool) -> None:
        self.store.close()

    def summary(self, written: Written) -> None:
        written.raw_parts += self.store.parts_written


def open_output(session: Session) -> Raw:
    return Raw(session)
