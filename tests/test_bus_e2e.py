"""The scale-out, as a user runs it: ``opchain collect`` and ``opchain worker`` processes on a
real redis-server record a simulated day whose files equal, byte for byte, those of the
embedded pipeline (``opchain demo``: ``opchain run``'s session on a virtual clock), whatever
happens to a worker or to Redis on the way."""

import random
from pathlib import Path

import pytest

from .servers_bus import Chorus, chorus, kill, redis_at, tree

DAY = "2026-11-20"
INDICES = ("NIFTY", "BANKNIFTY", "SENSEX")
ENV = {
    "OPCHAIN_CADENCE_SECONDS": "300",  # 75 cycles: a whole day, quickly
    "OPCHAIN_FULL_CHAIN": "false",
    "OPCHAIN_BUS_LEASE_SECONDS": "2",  # a dead worker's partitions are taken over in seconds
    "OPCHAIN_API_PORT": "0",
}
CLOSED = r"day closed"  # a worker's line when a partition's session is recorded to its end
WRITTEN = r"bus\.worker: \w+ \S+ written"  # a worker's debug line for each cycle


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What the embedded pipeline writes for the day."""
    data = tmp_path_factory.mktemp("embedded")
    with chorus(ENV) as run:
        assert run.start("demo", "-d", str(data), "--date", DAY).finish() == 0
    files = tree(data)
    assert any(name.startswith("raw/") for name in files)
    assert any(name.startswith("data_adv/") for name in files)
    return files


def _same(found: dict[str, bytes], expected: dict[str, bytes]) -> None:
    assert sorted(found) == sorted(expected)
    differ = [name for name in expected if found[name] != expected[name]]
    assert not differ, f"{len(differ)} files differ: {differ[:5]}"


def _worker(bus: Chorus, url: str, data: Path, name: str) -> None:
    bus.start("-v", "worker", "--bus", url, "-d", str(data), "--name", name)


def test_one_collector_and_two_workers_write_what_run_writes(
    reference: dict[str, bytes], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with redis_at(tmp_path / "redis") as (url, _), chorus(ENV) as bus:
        _worker(bus, url, data, "a")
        _worker(bus, url, data, "b")
        collector = bus.start("collect", "--bus", url, "-d", str(tmp_path / "c"), "--date", DAY)
        bus.wait_for(CLOSED, count=len(INDICES))
        assert collector.finish() == 0
        takers = {line.split(":")[0] for line in bus.seen if "taken (token" in line}
    _same(tree(data), reference)
    assert len(takers) == len(INDICES)


@pytest.mark.parametrize("trial", range(3))
def test_a_worker_killed_at_random_moments_is_taken_over(
    reference: dict[str, bytes], tmp_path: Path, trial: int
) -> None:
    """Worker a is SIGKILLed after a random number of cycles; b takes its partitions over and
    the files are still the embedded run's: no cycle missing, none twice."""
    data = tmp_path / "data"
    moment = random.Random(trial).randint(1, 3 * 75 - 1)
    with redis_at(tmp_path / "redis") as (url, _), chorus(ENV) as bus:
        _worker(bus, url, data, "a")
        bus.wait_for(r"worker a: partitions")
        bus.wait_for(r"taken \(token", count=len(INDICES))  # a holds every partition
        collector = bus.start("collect", "--bus", url, "-d", str(tmp_path / "c"), "--date", DAY)
        bus.wait_for(WRITTEN, count=moment)
        victim = next(r for r in bus.roles.values() if "a" in r.process.args)
        kill(victim.process)
        _worker(bus, url, data, "b")
        bus.wait_for(CLOSED, count=len(INDICES))
        assert collector.finish() == 0
    _same(tree(data), reference)


def test_redis_killed_and_restarted_mid_session_loses_nothing(
    reference: dict[str, bytes], tmp_path: Path
) -> None:
    """The collector takes its time (a minute of market in 20 ms) and goes on while Redis is
    away, spooling; Redis comes back from its append-only file on the same port."""
    data, folder = tmp_path / "data", tmp_path / "redis"
    with chorus(ENV) as bus:
        with redis_at(folder) as (url, server):
            _worker(bus, url, data, "a")
            _worker(bus, url, data, "b")
            collector = bus.start("collect", "--bus", url, "-d", str(tmp_path / "c"),
                                  "--date", DAY, "--speed", "3000")  # fmt: skip
            bus.wait_for(WRITTEN, count=20)
            kill(server)
            bus.wait_for(r"spooling", alive=collector)
            port = int(url.rsplit(":", 1)[1].split("/")[0])
        with redis_at(folder, port):
            bus.wait_for(CLOSED, count=len(INDICES))
            assert collector.finish() == 0
    assert any("published" in line and "spooled" in line for line in bus.seen), bus.tail()
    _same(tree(data), reference)
