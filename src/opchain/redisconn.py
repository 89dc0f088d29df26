"""The one way to reach Redis: a client built from the settings (URL or OP's host and port, a
password, TLS), used by the health check, the live output and the bus; and every Redis key
opchain uses (:class:`Keys`), under one prefix (``Settings.bus_prefix``), so several
deployments can share a Redis and nothing else names a key.

redis-py does the protocol, the TLS and the connection pool; this module only turns the
settings into its arguments, so every part of opchain connects alike.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from opchain.settings import Settings

TIMEOUT = 5.0  # seconds: connecting, and any one command (a blocking read adds its own block)


class NotConfigured(ValueError):
    """No Redis in the settings: neither a URL nor OP's REDIS_HOST."""


def url(settings: Settings) -> str:
    """Where Redis is, or NotConfigured."""
    found = settings.redis
    if found is None:
        raise NotConfigured(
            "no Redis configured: set OPCHAIN_REDIS_URL (or REDIS_URL, or REDIS_HOST and "
            "REDIS_PORT), or pass --bus redis://host:port/0"
        )
    return found


def _options(settings: Settings, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
    }
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if url(settings).startswith("rediss://") and settings.redis_tls_ca is not None:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca.expanduser())
    return options


def connect(settings: Settings, timeout: float = TIMEOUT) -> "redis.asyncio.Redis":
    """An asyncio client (a pool; it connects on first use, and again after a failure).

    A command fails at once when Redis cannot be reached (redis-py would retry it three times
    with waits of its own): every caller has its own backoff, says that Redis is away and
    what it does meanwhile (spool, keep serving, try again)."""
    once = redis.asyncio.retry.Retry(NoBackoff(), 0)
    return redis.asyncio.Redis.from_url(url(settings), retry=once, **_options(settings, timeout))


def connect_sync(settings: Settings, timeout: float = TIMEOUT) -> "redis.Redis":
    """A blocking client, for threads and short commands (failing at once, as ``connect``)."""
    once = redis.retry.Retry(NoBackoff(), 0)
    return redis.Redis.from_url(url(settings), retry=once, **_options(settings, timeout))


GROUP = "workers"  # the one consumer group every worker reads in


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "opchain"

    def stream(self, partition: str) -> str:
        """A partition's cycles (a partition is an index key: NIFTY, ...)."""
        return f"{self.prefix}:cycles:{partition}"

    def lease(self, partition: str) -> str:
        """Who owns a partition: ``<worker>:<token>``, expiring unless renewed."""
        return f"{self.prefix}:lease:{partition}"

    def fence(self, partition: str) -> str:
        """The partition's fencing counter: each new lease takes the next token."""
        return f"{self.prefix}:fence:{partition}"

    def start(self, partition: str) -> str:
        """The last ``start`` entry a worker took for the partition (a hash of its fields), for
        a worker taking over mid-session after the entry itself was acknowledged or trimmed."""
        return f"{self.prefix}:start:{partition}"

    def worker(self, name: str) -> str:
        """A living worker's heartbeat (expires with its leases)."""
        return f"{self.prefix}:worker:{name}"

    def workers(self) -> str:
        """The pattern of every worker's heartbeat key."""
        return f"{self.prefix}:worker:*"

    def live(self, index: str) -> str:
        """The newest live message of an index (the JSON ``opchain serve`` sends)."""
        return f"{self.prefix}:live:{index}"

    def channel(self) -> str:
        """Where each new live message is published: ``<INDEX>\\n<json>``."""
        return f"{self.prefix}:live"

    def partitions(self) -> str:
        """A set of the partitions collectors publish to (the streams workers look at)."""
        return f"{self.prefix}:partitions"


def entry_id(moment: datetime, seq: int) -> str:
    """A stream ID from the moment an entry is about (module docstring of :mod:`opchain.bus`)."""
    return f"{round(moment.timestamp() * 1000)}-{seq}"
