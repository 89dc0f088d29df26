"""Who owns a partition: a lease in Redis with a fencing token, and the fence on disk that every
write of the partition checks.

A worker takes a free partition with :func:`acquire`: one Lua script that, only if nobody holds
the lease, takes the next token of the partition's counter and sets the lease
(``<worker>:<token>``) to expire after ``ttl`` seconds. It keeps it with :func:`renew`, which
extends only a lease that is still its own. A worker that dies stops renewing, the lease
expires, and another takes the partition with a higher token.

Two rules keep a paused or cut-off worker from writing after its lease has gone:

- it counts its lease as good only until ``ttl`` after it *asked* for the last renewal, less a
  margin (:meth:`Lease.valid`), whatever Redis says later; the next owner can only have it after
  Redis expired it, which is later still;
- the taker writes its token to the partition's fence file (``layout.fence_path``) before it
  writes anything, and a worker checks the fence before each cycle (:meth:`Lease.check`): a
  newer token there means someone else owns the partition now. This is the fencing of the
  files themselves, which holds even across machines sharing the data directory.

A token is never reused: a counter lost with Redis (no persistence, or a restart that lost its
last second of AOF) is raised above the highest token on disk when the next lease is taken.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis.asyncio

from opchain.redisconn import Keys
from opchain.store import layout
from opchain.store.appendlog import write_atomic

MARGIN = 0.2  # of the lease's time: it is counted good for 80% of it after each renewal

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local token = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if token <= floor then
  token = floor + 1
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(RuntimeError):
    """A partition's lease is no longer this worker's: it must not write another byte of it."""


@dataclass
class Lease:
    partition: str
    worker: str
    token: int
    ttl: float  # seconds
    good_until: float  # time.monotonic(): the last renewal asked for + ttl, less the margin
    fence: Path

    @property
    def value(self) -> str:
        return f"{self.worker}:{self.token}"

    def valid(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.good_until

    def check(self) -> None:
        """Raise LeaseLost unless the lease is still good and the fence still holds its token
        (called before each cycle of the partition is written)."""
        if not self.valid():
            raise LeaseLost(f"{self.partition}: lease not renewed in time")
        fenced = read_fence(self.fence)
        if fenced != self.token:
            raise LeaseLost(f"{self.partition}: token {fenced} on the fence, ours is {self.token}")


def read_fence(path: Path) -> int:
    """The token on a fence file (0: none yet, or unreadable)."""
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


async def acquire(
    client: "redis.asyncio.Redis",
    keys: Keys,
    data_dir: Path,
    partition: str,
    worker: str,
    ttl: float,
) -> Lease | None:
    """Take ``partition`` if nobody holds it: the lease, its fence written; None if held."""
    fence = layout.fence_path(data_dir, partition)
    asked = time.monotonic()
    floor = read_fence(fence)
    millis = max(1, round(ttl * 1000))
    script: Any = client.eval(  # redis-py's eval is typed as both awaitable and not
        _ACQUIRE, 2, keys.lease(partition), keys.fence(partition), worker, millis, floor
    )
    token = await script
    if token is None:
        return None
    token = int(token)
    write_atomic(fence, f"{token}\n".encode(), durable=True)  # before any write of ours
    return Lease(partition, worker, token, ttl, asked + ttl * (1 - MARGIN), fence)


async def renew(client: "redis.asyncio.Redis", keys: Keys, lease: Lease) -> bool:
    """Extend the lease if it is still ours (and say whether it was)."""
    asked = time.monotonic()
    millis = max(1, round(lease.ttl * 1000))
    script: Any = client.eval(_RENEW, 1, keys.lease(lease.partition), lease.value, millis)
    if not cast(int, await script):
        return False
    lease.good_until = asked + lease.ttl * (1 - MARGIN)
    return True


async def release(client: "redis.asyncio.Redis", keys: Keys, lease: Lease) -> None:
    """Give the partition back at once (a clean stop), if it is still ours."""
    lease.good_until = 0.0
    script: Any = client.eval(_RELEASE, 1, keys.lease(lease.partition), lease.value)
    await script
