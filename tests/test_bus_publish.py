"""The bus publisher against a real redis-server: entries in order; Redis killed and restarted
(on its append-only file) while cycles keep coming; a publisher killed while spooling, its
spool published by the next; an entry Redis refuses for another reason kept, and said."""

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis.asyncio

from opchain.bus.publish import Publisher, pack_entry, unpack_entry

from .servers_health import _until_line, closed_port, free_port


@contextmanager
def durable_redis(port: int, folder: Path) -> Iterator[subprocess.Popen[str]]:
    """redis-server on ``port`` keeping an append-only file in ``folder``: a new one on the same
    port and folder finds what the last one had. Every write is in the file before Redis
    answers (``appendfsync always``): with ``everysec`` a SIGKILL may lose the last second of
    entries Redis acknowledged, which no publisher can know about."""
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
               "--save", "", "--appendonly", "yes", "--appendfsync", "always",
               "--loglevel", "notice"]  # fmt: skip
    with _until_line(command, "Ready to accept connections", "stdout") as process:
        yield process


class Clients:
    """``connect`` for a Publisher, remembering each client to close it at the end."""

    def __init__(self, url: str) -> None:
        self.url, self.made = url, []

    def __call__(self) -> "redis.asyncio.Redis":
        client = redis.asyncio.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        self.made.append(client)
        return client

    async def close(self) -> None:
        for client in self.made:
            await client.aclose()


def entry(k: int) -> dict[str, bytes]:
    return {"kind": b"cycle", "snap": bytes([k % 256]) * k, "loop": b'{"k":%d}' % k}


async def contents(url: str, stream: str) -> list[tuple[str, dict[str, bytes]]]:
    client = redis.asyncio.Redis.from_url(url)
    try:
        found = await client.xrange(stream)
        return [(i.decode(), {n.decode(): v for n, v in f.items()}) for i, f in found]
    finally:
        await client.aclose()


def expected(ks: range | list[int], streams: Callable[[int], bool] = lambda k: True) -> list:
    return [(f"{k}-1", entry(k)) for k in ks if streams(k)]


def test_entries_reach_their_streams_in_order(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    said: list[str] = []

    async def scenario() -> None:
        clients = Clients(url)
        publisher = Publisher(clients, tmp_path / "spool", said.append)
        for k in range(1, 41):
            await publisher.publish("op:A" if k % 2 else "op:B", f"{k}-1", entry(k))
        assert (publisher.published, publisher.duplicates, publisher.spooled) == (40, 0, 0)
        assert publisher.state == "ok"
        await publisher.publish("op:A", "39-1", entry(39))  # again: already there
        assert publisher.duplicates == 1
        await publisher.close(1.0)
        assert await contents(url, "op:A") == expected(range(1, 41), lambda k: k % 2 == 1)
        assert await contents(url, "op:B") == expected(range(1, 41), lambda k: k % 2 == 0)
        await clients.close()

    with durable_redis(port, tmp_path):
        asyncio.run(scenario())
    assert said == []
    assert list((tmp_path / "spool").glob("*.seg")) == []


def test_redis_killed_and_restarted_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    said: list[str] = []
    spool = tmp_path / "spool"

    async def scenario() -> None:
        clients = Clients(url)
        publisher = Publisher(clients, spool, said.append)
        with durable_redis(port, tmp_path) as server:
            for k in range(1, 11):
                await publisher.publish("op:A" if k % 3 else "op:B", f"{k}-1", entry(k))
            assert publisher.published == 10
            server.kill()  # SIGKILL: no goodbye, no save beyond the append-only file
            server.wait()
            # A collector restarted would publish its last cycle again: 10, then new ones.
            for k in range(10, 31):
                await publisher.publish("op:A" if k % 3 else "op:B", f"{k}-1", entry(k))
            assert publisher.state == "spooling"
            assert publisher.spooled == 21
            assert "unreachable" in publisher.detail
            assert not await publisher.drain(1.0)
        with durable_redis(port, tmp_path):
            assert await publisher.drain(30.0)
            assert (publisher.state, publisher.spooled) == ("ok", 0)
            assert (publisher.published, publisher.duplicates) == (30, 1)
            await publisher.publish("op:A", "31-1", entry(31))  # straight to Redis again
            assert publisher.published == 31
            await publisher.close(1.0)
            everything = expected(range(1, 32))
            assert await contents(url, "op:A") == [e for e in everything if int(e[0][:-2]) % 3]
            assert await contents(url, "op:B") == [e for e in everything if int(e[0][:-2]) % 3 == 0]
        await clients.close()

    asyncio.run(scenario())
    assert said[0] == (
        f"Redis at redis://127.0.0.1:{port}/0 unreachable: spooling cycles to {spool}"
    )
    assert said[-1] == "Redis back: published 21 spooled cycles"
    assert len(said) == 2


KILLED = """
import asyncio, sys
from pathlib import Path
import redis.asyncio
from opchain.bus.publish import Publisher, pack_entry, unpack_entry

async def main():
    url, spool = sys.argv[1], Path(sys.argv[2])
    publisher = Publisher(lambda: redis.asyncio.Redis.from_url(url), spool)
    for k in range(1, 8):
        await publisher.publish("op:A", f"{k}-1", {"kind": b"cycle", "snap": bytes([k]) * k,
                                                   "loop": b'{"k":%d}' % k})
    print(publisher.state, publisher.spooled, flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main())
"""


def test_a_publisher_killed_while_spooling_is_published_by_the_next(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    spool = tmp_path / "spool"
    away = f"redis://127.0.0.1:{closed_port()}/0"
    dying = subprocess.Popen(
        [sys.executable, "-c", KILLED, away, str(spool)], stdout=subprocess.PIPE, text=True
    )
    assert dying.stdout is not None
    assert dying.stdout.readline() == "spooling 7\n"
    dying.kill()  # SIGKILL, mid-spooling: its retries never got through
    dying.wait()
    dying.stdout.close()

    async def scenario() -> None:
        early = redis.asyncio.Redis.from_url(url)
        for k in (1, 2):  # as if handed to Redis just before the kill, still in the spool
            await early.xadd("op:A", entry(k), id=f"{k}-1")  # type: ignore[arg-type]
        await early.aclose()
        clients = Clients(url)
        publisher = Publisher(clients, spool)
        assert (publisher.state, publisher.spooled) == ("spooling", 7)
        await publisher.publish("op:A", "8-1", entry(8))  # behind the leftovers
        assert publisher.spooled == 8
        assert await publisher.drain(30.0)
        assert (publisher.published, publisher.duplicates) == (6, 2)
        await publisher.close(1.0)
        assert await contents(url, "op:A") == expected(range(1, 9))
        await clients.close()

    with durable_redis(port, tmp_path):
        asyncio.run(scenario())


def test_a_refused_entry_is_kept_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    said: list[str] = []

    async def scenario() -> None:
        other = redis.asyncio.Redis.from_url(url)
        await other.set("op:A", "not a stream")
        clients = Clients(url)
        publisher = Publisher(clients, tmp_path / "spool", said.append)
        with caplog.at_level(logging.ERROR, logger="opchain.bus.publish"):
            await publisher.publish("op:A", "1-1", entry(1))
            await publisher.publish("op:A", "2-1", entry(2))
        assert (publisher.state, publisher.spooled, publisher.published) == ("spooling", 2, 0)
        assert "WRONGTYPE" in publisher.detail
        assert not await publisher.drain(1.0)
        await other.delete("op:A")
        assert await publisher.drain(30.0)
        await publisher.close(1.0)
        assert await contents(url, "op:A") == expected([1, 2])
        await other.aclose()
        await clients.close()

    with durable_redis(port, tmp_path):
        asyncio.run(scenario())
    assert any("WRONGTYPE" in r.getMessage() for r in caplog.records)
    assert any("WRONGTYPE" in line for line in said)


def test_a_spool_record_holds_an_entry_exactly() -> None:
    fields = {"kind": "start", "dump": bytes(range(256)) * 3, "empty": b"", "é": b"\x00"}
    body = pack_entry("op:cycles:NIFTY", "1763611200000-0", fields)
    stream, entry_id, back = unpack_entry(body)
    assert (stream, entry_id) == ("op:cycles:NIFTY", "1763611200000-0")
    assert back == {name: v.encode() if isinstance(v, str) else v for name, v in fields.items()}
    with pytest.raises(ValueError, match="truncated"):
        unpack_entry(body[:-1])
