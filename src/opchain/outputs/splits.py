"""The split CSVs (SPEC §3.4): each cycle's split rows, one file per series and day."""

from datetime import date, datetime

from opchain.collect.watch import Watch
from opchain.market.strikes import offset_label, pair_label
from opchain.merge.cycle import Cycle
from opchain.outputs.base import Session
from opchain.outputs.outlets import Written
from opchain.store.csvrows import count_rows
from opchain.store.splits import SeriesKey, SplitStore


def series_keys(watches: list[Watch], offsets: tuple[int, ...], day: date) -> list[SeriesKey]:
    """Every split file a session writes."""
    labels = [offset_label(o) for o in offsets]
    labels += [pair_label(s) for s in range(1, max(offsets) + 1) if s in offsets and -s in offsets]
    return [(w.index, w.bucket, label, day) for w in watches for label in labels]


class Splits:
    name = "splits"
    durable = True

    def __init__(self, session: Session) -> None:
        settings = session.settings
        self.store = SplitStore(settings.split_root, settings.durable_writes, session.flushes)
        self.keys = series_keys(session.watches, session.offsets, session.day)
        self.rows_added = 0
        self.files: dict[SeriesKey, int] = {}

    def reach(self) -> datetime | None:
        return self.store.cursor(self.keys)

    def write(self, cycle: Cycle) -> None:
        self.rows_added += self.store.write(cycle.rows)

    def close(self, day_over: bool) -> None:
        paths = {key: log.path for key, log in self.store.files().items()}
        self.store.close()
        self.files = {key: count_rows(path) for key, path in paths.items()}

    def summary(self, written: Written) -> None:
        written.rows_added += self.rows_added
        written.files.update(self.files)


def open_output(session: Session) -> Splits:
    return Splits(session)
