"""The InfluxDB writer: takes line-protocol lines from the collector and gets them to the
server in a thread of its own, so InfluxDB being slow, down or hung never costs a cycle, and a
kill of opchain never costs a point.

It is write-ahead: ``put`` gzip's its lines (level 1: about 0.7 ms for 300 lines of 200 bytes,
3 ms for 2000, most of it gzip) and appends them as one record to the disk spool, handed to the
OS before it returns; it never
touches the network, never waits on the thread and never raises. So a point ``put`` accepted
survives a SIGKILL of opchain the moment after (not a power cut: no fsync), and the next writer
on the same spool sends it; the cycles already in the data files are never re-sent, so nothing
else would. The spool is the only queue, bounded by ``influxdb_spool_mb``: a ``put`` that does
not fit is dropped, counted and reported (state ``full``, until the spool is half empty).

The thread sends only from the spool. It waits until the oldest unsent record is
``influxdb_flush_seconds`` old, or ``influxdb_batch_points`` points wait, or a drain or close
is in a hurry; then it takes as many whole records from the spool's head as fit in a batch (at
least one) and sends them as one request: their gzip members back to back, one gzip stream.
Once the server answered (written, or bad lines rejected: never sent again), the records leave
the spool. When it does not (down, hung past the timeout, 5xx, 429), they stay, and the same
head is sent again after a backoff (1 s doubling to 30 s, or the server's ``Retry-After``); the
server receives points in the order they were put. A record sent but not yet popped when
opchain dies is sent again by the next writer: a point written twice lands on the same series
and time (docs/influxdb.md, "Identity").

The writer reports itself as the ``influxdb_sink`` component (``opchain.health.state``), only
when its state changes: ``ok`` while the server takes writes (a few recent records in the spool
are normal); ``degraded`` while it replays a backlog after an outage (state ``spooling``) or
while the server has been away less than :data:`DOWN_ALERT_SECONDS`; ``down`` after that, and
while the spool is full (both alert).
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from opchain.health.checks import redact
from opchain.health.metrics import Metrics
from opchain.health.state import Status, report
from opchain.market.ist import IST
from opchain.outputs.influx.spool import Spool
from opchain.outputs.influx.transport import Outcome, Transport, compress, target_from
from opchain.settings import Settings

log = logging.getLogger(__name__)

SINK = "influxdb_sink"  # the health component
DOWN_ALERT_SECONDS = 300.0  # a server away this long makes the sink "down" (an alert)
BACKOFF = (1.0, 30.0)  # first wait after a failed write, and the longest
RETRY_AFTER_CAP = 300.0  # a server's Retry-After is honoured up to this many seconds
BACKLOG_FLUSHES = 3  # a record unsent after this many flush intervals is a backlog

State = Literal["ok", "spooling", "full", "down"]


@dataclass(frozen=True)
class WriterStats:
    points_attempted: int  # lines put
    points_written: int  # taken by the server (a replay of a taken batch counts again)
    points_rejected: int  # refused as bad lines (never retried)
    points_dropped: int  # refused by a full spool (or put after close)
    flush_latency_ms: float | None  # the last answered write's round trip
    queue_points: int  # in the spool, not yet written (the writer's only queue)
    spool_bytes: int  # on disk (records written but in a segment not yet finished included)
    spool_points: int  # the same as queue_points
    state: State
    last_error: str | None  # why the last write that failed failed


def _wall_clock() -> datetime:
    return datetime.now(IST)


class InfluxWriter:
    """Gets lines to InfluxDB in the background; see the module's docstring."""

    def __init__(
        self,
        settings: Settings,
        spool_dir: Path,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _wall_clock,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        target = target_from(settings)
        if target is None:
            raise ValueError("no InfluxDB URL is set (influxdb_url)")
        self._data_dir = settings.data_dir
        self._url = redact(target.url)
        self._batch = settings.influxdb_batch_points
        self._flush = settings.influxdb_flush_seconds
        self._spool_mb = settings.influxdb_spool_mb
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff
        self._transport = Transport(target)
        self._spool = Spool(spool_dir, int(settings.influxdb_spool_mb * (1 << 20)))
        self._spool_name = spool_dir.name  # the metrics' key: a worker has one per partition

        self._cond = threading.Condition()  # guards everything below, and appends
        self._attempted = self._written = self._rejected = self._dropped = 0
        self._published = (0, 0, 0)  # written, rejected, dropped as told to the metrics
        self._latency_ms: float | None = None
        self._last_error: str | None = None
        self._full = False  # set by a refused put; cleared once the spool is half empty
        self._backlog = not self._spool.empty()  # an outage's (or a previous run's) points
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._delay = backoff[0]
        self._busy = False
        self._urgent = 0  # drains waiting: send now, whatever the batch's size or age
        self._closing = self._stop = self._closed = False
        self._reported: tuple[Status, State] | None = None

        self._report()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------------------

    def put(self, lines: Sequence[str]) -> None:
        """Append lines to the spool as one record; returns once the OS has them, never
        waits on the server, never raises."""
        if not lines:
            return
        try:
            body = compress(lines)
            with self._cond:
                self._attempted += len(lines)
                if self._closed:  # the caller's mistake: said, counted, never a crash
                    self._dropped += len(lines)
                    log.warning("InfluxDB writer: %d points put after close dropped", len(lines))
                    return
                if self._spool.append(body, len(lines)):
                    self._cond.notify_all()  # the thread sets its clock by the oldest record
                    if not self._room_again():
                        return
                else:
                    self._dropped += len(lines)
                    if not self._full:
                        log.error("InfluxDB spool %s full (%s MB): dropping points",
                                  self._spool.folder, self._spool_mb)  # fmt: skip
                    self._full = True
            self._report()
            self._publish()
        except Exception:  # the collector goes on, whatever happens here
            log.exception("InfluxDB writer: put failed")

    def stats(self) -> WriterStats:
        with self._cond:
            points = self._spool.points
            return WriterStats(
                points_attempted=self._attempted,
                points_written=self._written,
                points_rejected=self._rejected,
                points_dropped=self._dropped,
                flush_latency_ms=self._latency_ms,
                queue_points=points,
                spool_bytes=self._spool.disk_bytes,
                spool_points=points,
                state=self._state(),
                last_error=self._last_error,
            )

    def drain(self, timeout: float) -> bool:
        """Send everything spooled now (a backoff in progress is cut short); True once the
        server has it all, False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent += 1
            self._retry_at, self._delay = 0.0, self._backoff[0]
            self._cond.notify_all()
            try:
                while self._busy or not self._spool.empty():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    def close(self, timeout: float) -> None:
        """Send what can be sent in ``timeout`` seconds; the rest stays in the spool, where
        the next writer on the same folder finds it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closing:
                return
            self._closing = True
        self.drain(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._closed = True
            self._spool.close()  # a thread still waiting on a hung server finds it closed
        self._report()
        self._publish()

    # -- the thread's side ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stop:
                        return
                    wait = self._wait()
                    if wait is None or wait > 0:
                        self._cond.wait(wait)
                        continue
                    self._busy = True
                try:
                    self._send()
                except Exception as err:  # a bug, an unreadable disk: back off, never die
                    log.exception("InfluxDB writer: a step failed")
                    with self._cond:
                        self._fail(Outcome("down", 0, 0, f"{type(err).__name__}: {err}"))
                finally:
                    self._report()  # before a drain waiting on this step returns
                    self._publish()
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            self._transport.close()

    def _wait(self) -> float | None:
        """Seconds until the spool's head is due (0: now; None: until woken). Holds
        ``_cond``."""
        now = time.monotonic()
        if self._retry_at > now:  # backing off (a drain cuts it short)
            return self._retry_at - now
        oldest = self._spool.oldest_at()
        if oldest is None:
            return None
        if self._urgent or self._closing or self._spool.points >= self._batch:
            return 0.0
        return max(0.0, oldest + self._flush - now)

    def _send(self) -> None:
        """Send the spool's head, whole records up to a batch, as one request; they leave
        the spool once the server answered."""
        records = self._spool.peek(self._batch)
        if not records:
            return
        points = sum(r.points for r in records)
        outcome = self._post(b"".join(r.body for r in records), points)
        if outcome.kind == "down":
            return
        self._spool.pop()
        with self._cond:
            self._room_again()
            if self._backlog:  # replaying after an outage: until what is left is recent
                oldest = self._spool.oldest_at()
                self._backlog = self._spool.points > self._batch or (
                    oldest is not None and time.monotonic() - oldest > BACKLOG_FLUSHES * self._flush
                )

    def _post(self, body: bytes, points: int) -> Outcome:
        started = time.monotonic()
        outcome = self._transport.send(body, points)
        with self._cond:
            if outcome.kind == "down":
                self._fail(outcome)
                return outcome
            self._latency_ms = (time.monotonic() - started) * 1000
            self._written += outcome.written
            self._rejected += outcome.rejected
            if self._down_since is not None:
                log.info("InfluxDB %s answers again", self._url)
            self._down_since, self._retry_at, self._delay = None, 0.0, self._backoff[0]
        if outcome.rejected:
            log.warning("InfluxDB %s rejected %d of %d points: %s",
                        self._url, outcome.rejected, points, outcome.detail)  # fmt: skip
        return outcome

    def _fail(self, outcome: Outcome) -> None:
        """A write not taken: wait before the next (holds ``_cond``)."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.warning("InfluxDB %s not taking writes (%s); points kept in the spool",
                        self._url, outcome.detail)  # fmt: skip
        wait = self._delay
        if outcome.retry_after is not None:
            wait = min(outcome.retry_after, RETRY_AFTER_CAP)
        self._retry_at = now + wait
        self._delay = min(self._backoff[1], self._delay * 2)
        self._last_error = outcome.detail
        self._backlog = True  # what waits meanwhile is a backlog once the server is back

    # -- both sides ----------------------------------------------------------------------

    def _room_again(self) -> bool:
        """Clear ``full`` once the spool is half empty (not at the first free byte: no
        flapping); True when it did. Holds ``_cond``."""
        if not self._full or self._spool.disk_bytes > self._spool.limit_bytes // 2:
            return False
        self._full = False
        log.info("InfluxDB spool %s has room again", self._spool.folder)
        return True

    def _state(self) -> State:
        if self._full:
            return "full"
        if self._down_since is not None:
            return "down"
        return "spooling" if self._backlog else "ok"

    def _report(self) -> None:
        """Tell ``opchain.health`` the sink's state when it changed."""
        with self._cond:
            state = self._state()
            away = self._down_since is not None and (
                time.monotonic() - self._down_since >= DOWN_ALERT_SECONDS
            )
            status: Status = "ok" if state == "ok" else "degraded"
            if state == "full" or (state == "down" and away):
                status = "down"
            if (status, state) == self._reported:
                return
            self._reported = status, state
            points = self._spool.points
            detail = {
                "ok": f"writing to {self._url}",
                "spooling": f"replaying {points} spooled points to {self._url}",
                "down": f"{self._url} not taking writes ({self._last_error}); "
                f"{points} points spooled",
                "full": f"spool full ({self._spool_mb:g} MB): {self._dropped} points dropped",
            }[state]
        report(self._data_dir, SINK, status, detail, self._clock())

    def _publish(self) -> None:
        if self._metrics is None:
            return
        with self._cond:
            now = self._written, self._rejected, self._dropped
            was, self._published = self._published, now
            spool_bytes, points = self._spool.disk_bytes, self._spool.points
        self._metrics.observe_influx(
            now[0] - was[0],
            now[1] - was[1],
            now[2] - was[2],
            spool_bytes,
            points,
            spool=self._spool_name,
        )
