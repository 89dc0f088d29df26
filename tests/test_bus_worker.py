"""Leases, fencing and the worker's ownership rules, in process against a real redis-server:
what keeps one writer per file when workers die, pause, come and go, or lose Redis."""

import asyncio
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import redis.asyncio

from opchain.brokers.sim import SimBroker
from opchain.bus import lease as leases
from opchain.bus.collector import Publishing
from opchain.bus.lease import LeaseLost
from opchain.bus.publish import Publisher
from opchain.bus.worker import Worker
from opchain.health import state
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import record_session
from opchain.redisconn import Keys, connect
from opchain.settings import Settings
from opchain.store import layout

from .servers_bus import tree
from .servers_health import free_port, redis_server

DAY = date(2026, 11, 20)
DAY_OPEN = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
KEYS = Keys("opchain")
HEARD = 120.0  # seconds a worker may take to say what is awaited: a bound, not a measure


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as (address, _):
        yield address


def _settings(tmp_path: Path, url: str, **more: object) -> Settings:
    given: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "redis_url": url,
        "indices": ("NIFTY",),
        "cadence_seconds": 1800.0,  # 13 cycles: enough to see every rule
        "full_chain": False,
        "bus_lease_seconds": 30.0,
        **more,
    }
    return Settings(**given)  # type: ignore[arg-type]


async def _publish_day(settings: Settings, url: str, tmp_path: Path) -> None:
    """Publish the day's session of ``settings.indices``, as `opchain collect --date` does."""
    clock = VirtualClock(DAY_OPEN)
    broker = SimBroker(clock, settings.sim_seed, 0.0, indices=settings.indices)
    publisher = Publisher(lambda: redis.asyncio.Redis.from_url(url), tmp_path / "spool")
    await Publishing(publisher, KEYS)(settings, broker, clock, DAY)
    await publisher.close(5.0)


def test_a_lease_is_one_workers_and_each_taker_has_a_newer_token(tmp_path: Path, url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(url)
        data = tmp_path / "data"
        first = await leases.acquire(client, KEYS, data, "NIFTY", "a", 30.0)
        assert first is not None and first.token == 1
        assert await leases.acquire(client, KEYS, data, "NIFTY", "b", 30.0) is None
        first.check()  # its own token is on the fence
        assert await leases.renew(client, KEYS, first)
        await client.delete(KEYS.lease("NIFTY"))  # the lease ran out
        second = await leases.acquire(client, KEYS, data, "NIFTY", "b", 30.0)
        assert second is not None and second.token == 2
        assert not await leases.renew(client, KEYS, first)  # not a's any more
        with pytest.raises(LeaseLost, match="token 2 on the fence, ours is 1"):
            first.check()
        first.good_until = 0.0
        with pytest.raises(LeaseLost, match="not renewed in time"):
            first.check()
        await leases.release(client, KEYS, first)  # not a's: nothing happens
        assert await client.get(KEYS.lease("NIFTY")) == b"b:2"
        await client.flushall()  # Redis lost its counter: the next token is still newer
        third = await leases.acquire(client, KEYS, data, "NIFTY", "c", 30.0)
        assert third is not None and third.token == 3
        assert leases.read_fence(layout.fence_path(data, "NIFTY")) == 3
        await client.aclose()

    asyncio.run(scenario())


def test_a_worker_fenced_out_writes_nothing_more(tmp_path: Path, url: str) -> None:
    """Another worker's token on the fence: the next cycle raises LeaseLost before a byte of
    it is written, and nothing held unflushed reaches the files."""
    settings = _settings(tmp_path, url, flush_seconds=3600.0)  # nothing flushed on its own

    async def scenario() -> None:
        await _publish_day(settings, url, tmp_path)
        client = redis.asyncio.Redis.from_url(url)
        worker = Worker(settings, client, "a")
        await worker.step()  # takes NIFTY, reads the start and the first cycles
        part = worker.owned["NIFTY"]
        assert part.recording is not None and part.recording.cycles > 0
        before = _sizes(settings.data_dir)
        part.lease.fence.write_text(f"{part.lease.token + 1}\n")  # someone took it
        with pytest.raises(LeaseLost):
            while True:
                await worker.step()
        assert _sizes(settings.data_dir) == before
        pending = await client.xpending(KEYS.stream("NIFTY"), "workers")
        assert pending["pending"] > 0  # for the new owner to claim
        await client.aclose()

    asyncio.run(scenario())


def test_a_second_worker_gets_its_share_and_the_first_gives_it_back(
    tmp_path: Path, url: str
) -> None:
    settings = _settings(tmp_path, url, indices=("NIFTY", "BANKNIFTY"))

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(url)
        a, b = Worker(settings, client, "a"), Worker(settings, client, "b")
        await a.keep()
        await a.balance()
        assert sorted(a.owned) == ["BANKNIFTY", "NIFTY"]
        await b.keep()  # b's heartbeat: two living workers, one partition each
        await b.balance()
        assert b.owned == {}  # nothing free yet
        await a.balance()
        assert len(a.owned) == 1  # one given back, cleanly
        await b.balance()
        (given,) = b.owned
        assert given not in a.owned
        token = b.owned[given].lease.token
        assert await client.get(KEYS.lease(given)) == f"b:{token}".encode()
        await client.aclose()

    asyncio.run(scenario())


def test_leases_lost_while_redis_was_away_are_taken_back_unless_someone_took_them(
    tmp_path: Path, url: str
) -> None:
    settings = _settings(tmp_path, url)

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(url)
        worker = Worker(settings, client, "a")
        await worker.keep()
        await worker.balance()
        held = worker.owned["NIFTY"].lease.token
        await client.delete(KEYS.lease("NIFTY"))  # expired while Redis was away
        await worker.keep()
        assert worker.owned["NIFTY"].lease.token == held + 1  # ours again, same session
        await client.delete(KEYS.lease("NIFTY"))
        other = await leases.acquire(client, KEYS, settings.data_dir, "NIFTY", "b", 30.0)
        assert other is not None
        await client.delete(KEYS.lease("NIFTY"))  # b's ran out too; the fence is b's
        with pytest.raises(LeaseLost, match="taken over by another worker"):
            await worker.keep()
        await client.aclose()

    asyncio.run(scenario())


def _sizes(root: Path) -> dict[str, int]:
    skip = ("health", "bus", "spool", "live")
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def test_a_worker_without_redis_says_so_in_health_and_goes_on_when_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = _settings(tmp_path, f"redis://127.0.0.1:{port}/0")
    said: asyncio.Queue[str] = asyncio.Queue()

    async def heard(words: str) -> None:
        while words not in (line := await asyncio.wait_for(said.get(), HEARD)):
            pass
        assert words in line

    async def scenario() -> None:
        client = connect(settings)
        worker = Worker(settings, client, "a", say=said.put_nowait)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        await heard("Redis unreachable")
        found = state.read(settings.data_dir)["worker-a"]
        assert found["status"] == "down"
        assert "trying again in" in found["detail"]
        with redis_server(tmp_path, port):
            await heard("Redis back")
            assert state.read(settings.data_dir)["worker-a"]["status"] == "ok"
            await heard("NIFTY: taken")
            stop.set()
            await running
        await client.aclose()
        # Stopped cleanly, it is gone for good (an autoscaler took it away): no state left
        # behind for /health to judge, least of all the last `down` of a worker long gone.
        assert "worker-a" not in state.read(settings.data_dir)
        assert not layout.health_path(settings.data_dir, "worker-a").exists()

    asyncio.run(scenario())


def test_a_refused_write_is_one_line_and_the_worker_goes_on_losing_nothing(
    tmp_path: Path, url: str
) -> None:
    """The disk refuses the session's first file (its instruments dump): the worker says so,
    acknowledges nothing of it, tries again and records the day as the embedded run does."""
    settings = _settings(tmp_path, url)
    reference = settings.model_copy(update={"data_dir": tmp_path / "embedded"})
    clock = VirtualClock(DAY_OPEN)
    broker = SimBroker(clock, settings.sim_seed, 0.0, indices=settings.indices)
    asyncio.run(record_session(reference, broker, clock, DAY))
    refused = layout.instruments_path(settings.data_dir, DAY).with_suffix(".csv.tmp")
    refused.parent.mkdir(parents=True)
    refused.symlink_to("/dev/full")  # a full disk, for the first write (the link goes with it)
    said: asyncio.Queue[str] = asyncio.Queue()

    async def heard(words: str) -> str:
        while words not in (line := await asyncio.wait_for(said.get(), HEARD)):
            pass
        return line

    async def scenario() -> None:
        await _publish_day(settings, url, tmp_path)
        client = connect(settings)
        worker = Worker(settings, client, "a", say=said.put_nowait)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        line = await heard("storage: ")
        assert f"cannot write under {settings.data_dir}: No space left on device" in line
        assert state.read(settings.data_dir)["storage"]["status"] == "down"
        await heard("day closed")
        assert state.read(settings.data_dir)["storage"]["status"] == "ok"
        stop.set()
        await running
        await client.aclose()

    asyncio.run(scenario())
    assert tree(settings.data_dir) == tree(reference.data_dir)
