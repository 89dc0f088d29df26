"""The InfluxDB output: each cycle's points handed to the background writer, never waited on.

Not durable: the files are the record, and InfluxDB gets what they hold again from
``opchain influx backfill``; a run never resumes from what InfluxDB has. The writer keeps
points InfluxDB has not taken in its spool, so a server away for a while loses nothing.
"""

import logging
import socket
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from opchain.market.strikes import offset_label, pair_label
from opchain.merge.cycle import Cycle
from opchain.outputs.base import Output, Session
from opchain.outputs.influx.points import (
    Series,
    Tags,
    WriterStatsLike,
    cycle_lines,
    health_lines,
    master_lines,
)
from opchain.profiles.master import Profile
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.profiles import Damaged, peek, weekday_path

if TYPE_CHECKING:
    from opchain.health.metrics import Metrics

log = logging.getLogger(__name__)

CLOSE_SECONDS = 10.0  # what closing waits for the writer to send what it holds (then spooled)
AWAY_CLOSE_SECONDS = 1.0  # ... when the server was not taking writes: one more try, not ten s


class Writer(Protocol):
    """What the output needs of :class:`opchain.outputs.influx.writer.InfluxWriter`."""

    def put(self, lines: Sequence[str]) -> None: ...
    def stats(self) -> WriterStatsLike: ...
    def drain(self, timeout: float) -> bool: ...
    def close(self, timeout: float) -> None: ...


def spool_dir(settings: Settings, name: str) -> Path:
    """Where a writer keeps what InfluxDB has not taken: one folder per writer (the live
    run's, a backfill's), so two never share a spool."""
    return layout.influx_spool_dir(settings.data_dir) / name


def make_writer(settings: Settings, name: str, metrics: "Metrics | None" = None) -> Writer:
    """The background writer to ``settings.influxdb_url`` (imported here: a run without
    InfluxDB never loads it); it counts in ``metrics`` when given."""
    from opchain.outputs.influx.writer import InfluxWriter

    writer: Writer = InfluxWriter(settings, spool_dir(settings, name), metrics=metrics)
    return writer


def tags_for(settings: Settings) -> Tags:
    """The health points' tags: the settings' ``env``, this machine's name."""
    return Tags(env=settings.influxdb_env, host=socket.gethostname())


def open_output(session: Session) -> Output | None:
    """The InfluxDB output of a session, None when no InfluxDB URL is set."""
    settings = session.settings
    if not settings.influxdb_url:
        return None
    # A bus worker's partitions each keep their own spool: a partition taken over carries on
    # with what its last owner could not send.
    name = "live" if session.partition is None else f"live-{session.partition}"
    writer = make_writer(settings, name, session.metrics)
    return InfluxOutput(session, writer, tags_for(settings))


class InfluxOutput:
    name = "influxdb"
    durable = False

    def __init__(self, session: Session, writer: Writer, tags: Tags) -> None:
        self.session, self.writer, self.tags = session, writer, tags
        self.offsets = frozenset(session.offsets)
        self.broker = session.settings.broker
        self.failed = 0  # cycles that could not be encoded
        self.pending: list[list[str]] = []  # encoded, waiting for the files' next flush

    def reach(self) -> datetime | None:
        return None  # InfluxDB is never where a run resumes from

    def write(self, cycle: Cycle) -> None:
        """Encode the cycle's points; they go to the writer when the session's files are next
        handed to the OS (:meth:`flush`). Never raises: a cycle that cannot be encoded (a bug)
        is logged, with its traceback the first time, and the recorder goes on (the files hold
        the cycle; a backfill writes it once fixed)."""
        try:
            lines = cycle_lines(cycle, self.tags, self.offsets)
            lines += health_lines(cycle, self.writer.stats(), self.broker, self.tags)
        except Exception:
            self.failed += 1
            log.error("cycle %s not written to InfluxDB: it could not be encoded",
                      cycle.snapshot.ts.isoformat(), exc_info=self.failed == 1)  # fmt: skip
            return
        self.pending.append(lines)
        self.session.flushes.wrote(self)  # after the cycle's files: flushed after them

    def flush(self) -> None:
        """Hand the pending cycles to the writer, whose spool has them at once. Called by the
        session's flush schedule right after the files it flushes, so a cycle reaches the
        spool only once its rows have reached the OS: a run killed at any moment resumes
        after every cycle it spooled, and never records one of them again (a second
        recording's health points, ``monitor_status`` tagged with the writer's state then,
        would land beside the first's)."""
        for lines in self.pending:
            self.writer.put(lines)
        self.pending.clear()

    def close(self, day_over: bool) -> None:
        """The files, then the cycles waiting here; with the day over, its weekday masters as
        they closed it; then the writer is closed (what InfluxDB has not taken by then stays
        in the spool for the next run)."""
        try:
            self.session.flushes.flush()
            self.flush()
            if day_over:
                self.writer.put(master_lines(self._masters(), self.session.day, self.tags))
        finally:
            away = self.writer.stats().state == "down"
            self.writer.close(AWAY_CLOSE_SECONDS if away else CLOSE_SECONDS)

    def _masters(self) -> list[tuple[Series, Profile]]:
        """The weekday master of every series the session wrote, as saved."""
        session = self.session
        offsets = sorted(self.offsets)
        labels = [offset_label(o) for o in offsets]
        labels += [pair_label(s) for s in offsets if s > 0 and -s in self.offsets]
        found = []
        root = session.settings.profiles_root
        for watch in session.watches:
            for label in labels:
                series = (watch.index, watch.bucket, label)
                path = weekday_path(root, *series, session.day)
                try:
                    stored = peek(path)
                except (Damaged, OSError, ValueError) as err:
                    log.warning("%s: not written to InfluxDB (%s)", path, err)
                    continue
                if stored is not None:
                    found.append((series, stored[0]))
        return found
