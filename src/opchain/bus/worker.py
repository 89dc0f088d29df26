"""``opchain worker``: record the cycles collectors publish, partition by partition.

A partition is an index: its stream, its files. A worker takes partitions up to its fair share
of the living workers (:mod:`.lease`), reads their streams in the one consumer group, and for
each partition runs what ``opchain run`` runs after the collector: the merge and every output
of :data:`opchain.outputs.OUTPUTS`, opened for the partition alone (``Session.owns``). A
partition taken over mid-session resumes exactly as a restarted ``opchain run`` does, from how
far its files reach, so an entry delivered twice is written once.

An entry is acknowledged only once the files holding it have been handed to the operating
system (the session's flush), so the entries a killed worker held are still pending and the
next owner claims them (``XAUTOCLAIM``). A worker that cannot reach Redis says so in its health
state and tries again with growing waits; its leases run out meanwhile, and it takes its
partitions back when Redis is back unless another worker took them in between, in which case
it stops (:class:`.lease.LeaseLost`): whatever it had not flushed is the new owner's to write.
"""

import asyncio
import logging
import math
import os
import socket
import time
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis.asyncio
import redis.exceptions

from opchain.bus import lease as leases
from opchain.bus.codec import decode_loop, decode_snapshot
from opchain.bus.lease import Lease, LeaseLost
from opchain.bus.trim import trim_acknowledged
from opchain.collect.watch import plan_watches
from opchain.health import state as health
from opchain.health.storage import StorageDown, StorageHealth
from opchain.market.clock import WallClock
from opchain.market.indices import INDIA_VIX
from opchain.market.instruments import parse_dump
from opchain.market.ist import IST, trading_date
from opchain.merge.cycle import LoopStats
from opchain.merge.stats import History
from opchain.model import Instrument
from opchain.outputs import OUTPUTS, Outlets, Session, opened
from opchain.pipeline import history_for, quiet_gc, write_cycle
from opchain.redisconn import GROUP, Keys
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.appendlog import FlushSchedule, write_atomic

if TYPE_CHECKING:  # prometheus-client is loaded only where metrics are kept
    from opchain.health.metrics import Metrics

log = logging.getLogger(__name__)
Say = Callable[[str], None]
Fields = dict[bytes, bytes]

BATCH = 10  # entries read at once: the leases are looked after between batches
READ_BLOCK = 1000  # ms a read waits for entries: well within the client's socket timeout
TRIM_SECONDS = 60.0
BACKOFF = (0.5, 10.0)  # first and longest wait before trying Redis again, s
AWAY = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# A wrong password (or user) is a ConnectionError to redis-py, but no wait mends it.
WRONG = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)


class BusRefused(RuntimeError):
    """Redis refused this worker's credentials: the message is the one line to say."""


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Recording:
    """One partition's session in progress: its outputs and what its analytics remember."""

    day: date
    contracts: dict[int, Instrument]
    outlets: Outlets
    closing: ExitStack
    flushes: FlushSchedule
    history: History
    resume: datetime | None
    cycles: int = 0
    skipped: int = 0


@dataclass
class Partition:
    name: str
    lease: Lease
    recording: Recording | None = None
    handled: list[bytes] = field(default_factory=list)  # entry IDs not acknowledged yet
    last: tuple[int, int] = (0, 0)  # the newest entry handled (an older one is not again)
    reclaim: bool = False  # entries may have been read and not handled (Redis went away)


class Worker:
    def __init__(
        self,
        settings: Settings,
        client: "redis.asyncio.Redis",
        name: str | None = None,
        say: Say | None = None,
        metrics: "Metrics | None" = None,
    ) -> None:
        self.settings, self.client = settings, client
        self.metrics = metrics  # the process's /metrics: its cycles and its InfluxDB writers
        self.name = name or worker_name()
        self.say = say or (lambda line: log.info("%s", line))
        self.keys = Keys(settings.bus_prefix)
        self.ttl = settings.bus_lease_seconds
        self.owned: dict[str, Partition] = {}
        self.lead = settings.indices[0]  # its owner writes INDIA VIX's overview too
        self.cycles = 0  # written, all partitions
        self._kept = 0.0  # when the leases were last looked after (monotonic)
        self._trimmed = 0.0
        self._down: str | None = None  # why Redis cannot be reached, while it cannot
        self._reported = False
        self._to_ack: dict[str, list[bytes]] = {}  # flushed, by partition
        self.stop = asyncio.Event()  # run's
        self.storage = StorageHealth(settings.data_dir, WallClock(), self.say)

    # The loop.

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then close every session (flushed, acknowledged) and
        give the partitions back."""
        wait = BACKOFF[0]
        self.stop = stop
        with quiet_gc():
            while not stop.is_set():
                try:
                    await self.step()
                    wait = BACKOFF[0]
                except WRONG as err:  # its files flushed; what is not on disk stays pending
                    await self.close()
                    raise BusRefused(f"Redis refused the worker's credentials: {err}") from err
                except AWAY as err:  # LeaseLost goes up with nothing flushed: not ours now
                    self._away(err, wait)
                    self._kept = 0.0  # look after the leases first thing when it is back
                    for part in self.owned.values():
                        part.reclaim = True
                    await self._pause(wait)
                    wait = min(wait * 2, BACKOFF[1])
                except Exception as err:
                    try:
                        self.storage.check(err)  # a refused write: StorageDown, else re-raised
                    except StorageDown as down:
                        self.say(f"storage: {down}; what is not on disk waits in Redis; trying "
                                 f"again in {wait:g} s")  # fmt: skip
                        self._drop()
                        await self._pause(wait)
                        wait = min(wait * 2, BACKOFF[1])
                        continue
                    raise
            await self.close()
        health.forget(self.settings.data_dir, self.component)  # stopped cleanly: gone for good

    def _drop(self) -> None:
        """A write was refused: close every session as well as it can be closed and
        acknowledge nothing of it; its entries are claimed again (this worker's own pending
        ones) and the session reopened from how far its files reach."""
        for part in self.owned.values():
            rec, part.recording = part.recording, None
            part.handled, part.last, part.reclaim = [], (0, 0), True
            if rec is not None:
                try:
                    rec.closing.close()
                except Exception as err:  # the disk is still full: what is written stays
                    log.warning("%s: closing after a refused write: %s", part.name, err)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the worker is asked to stop."""
        waiting = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({waiting}, timeout=seconds)
        waiting.cancel()

    async def step(self) -> None:
        """Look after the leases when due, then read and record one batch."""
        if time.monotonic() - self._kept >= self.ttl / 3:
            await self.keep()
            await self.balance()
        if not self.owned:
            await self._pause(self.ttl / 4)  # nothing to read: look for partitions again
            return
        for part in self.owned.values():
            if part.reclaim:  # what was read before Redis went away, and not handled
                for entry_id, fields in await self._claim(self.keys.stream(part.name)):
                    await self.handle(part, entry_id, fields)
                part.reclaim = False
        streams: Any = {self.keys.stream(p): ">" for p in self.owned}
        block = min(READ_BLOCK, max(1, round(self.ttl * 250)))  # ms: within the lease
        answer: Any = await self.client.xreadgroup(GROUP, self.name, streams, BATCH, block)
        self._back()
        if not answer:
            self._idle()
            await self._ack_flushed()
            return
        for stream, entries in answer:
            found = self.owned.get(_partition(stream))
            if found is None:
                continue
            part = found
            for entry_id, fields in entries:
                await self.handle(part, entry_id, fields)
        await self._ack_flushed()

    async def keep(self) -> None:
        """Heartbeat, and renew every lease (or take it back, or give up)."""
        self._kept = time.monotonic()
        await self.client.set(self.keys.worker(self.name), b"1", px=round(self.ttl * 1000))
        self._back()  # said before anything done now that Redis answers
        for part in list(self.owned.values()):
            if not await leases.renew(self.client, self.keys, part.lease):
                await self._retake(part)

    async def balance(self) -> None:
        """Take or give back partitions to hold a fair share of them, and trim what every
        group has acknowledged."""
        share = math.ceil(len(self.settings.indices) / await self._living())
        for name in self.settings.indices:
            if len(self.owned) >= share:
                break
            if name not in self.owned:
                await self._take(name)
        if len(self.owned) > share:  # another worker came: give one back, cleanly
            await self._give_back(self.owned[sorted(self.owned)[-1]])
        if time.monotonic() - self._trimmed >= TRIM_SECONDS:
            self._trimmed = time.monotonic()
            for name in self.owned:
                await trim_acknowledged(self.client, self.keys.stream(name))
        self._back()

    # Partitions.

    async def _take(self, name: str) -> None:
        lease = await leases.acquire(
            self.client, self.keys, self.settings.data_dir, name, self.name, self.ttl
        )
        if lease is None:
            return
        part = self.owned[name] = Partition(name, lease)
        stream = self.keys.stream(name)
        try:
            await self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        claimed = await self._claim(stream)
        self.say(f"{name}: taken (token {lease.token}), {len(claimed)} pending entries claimed")
        for entry_id, fields in claimed:
            await self.handle(part, entry_id, fields)
        await self._ack_flushed()

    async def _claim(self, stream: str) -> list[tuple[bytes, Fields]]:
        """Every entry of the stream some consumer was given and did not acknowledge (the last
        owner's), now this worker's, oldest first."""
        claimed: list[tuple[bytes, Fields]] = []
        start: Any = "0-0"
        while True:
            answer = await self.client.xautoclaim(stream, GROUP, self.name, 0, start, count=500)
            start, entries = answer[0], answer[1]
            claimed += [(i, f) for i, f in entries if f]  # a trimmed entry comes back empty
            if start in (b"0-0", "0-0"):
                break
        return sorted(claimed, key=lambda entry: _id_key(entry[0]))

    async def _retake(self, part: Partition) -> None:
        """The lease ran out (Redis was away): take it again if nobody had it since (the fence
        still holds our token), else stop: the partition is someone else's now."""
        held = part.lease.token
        if leases.read_fence(part.lease.fence) == held:
            lease = await leases.acquire(
                self.client, self.keys, self.settings.data_dir, part.name, self.name, self.ttl
            )
            if lease is not None:
                part.lease = lease
                self.say(f"{part.name}: lease taken back (token {held} -> {lease.token})")
                return
        raise LeaseLost(f"{part.name}: taken over by another worker while Redis was away")

    async def _give_back(self, part: Partition) -> None:
        self._close(part, day_over=False)
        await self._ack_flushed()
        del self.owned[part.name]
        await leases.release(self.client, self.keys, part.lease)
        self.say(f"{part.name}: given back, for another worker to share the work")

    async def _living(self) -> int:
        found = 0
        async for _ in self.client.scan_iter(match=self.keys.workers(), count=100):
            found += 1
        return max(found, 1)

    # Entries.

    async def handle(self, part: Partition, entry_id: bytes, fields: Fields) -> None:
        """Record one entry of the partition's stream (acknowledged later, once flushed)."""
        at = _id_key(entry_id)
        if at <= part.last:
            return  # handled already, waiting for its flush
        if time.monotonic() - self._kept >= self.ttl / 3:  # recording takes time: renew first
            await self.keep()
        kind = fields.get(b"kind", b"").decode()
        if kind == "cycle":
            await self._cycle(part, entry_id, fields)
        elif kind == "start":
            await self._start(part, fields)
            part.handled.append(entry_id)
        elif kind == "end":
            await self._end(part, fields)
            part.handled.append(entry_id)
        else:
            log.error("%s: entry %s of unknown kind %r skipped", part.name, entry_id, kind)
            part.handled.append(entry_id)
        part.last = at

    async def _start(self, part: Partition, fields: Fields) -> None:
        day = date.fromisoformat(fields[b"day"].decode())
        if part.recording is not None and part.recording.day == day:
            return  # a collector restarted mid-session
        await self.client.hset(self.keys.start(part.name), mapping=dict(fields))  # type: ignore[arg-type]
        part.lease.check()
        if part.recording is not None:
            self._close(part, day_over=False)  # the collector never finished that day
        self._open(part, fields)

    async def _end(self, part: Partition, fields: Fields) -> None:
        day = date.fromisoformat(fields[b"day"].decode())
        current = part.recording is not None and part.recording.day == day
        if not current and await self._reopen(part, day) is None:
            return
        part.lease.check()
        self._close(part, day_over=True)

    async def _cycle(self, part: Partition, entry_id: bytes, fields: Fields) -> None:
        moment = _moment(entry_id)
        rec = part.recording
        if rec is None or rec.day != trading_date(moment):
            rec = await self._reopen(part, trading_date(moment))
            if rec is None:
                log.error("%s: no session start for %s; entry %s skipped", part.name,
                          trading_date(moment), entry_id.decode())  # fmt: skip
                part.handled.append(entry_id)
                return
        if rec.resume is not None and moment <= rec.resume:
            rec.skipped += 1  # on disk already (a redelivery, or a takeover's first entries)
            part.handled.append(entry_id)
            return
        part.lease.check()
        flushes_before = rec.flushes.count
        snapshot = decode_snapshot(fields[b"snap"], rec.contracts)
        known = {k: v for k, v in decode_loop(fields[b"loop"]).items() if k in LoopStats._fields}
        loop = LoopStats(**known)  # type: ignore[arg-type]  # a newer collector's extras left out
        cycle = write_cycle(self.settings, rec.outlets, rec.history, snapshot, loop)
        if self.metrics is not None:
            self.metrics.observe_cycle(cycle)
        rec.outlets.settle()
        log.debug("%s %s written", part.name, snapshot.ts.isoformat())
        rec.cycles += 1
        self.cycles += 1
        self.storage.stored()
        if rec.flushes.count != flushes_before:  # what came before this entry is on disk
            part.handled, flushed = [entry_id], part.handled
            self._on_disk(part, flushed)
        else:
            part.handled.append(entry_id)

    # Sessions.

    def _open(self, part: Partition, fields: Fields) -> Recording:
        """Open the partition's outputs for the session a ``start`` entry describes."""
        settings = self.settings
        day = date.fromisoformat(fields[b"day"].decode())
        planned = datetime.fromisoformat(fields[b"planned"].decode())
        text = zlib.decompress(fields[b"dump"])
        path = layout.instruments_path(settings.data_dir, day)
        if not path.exists() or path.read_bytes() != text:
            write_atomic(path, text)
        dump = parse_dump(text.decode(), str(path))
        mine = settings.model_copy(update={"indices": (part.name,)})
        watches, _ = plan_watches(dump, mine.indices, planned)
        flushes = FlushSchedule(settings.flush_seconds)
        owns = (part.name, INDIA_VIX.key) if part.name == self.lead else (part.name,)
        session = Session(
            settings=mine,
            day=day,
            watches=watches,
            offsets=settings.strike_offsets,
            flushes=flushes,
            owns=owns,
            metrics=self.metrics,
        )
        closing = ExitStack()
        outlets = closing.enter_context(opened(session, OUTPUTS))
        try:
            resume = outlets.reach() if watches else None
            history = history_for(mine, watches, day, resume)
        except BaseException:
            closing.close()
            raise
        contracts = {i.instrument_token: i for i in dump}
        rec = Recording(day, contracts, outlets, closing, flushes, history, resume)
        part.recording = rec
        after = f", resuming after {resume:%H:%M:%S}" if resume else ""
        self.say(f"{part.name} {day}: recording{after}")
        return rec

    async def _reopen(self, part: Partition, day: date) -> Recording | None:
        """A cycle of a day whose ``start`` entry this worker did not see (it took the
        partition over mid-session): the start the last owner kept in Redis."""
        kept: Any = await self.client.hgetall(self.keys.start(part.name))
        fields: Fields = kept
        if not fields or fields.get(b"day", b"").decode() != day.isoformat():
            return None
        part.lease.check()
        if part.recording is not None:
            self._close(part, day_over=False)
        return self._open(part, fields)

    def _close(self, part: Partition, day_over: bool) -> None:
        rec, part.recording = part.recording, None
        if rec is None:
            return
        rec.outlets.day_over = day_over
        rec.closing.close()  # flushed: everything handled so far is on disk
        self._on_disk(part, part.handled)
        part.handled = []
        written = rec.outlets.written()
        end = "day closed" if day_over else "stopped"
        self.say(f"{part.name} {rec.day}: {end}; {rec.cycles} cycles written "
                 f"({rec.skipped} already on disk), {written.rows_added} split rows")  # fmt: skip

    # Acknowledging.

    def _idle(self) -> None:
        """Nothing new: hand what is written to the OS, so it can be acknowledged."""
        for part in self.owned.values():
            if part.handled:
                if part.recording is not None:
                    part.recording.flushes.flush()
                self._on_disk(part, part.handled)
                part.handled = []

    def _on_disk(self, part: Partition, ids: list[bytes]) -> None:
        """Entries whose files are flushed: acknowledged at the next :meth:`_ack_flushed`."""
        self._to_ack.setdefault(part.name, []).extend(ids)

    async def _ack_flushed(self) -> None:
        for name, ids in list(self._to_ack.items()):
            if ids:
                await self.client.xack(self.keys.stream(name), GROUP, *ids)
            del self._to_ack[name]

    async def close(self) -> None:
        """A clean stop: every session closed (its files flushed), acknowledged, and the
        partitions given back, so another worker goes on at once."""
        for part in list(self.owned.values()):
            self._close(part, day_over=False)
        try:
            await self._ack_flushed()
            for part in self.owned.values():
                await leases.release(self.client, self.keys, part.lease)
            await self.client.delete(self.keys.worker(self.name))
        except AWAY as err:
            log.warning("Redis unreachable at stop (%s): the leases run out by themselves", err)
        self.owned.clear()

    # Health.

    def _away(self, err: BaseException, wait: float) -> None:
        detail = f"Redis unreachable: {err}; trying again in {wait:g} s"
        if self._down is None:
            self.say(f"worker {self.name}: {detail}")
        self._down = detail
        health.report(self.settings.data_dir, self.component, "down", detail, _now())

    def _back(self) -> None:
        if self._down is not None or not self._reported:
            if self._down is not None:
                self.say(f"worker {self.name}: Redis back")
            self._down = None
            self._reported = True
            detail = f"worker {self.name} reading {self.keys.stream('*')}"
            health.report(self.settings.data_dir, self.component, "ok", detail, _now())

    @property
    def component(self) -> str:
        return f"worker-{self.name}"


def _partition(stream: bytes | str) -> str:
    text = stream.decode() if isinstance(stream, bytes) else stream
    return text.rsplit(":", 1)[-1]


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.decode().partition("-")
    return int(ms), int(seq or 0)


def _moment(entry_id: bytes) -> datetime:
    """The moment an entry is about, from its ID (:mod:`opchain.bus`)."""
    ms = _id_key(entry_id)[0]
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(IST)


def _now() -> datetime:
    return datetime.now(IST)
