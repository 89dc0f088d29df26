"""The weekday masters and DTE profiles, streamed from the split files as they grow: at each
new minute every file is flushed and the minutes that are over are added; when the day is
over, the rest, and the profiles are saved. Listed after the split files it reads."""

from datetime import datetime

from opchain.merge.cycle import Cycle
from opchain.outputs.base import Session
from opchain.outputs.splits import series_keys
from opchain.store.masters import MasterStream


class Profiles:
    """Not durable in the protocol's sense: a profile's ledger marks how far it has read each
    split file, so after a crash the profiles catch up from the split files by themselves and
    never hold a restart back (as before outputs, they never did)."""

    name = "profiles"
    durable = False

    def __init__(self, session: Session) -> None:
        settings = session.settings
        self.flushes = session.flushes
        self.masters = MasterStream(
            settings.split_root, settings.profiles_root, session.day, settings.durable_writes
        )
        keys = series_keys(session.watches, session.offsets, session.day)
        self.series = [key[:3] for key in keys]
        self.minute: int | None = None
        self.due: datetime | None = None  # a minute began at this cycle: update at settle

    def reach(self) -> datetime | None:
        return None

    def write(self, cycle: Cycle) -> None:
        ts = cycle.snapshot.ts
        if self.minute is not None and ts.minute != self.minute:
            self.due = ts
        self.minute = ts.minute

    def settle(self) -> None:
        """The minute's update, once the cycle that began it is out (written and handed to
        ``on_cycle``, so the API never waits for the profiles): every file is flushed, then
        the split files are read."""
        if self.due is not None:
            self.flushes.flush()
            self.masters.update(self.series, now=self.due)
            self.due = None

    def close(self, day_over: bool) -> None:
        try:
            if day_over:
                self.flushes.flush()
                self.masters.update(self.series, final=True)
        finally:
            self.masters.save()


def open_output(session: Session) -> Profiles:
    return Profiles(session)
