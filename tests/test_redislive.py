"""The live messages in Redis (outputs/redislive.py), against a real redis-server: every cycle's
message of every index reaches the index's key and the channel, the bytes the live files would
hold; with Redis away the recorder's writes go on, the state says down, and when it is back the
messages flow again."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from opchain.health import state
from opchain.market import calendar
from opchain.merge.cycle import Cycle
from opchain.merge.view import live_messages
from opchain.outputs import OUTPUTS, Session
from opchain.outputs.redislive import COMPONENT, RedisLive, open_output
from opchain.redisconn import Keys
from opchain.settings import Settings
from opchain.store.live import encode

from .cycles import record_live
from .servers_health import redis_server, stop
from .sessions import DAY

WAIT = 30.0  # seconds: a bound on waiting for what must come, never a measure


@pytest.fixture(scope="module")
def cycles(tmp_path_factory: pytest.TempPathFactory) -> list[Cycle]:
    session = calendar.session("NSE", DAY)
    assert session is not None
    folder = tmp_path_factory.mktemp("cycles")
    got = record_live(folder, session.open + timedelta(seconds=10), cadence_seconds=1)[:6]
    assert len(got) == 6
    return got


def session_of(settings: Settings) -> Session:
    return Session(settings=settings, day=DAY, watches=[], offsets=(0,))


def expected(cycle: Cycle, settings: Settings) -> dict[str, bytes]:
    return {i: encode(m) for i, m in live_messages(cycle, settings.rate).items()}


@pytest.fixture
def subscriber(tmp_path: Path) -> Iterator[tuple[str, int, redis.client.PubSub]]:
    with redis_server(tmp_path) as (url, process):
        client = redis.Redis.from_url(url)
        pubsub = client.pubsub()
        pubsub.subscribe(Keys().channel())
        assert pubsub.get_message(timeout=WAIT)["type"] == "subscribe"  # type: ignore[index]
        yield url, process.pid, pubsub
        pubsub.close()
        client.close()


def received(pubsub: redis.client.PubSub, count: int) -> list[tuple[str, bytes]]:
    """The next ``count`` messages on the channel, as (index, message)."""
    got = []
    while len(got) < count:
        message = pubsub.get_message(timeout=WAIT)
        assert message is not None, f"only {len(got)} of {count} messages came"
        if message["type"] == "message":
            index, _, data = message["data"].partition(b"\n")
            got.append((index.decode(), data))
    return got


def test_it_is_listed_after_the_live_files_and_off_without_a_redis(tmp_path: Path) -> None:
    assert [name for name, _ in OUTPUTS][-2:] == ["live", "redis"]
    assert open_output(session_of(Settings(data_dir=tmp_path))) is None


def test_every_cycle_reaches_the_keys_and_the_channel_as_the_live_files_bytes(
    tmp_path: Path, cycles: list[Cycle], subscriber: tuple[str, int, redis.client.PubSub]
) -> None:
    url, _, pubsub = subscriber
    settings = Settings(data_dir=tmp_path, redis_url=url)  # type: ignore[call-arg]
    output = open_output(session_of(settings))
    assert isinstance(output, RedisLive)
    keys, client = Keys(settings.bus_prefix), redis.Redis.from_url(url)
    try:
        for cycle in cycles:
            output.write(cycle)
            want = expected(cycle, settings)
            assert sorted(received(pubsub, len(want))) == sorted(want.items())
            for index, data in want.items():
                assert client.get(keys.live(index)) == data
        assert state.read(tmp_path)[COMPONENT]["status"] == "ok"
    finally:
        output.close(day_over=True)
        client.close()


def test_redis_away_stops_nothing_and_its_return_brings_the_messages_back(
    tmp_path: Path, cycles: list[Cycle]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with redis_server(tmp_path) as (url, process):
        settings = Settings(data_dir=data_dir, redis_url=url)  # type: ignore[call-arg]
        output = RedisLive(session_of(settings))
        output.write(cycles[0])
        assert output.wait_for("ok", WAIT)
        stop(process)
        for cycle in cycles[1:4]:  # the recorder goes on: nothing raises, nothing waits on Redis
            output.write(cycle)
        assert output.wait_for("down", WAIT)
    assert state.read(data_dir)[COMPONENT]["status"] == "down"
    assert "unreachable" in state.read(data_dir)[COMPONENT]["detail"]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        with redis_server(tmp_path, port) as (again, _):
            client = redis.Redis.from_url(again)
            pubsub = client.pubsub()
            pubsub.subscribe(Keys().channel())
            last = cycles[4]
            output.write(last)
            want = expected(last, settings)
            seen: dict[str, bytes] = {}
            while any(seen.get(i) != d for i, d in want.items()):  # the pending ones may come first
                index, data = received(pubsub, 1)[0]
                seen[index] = data
            assert output.wait_for("ok", WAIT)
            assert state.read(data_dir)[COMPONENT]["status"] == "ok"
            for index, data in want.items():
                assert client.get(Keys().live(index)) == data
            pubsub.close()
            client.close()
    finally:
        output.close(day_over=True)
