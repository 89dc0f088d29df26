"""The InfluxDB writer: takes line-protocol lines from the collector and gets them to the
server in a thread of its own, so InfluxDB being slow, down or hung never costs a cycle.

``put`` only appends to a bounded queue in memory. The thread sends batches of
``influxdb_batch_points`` lines, or whatever is queued once the oldest line has waited
``influxdb_flush_seconds``. When the server does not take a batch (down, hung past the timeout,
5xx, 429), the batch and everything queued behind it go to the disk spool, and the thread backs
off (1 s doubling to 30 s, or the server's ``Retry-After``); while it backs off, queued lines are
spooled every flush interval. While the spool holds anything, new lines go behind it, so the
server receives batches in the order they were put; once it answers, the spool is replayed,
oldest first. A queue that fills up before the thread can spool it (a hung server holds the
thread for the timeout) is spooled by ``put`` itself: the one case ``put`` touches the disk.

A batch being sent stays at the head of the queue until the server answers: a spill meanwhile
takes it to the spool too, so it can be written twice but never lost; a point written twice
lands on the same series and time (docs/influxdb.md, "Identity"). Bad lines (400) are counted
as rejected and never sent again. The spool is bounded; what does not fit is dropped, counted
and reported (state ``full``).

The writer reports itself as the ``influxdb_sink`` component (``opchain.health.state``):
``ok``; ``degraded`` while it replays a backlog or while the server has been away less than
:data:`DOWN_ALERT_SECONDS`; ``down`` after that, and while the spool is full (both alert).
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
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

State = Literal["ok", "spooling", "full", "down"]


@dataclass(frozen=True)
class WriterStats:
    points_attempted: int  # lines put
    points_written: int  # taken by the server (a replay of a taken batch counts again)
    points_rejected: int  # refused as bad lines (never retried)
    points_dropped: int  # refused by a full spool (or put after close)
    flush_latency_ms: float | None  # the last answered write's round trip
    queue_points: int  # in memory (with lines on their way to the spool)
    spool_bytes: int  # on disk
    spool_points: int
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
        self._queue_limit = settings.influxdb_queue_points
        self._spool_mb = settings.influxdb_spool_mb
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff
        self._transport = Transport(target)
        self._spool = Spool(spool_dir, int(settings.influxdb_spool_mb * (1 << 20)))

        self._cond = threading.Condition()  # guards everything below
        self._order = threading.Lock()  # held while lines move from the queue to the spool
        self._queue: deque[str] = deque()
        self._queued_at: float | None = None  # when the oldest queued line came
        self._generation = 0  # bumped whenever the queue is spilled to the spool
        self._moving = 0  # lines taken from the queue, not yet in the spool (or dropped)
        self._attempted = self._written = self._rejected = self._dropped = 0
        self._published = (0, 0, 0)  # written, rejected, dropped as told to the metrics
        self._latency_ms: float | None = None
        self._last_error: str | None = None
        self._full = False
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
        """Queue lines for InfluxDB; returns at once and never raises."""
        if not lines:
            return
        try:
            with self._cond:
                self._attempted += len(lines)
                if self._closed:  # the caller's mistake: said, counted, never a crash
                    self._dropped += len(lines)
                    log.warning("InfluxDB writer: %d points put after close dropped", len(lines))
                    return
                self._queue.extend(lines)
                if self._queued_at is None:
                    self._queued_at = time.monotonic()
                    self._cond.notify_all()
                elif len(self._queue) >= self._batch:
                    self._cond.notify_all()
                over = len(self._queue) > self._queue_limit
            if over:
                self._spill()
        except Exception:  # the collector goes on, whatever happens here
            log.exception("InfluxDB writer: put failed")

    def stats(self) -> WriterStats:
        with self._cond:
            return WriterStats(
                points_attempted=self._attempted,
                points_written=self._written,
                points_rejected=self._rejected,
                points_dropped=self._dropped,
                flush_latency_ms=self._latency_ms,
                queue_points=len(self._queue) + self._moving,
                spool_bytes=self._spool.disk_bytes,
                spool_points=self._spool.points,
                state=self._state(),
                last_error=self._last_error,
            )

    def drain(self, timeout: float) -> bool:
        """Send everything queued and spooled now (a backoff in progress is cut short); True
        once the server has it all, False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent += 1
            self._retry_at, self._delay = 0.0, self._backoff[0]
            self._cond.notify_all()
            try:
                while self._queue or self._moving or self._busy or not self._spool.empty():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    def close(self, timeout: float) -> None:
        """Send what can be sent in ``timeout`` seconds; the rest goes to the spool, where
        the next writer on the same folder finds it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closing:
                return
            self._closing = True
        drained = self.drain(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if not drained:
            self._spill()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._closed = True
        self._report()
        self._publish()
        self._spool.close()  # a thread still waiting on a hung server finds it closed

    # -- the thread's side ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stop:
                        return
                    action, wait = self._next()
                    if action is None:
                        self._cond.wait(wait)
                        continue
                    self._busy = True
                try:
                    action()
                except Exception as err:  # a bug, a full disk: back off, never die
                    log.exception("InfluxDB writer: a step failed")
                    with self._cond:
                        self._fail(Outcome("down", 0, 0, f"{type(err).__name__}: {err}"))
                finally:
                    with self._cond:
                        if self._spool.empty():
                            self._full = False
                    self._report()  # before a drain waiting on this step returns
                    self._publish()
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            self._transport.close()

    def _next(self) -> tuple[Callable[[], None] | None, float | None]:
        """What to do now, or how long to wait (None: until woken). Holds ``_cond``."""
        now = time.monotonic()
        due = self._queued_at + self._flush if self._queued_at is not None else None
        hurry = bool(self._urgent or self._closing)
        if self._retry_at > now:  # backing off: keep the queue on disk meanwhile
            if due is not None and (hurry or due <= now):
                return self._spill, None
            return None, min(self._retry_at, due if due is not None else self._retry_at) - now
        if not self._spool.empty():
            return self._replay, None
        if due is None:
            return None, None
        if hurry or due <= now or len(self._queue) >= self._batch:
            return self._send, None
        return None, due - now

    def _send(self) -> None:
        """Send the head of the queue; it leaves the queue once the server answers."""
        with self._cond:
            lines = list(islice(self._queue, self._batch))
            generation = self._generation
        outcome = self._post(compress(lines), len(lines))
        if outcome.kind == "down":
            self._spill()  # the head and all behind it, in order
            return
        with self._cond:
            if self._generation == generation:  # else a spill took them: they go again
                for _ in lines:
                    self._queue.popleft()
                if not self._queue:
                    self._queued_at = None

    def _replay(self) -> None:
        """Send the spool's oldest batch; a queue that is due meanwhile goes behind it (whole
        batches, not one small record a step)."""
        with self._cond:
            now, since = time.monotonic(), self._queued_at
            due = since is not None and (
                len(self._queue) >= self._batch or now >= since + self._flush or self._urgent > 0
            )
        if due:
            self._spill()
        record = self._spool.peek()
        if record is None:
            return
        outcome = self._post(record.body, record.points)
        if outcome.kind != "down":
            self._spool.pop()

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
            log.warning("InfluxDB %s not taking writes (%s); spooling", self._url, outcome.detail)
        wait = self._delay
        if outcome.retry_after is not None:
            wait = min(outcome.retry_after, RETRY_AFTER_CAP)
        self._retry_at = now + wait
        self._delay = min(self._backoff[1], self._delay * 2)
        self._last_error = outcome.detail

    # -- both sides ----------------------------------------------------------------------

    def _spill(self) -> None:
        """Move the queue to the spool, behind what is there. Lines on their way count as
        queued (``_moving``) until the spool has them or they are dropped, so the counts
        always add up and a drain never ends before they land."""
        with self._order:
            with self._cond:
                lines = list(self._queue)
                self._queue.clear()
                self._queued_at = None
                self._generation += 1
                self._moving += len(lines)
            if not lines:
                return
            for start in range(0, len(lines), self._batch):
                chunk = lines[start : start + self._batch]
                stored = self._spool.append(compress(chunk), len(chunk))
                with self._cond:
                    self._moving -= len(chunk)
                    if not stored:
                        self._dropped += len(chunk)
                        if not self._full:
                            log.error("InfluxDB spool %s full (%s MB): dropping points",
                                      self._spool.folder, self._spool_mb)  # fmt: skip
                    self._full = not stored
                    self._cond.notify_all()
        self._publish()

    def _state(self) -> State:
        if self._full:
            return "full"
        if self._down_since is not None:
            return "down"
        return "ok" if self._spool.empty() else "spooling"

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
            spool_bytes, queued = self._spool.disk_bytes, len(self._queue) + self._moving
        self._metrics.observe_influx(
            now[0] - was[0], now[1] - was[1], now[2] - was[2], spool_bytes, queued
        )
