"""The live messages in Redis, for every ``opchain serve --bus`` instance (docs/scale-out.md).

Each cycle's ``Live`` message per index (the bytes the live files and the Hub would serve:
``store.live.encode(merge.view.live_messages(...))``) is SET at the index's live key and
PUBLISHed on the live channel (:class:`opchain.redisconn.Keys`). Every cycle, unlike the live
files' once a second: every API instance pushes each one to its WebSocket clients.

Redis being slow or away must cost the recorder nothing, so :meth:`RedisLive.write` only puts
the cycle in a one-slot-per-index handoff (a newer cycle replaces one not yet sent) and a
thread builds the messages and sends them. When Redis is away the thread retries with backoff,
logs one line when it goes and one when it is back, and reports the ``redis_live`` component's
state (:mod:`opchain.health.state`) on each change. Not durable: it never decides where a
restart resumes.
"""

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import redis
import redis.exceptions

from opchain import redisconn
from opchain.health import state
from opchain.health.checks import redact
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle
from opchain.merge.view import live_messages
from opchain.outputs.base import Session
from opchain.store.live import encode

log = logging.getLogger(__name__)

COMPONENT = "redis_live"
TIMEOUT = 2.0  # seconds: connecting, and one round trip; the recorder never waits on it
FIRST_RETRY, LAST_RETRY = 0.5, 5.0  # seconds between attempts while Redis is away, doubling
CLOSE_WAIT, CLOSE_WAIT_DOWN = 2.0, 0.5  # seconds close() gives what is pending


def frame(index: str, data: bytes) -> bytes:
    """What the live channel carries: ``<INDEX>\\n<json>`` (:meth:`redisconn.Keys.channel`)."""
    return index.encode() + b"\n" + data


class RedisLive:
    name = "redis"
    durable = False

    def __init__(
        self,
        session: Session,
        now: Callable[[], datetime] = lambda: datetime.now(IST),
    ) -> None:
        settings = session.settings
        self.data_dir, self.rate, self.now = settings.data_dir, settings.rate, now
        self.where = redact(redisconn.url(settings))
        self.keys = redisconn.Keys(settings.bus_prefix)
        self.client = redisconn.connect_sync(settings, TIMEOUT)
        self.status: state.Status | None = None  # None until the first attempt
        self.sent = 0  # messages Redis took
        self._pending: dict[str, Cycle] = {}  # index -> newest cycle not yet sent
        self._closing = False
        self._lock = threading.Condition()  # guards the above; notified on every change
        self._thread = threading.Thread(target=self._run, name="redis-live", daemon=True)
        self._thread.start()

    def reach(self) -> datetime | None:
        return None

    def write(self, cycle: Cycle) -> None:
        """Hand the cycle over; never waits on Redis."""
        with self._lock:
            for chain in cycle.snapshot.chains:
                self._pending[chain.index] = cycle
            self._lock.notify_all()

    def close(self, day_over: bool) -> None:
        """Send what is pending, for at most CLOSE_WAIT seconds (CLOSE_WAIT_DOWN while Redis
        is away), then let go."""
        with self._lock:
            self._closing = True
            wait = CLOSE_WAIT_DOWN if self.status == "down" else CLOSE_WAIT
            self._lock.notify_all()
        self._thread.join(wait)
        self.client.close()

    def wait_for(self, status: state.Status, timeout: float) -> bool:
        """Whether the output's state is ``status`` within ``timeout`` seconds (for tests and
        for whoever must know, without polling)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.status == status, timeout)

    # The thread.

    _busy = False  # a batch is out of the handoff and not yet sent

    def _run(self) -> None:
        delay = FIRST_RETRY
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._pending) or self._closing)
                if not self._pending:
                    return  # closing, nothing left
                batch, self._pending, self._busy = self._pending, {}, True
                closing = self._closing
            try:
                self._send(batch)
            except (redis.exceptions.RedisError, OSError) as err:
                with self._lock:
                    self._busy = False
                    for index, cycle in batch.items():  # unless a newer one came meanwhile
                        self._pending.setdefault(index, cycle)
                    self._set("down", f"Redis at {self.where} unreachable: {err}")
                    if closing:
                        return
                    self._lock.wait_for(lambda: self._closing, delay)
                delay = min(delay * 2, LAST_RETRY)
                continue
            with self._lock:
                self._busy = False
                self.sent += len(batch)
                self._set("ok", f"publishing live messages to {self.where}")
                self._lock.notify_all()
            delay = FIRST_RETRY

    def _send(self, batch: dict[str, Cycle]) -> None:
        """SET and PUBLISH each index's message, in one round trip."""
        by_cycle: dict[int, tuple[Cycle, list[str]]] = {}
        for index, cycle in batch.items():  # one build per cycle, for its indices pending
            by_cycle.setdefault(id(cycle), (cycle, []))[1].append(index)
        pipe = self.client.pipeline(transaction=False)
        for cycle, indices in by_cycle.values():
            for index, message in live_messages(cycle, self.rate, indices).items():
                data = encode(message)
                pipe.set(self.keys.live(index), data)
                pipe.publish(self.keys.channel(), frame(index, data))
        pipe.execute()

    def _set(self, status: state.Status, detail: str) -> None:
        """Say a change of state (called holding the lock)."""
        if status == self.status:
            return
        if status == "down":
            log.warning("live messages not published: %s; retrying", detail)
        elif self.status == "down":
            log.warning("live messages published again to %s", self.where)
        self.status = status
        state.report(self.data_dir, COMPONENT, status, detail, self.now())
        self._lock.notify_all()


def open_output(session: Session) -> RedisLive | None:
    if session.settings.redis is None:
        return None
    return RedisLive(session)
