"""What every output is: a place a session's cycles go (files, the live view, InfluxDB, ...).

An output is opened for one session's day by a factory named in :data:`opchain.outputs.OUTPUTS`,
which returns None when the settings leave it off. The pipeline asks every *durable* output how
far it already reaches and resumes after the earliest; then hands each cycle to every output in
the listed order, and closes them all, whichever fails.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from opchain.collect.watch import Watch
from opchain.merge.cycle import Cycle
from opchain.settings import Settings
from opchain.store.appendlog import FlushSchedule

if TYPE_CHECKING:  # prometheus-client is loaded only where metrics are kept
    from opchain.health.metrics import Metrics


@dataclass
class Session:
    """What an output is opened with: one session's day and what it watches."""

    settings: Settings
    day: date
    watches: list[Watch]
    offsets: tuple[int, ...]
    flushes: FlushSchedule = field(default_factory=FlushSchedule)  # files flushed together
    metrics: "Metrics | None" = None  # the process's /metrics, for outputs that count there
    # What this session alone writes when several processes share the data directory (a bus
    # worker's partition: its index, and INDIA VIX's overview for the first index's owner);
    # None: the whole directory is this process's (``opchain run``).
    owns: tuple[str, ...] | None = None

    @property
    def partition(self) -> str | None:
        """The name a worker's session is known by (its index), None in ``opchain run``."""
        return self.owns[0] if self.owns else None


class Output(Protocol):
    name: str
    durable: bool  # its reach decides where a restarted session resumes

    def reach(self) -> datetime | None:
        """The last cycle of the day this output holds for good (None: none of the day)."""
        ...

    def write(self, cycle: Cycle) -> None:
        """Take one cycle; a durable output has it on disk (at the next flush) on return."""
        ...

    def close(self, day_over: bool) -> None:
        """Flush and release; ``day_over``: the session's last cycle was written."""
        ...


Factory = Callable[[Session], Output | None]
