"""Publishing stream entries in order, never losing one: while Redis cannot take them they go to
a spool on local disk (:class:`opchain.outputs.influx.spool.Spool`, unbounded here), and a
background task publishes the spool, oldest first, once Redis is back. A spool left by a
process that died is published first by the next one on the same folder.

Publishing an entry twice is harmless, which is what makes this simple: every entry has an
explicit ID, never smaller than the one before it in its stream, and Redis refuses an ID not
newer than the stream's last ("equal or smaller"), counted here as a duplicate. So an entry
handed to Redis just before a crash (or a lost answer) is sent again without a second copy.
"""

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import redis.asyncio
import redis.exceptions

from opchain.outputs.influx.spool import Spool

log = logging.getLogger(__name__)

UNBOUNDED = 1 << 62  # bytes: the bus never drops the oldest cycles, the disk is the limit
FIRST_DELAY, MAX_DELAY = 0.2, 5.0  # seconds between attempts while Redis is away, doubling
_SHORT = struct.Struct("<H")
_LONG = struct.Struct("<I")

# Redis is away (or not yet back): wait and try again. An AuthenticationError (a wrong
# password) is a ConnectionError to redis-py, but no wait mends it: it is logged as an error.
_AWAY = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_WRONG = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)


def is_duplicate(err: redis.exceptions.ResponseError) -> bool:
    """Redis refusing an XADD ID not newer than the stream's last: the entry is there."""
    return "equal or smaller than the target stream top item" in str(err)


def pack_entry(stream: str, entry_id: str, fields: Mapping[str, bytes | str]) -> bytes:
    """One spool record: the stream, the ID and the fields, each length-prefixed."""
    parts = [_SHORT.pack(len(fields))]
    for text in (stream, entry_id):
        raw = text.encode()
        parts += [_LONG.pack(len(raw)), raw]
    for name, value in fields.items():
        raw = name.encode()
        data = value.encode() if isinstance(value, str) else bytes(value)
        parts += [_LONG.pack(len(raw)), raw, _LONG.pack(len(data)), data]
    return b"".join(parts)


def unpack_entry(body: bytes) -> tuple[str, str, dict[str, bytes]]:
    (count,) = _SHORT.unpack_from(body, 0)
    at = _SHORT.size

    def take() -> bytes:
        nonlocal at
        (size,) = _LONG.unpack_from(body, at)
        at += _LONG.size + size
        if at > len(body):
            raise ValueError("truncated spool record")
        return body[at - size : at]

    stream, entry_id = take().decode(), take().decode()
    fields = {take().decode(): take() for _ in range(count)}
    if at != len(body):
        raise ValueError("trailing bytes in a spool record")
    return stream, entry_id, fields


def where(client: "redis.asyncio.Redis") -> str:
    """Where a client connects, without its password (for log lines and /health)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    scheme = "rediss" if "SSL" in client.connection_pool.connection_class.__name__ else "redis"
    return f"{scheme}://{host}:{port}/{db}"


class Publisher:
    """Stream entries to Redis in order, through the disk while Redis is away.

    ``publish`` goes straight to Redis while the spool is empty, else behind the spool (order).
    ``state`` is ``ok`` or ``spooling``, ``detail`` a line for /health; ``published`` counts
    entries Redis took, ``duplicates`` those it already had.
    """

    def __init__(
        self,
        connect: Callable[[], "redis.asyncio.Redis"],
        spool_dir: Path,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self._connect = connect
        self._say = say or (lambda line: None)
        self._client: redis.asyncio.Redis | None = None
        self.spool_dir = spool_dir
        self._spool = Spool(spool_dir, UNBOUNDED, label="Bus spool")
        self._lock = asyncio.Lock()  # one writer to Redis at a time: direct or from the spool
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.published = 0
        self.duplicates = 0
        self._replayed = 0  # spooled entries published (or found there) since Redis went away
        self._away = False  # said "unreachable" and not yet "back"
        self._error = ""  # the last failure other than Redis being away, once logged
        self.detail = "publishing to Redis"
        if not self._spool.empty():
            self.detail = f"{self.spooled} entries spooled by a previous run in {spool_dir}"
            with contextlib.suppress(RuntimeError):  # no loop yet: the first publish starts it
                asyncio.get_running_loop()
                self._start()

    @property
    def spooled(self) -> int:
        return self._spool.points

    @property
    def state(self) -> str:
        return "ok" if self._spool.empty() else "spooling"

    async def publish(self, stream: str, entry_id: str, fields: Mapping[str, bytes | str]) -> None:
        """Return once Redis has the entry or the spool does. OSError when the disk refuses."""
        if self._spool.empty() and not self._closed:
            async with self._lock:
                if self._spool.empty() and await self._send(stream, entry_id, fields):
                    return
        self._append(stream, entry_id, fields)
        self._start()

    async def drain(self, timeout: float) -> bool:
        """Publish the spool now, for up to ``timeout`` seconds; True when it is empty."""
        try:
            async with asyncio.timeout(timeout):
                await self._drain()
        except TimeoutError:
            pass
        return self._spool.empty()

    async def close(self, timeout: float) -> None:
        """Drain for up to ``timeout``; what is left stays in the spool for the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._spool.empty():
            await self.drain(timeout)
        self._closed = True
        self._spool.close()
        await self._drop_client()

    # Inside.

    def _append(self, stream: str, entry_id: str, fields: Mapping[str, bytes | str]) -> None:
        if not self._spool.append(pack_entry(stream, entry_id, fields), 1):
            raise OSError(f"bus spool {self.spool_dir}: an entry could not be written (disk full?)")

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._retry(), name="bus-spool")

    async def _retry(self) -> None:
        """Publish the spool, waiting longer after each failure (0.2 s doubling to 5 s)."""
        delay = FIRST_DELAY
        try:
            while not self._spool.empty():
                try:
                    if await self._drain():
                        break
                except Exception:  # a bug or a disk error: said, and tried again later
                    log.exception("bus spool %s: publishing failed", self.spool_dir)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _drain(self) -> bool:
        """Publish spooled entries, oldest first, until the spool is empty (True) or Redis
        fails (False: the entry stays at the head)."""
        async with self._lock:
            while True:
                records = self._spool.peek(1)
                if not records:
                    break
                try:
                    stream, entry_id, fields = unpack_entry(records[0].body)
                except (ValueError, UnicodeDecodeError, struct.error) as err:
                    log.error("bus spool %s: a damaged entry skipped: %s", self.spool_dir, err)
                    self._spool.pop()
                    continue
                if not await self._send(stream, entry_id, fields):
                    return False
                self._spool.pop()
                self._replayed += 1
            if self._away or self._replayed:
                self._say(f"Redis back: published {self._replayed} spooled cycles")
            self._away, self._replayed = False, 0
            self.detail = "publishing to Redis"
            return True

    async def _send(self, stream: str, entry_id: str, fields: Mapping[str, bytes | str]) -> bool:
        """XADD one entry; True when Redis has it (now or from before), False when it could not
        take it (the caller spools it, or keeps it spooled)."""
        if self._client is None:
            try:
                self._client = self._connect()
            except Exception as err:  # settings that cannot make a client: kept, and said
                self._failed(None, err)
                return False
        client = self._client
        try:
            await client.xadd(stream, dict(fields), id=entry_id)  # type: ignore[arg-type]
        except _WRONG as err:
            self._failed(client, err)
            return False
        except _AWAY as err:
            self._went_away(client, err)
            await self._drop_client()
            return False
        except redis.exceptions.ResponseError as err:
            if not is_duplicate(err):
                self._failed(client, err)
                return False
            self.duplicates += 1
        except redis.exceptions.RedisError as err:
            self._failed(client, err)
            return False
        else:
            self.published += 1
        self._error = ""
        return True

    def _went_away(self, client: "redis.asyncio.Redis", err: Exception) -> None:
        self.detail = f"Redis at {where(client)} unreachable ({err}): spooling to {self.spool_dir}"
        if not self._away:
            self._away = True
            self._say(f"Redis at {where(client)} unreachable: spooling cycles to {self.spool_dir}")
            log.warning("%s", self.detail)

    def _failed(self, client: "redis.asyncio.Redis | None", err: Exception) -> None:
        """Redis answered, but refused the entry (or no client could be made): not a
        wait-and-see, an error to fix."""
        at = "no Redis client" if client is None else f"Redis at {where(client)}"
        message = f"{at} refused a stream entry: {type(err).__name__}: {err}"
        self.detail = f"{message}; spooling to {self.spool_dir}"
        if message != self._error:  # once per distinct error, not every retry
            self._error = message
            log.error("%s (kept in the spool %s)", message, self.spool_dir)
            self._say(message)

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
