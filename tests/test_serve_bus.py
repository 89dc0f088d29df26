"""``opchain serve --bus``: API instances fed from Redis (bus/live.py). Two instances started as
a user would, a WebSocket client on each, cycles published the way a recorder does (the Redis
output, in this process): both clients get every cycle's message, the same bytes, in order,
once. And ``/health`` says ``bus`` down while Redis is away and ok once it is back."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from opchain.market import calendar
from opchain.merge.cycle import Cycle
from opchain.merge.view import live_messages
from opchain.outputs import Session
from opchain.outputs.redislive import RedisLive
from opchain.settings import Settings
from opchain.store.live import encode

from .cycles import record_live
from .servers_health import redis_server, stop
from .sessions import DAY

WAIT = 60.0  # seconds: a bound on waiting for what must come, never a measure
INDEX = "NIFTY"


@pytest.fixture(scope="module")
def cycles(tmp_path_factory: pytest.TempPathFactory) -> list[Cycle]:
    session = calendar.session("NSE", DAY)
    assert session is not None
    folder = tmp_path_factory.mktemp("cycles")
    got = record_live(folder, session.open + timedelta(seconds=30), cadence_seconds=1)
    return [c for c in got if any(chain.index == INDEX for chain in c.snapshot.chains)][:22]


@contextmanager
def serve_bus(data_dir: Path, url: str) -> Iterator[str]:
    """``opchain serve --bus`` on a free port until the block ends; yields its URL."""
    command = [sys.executable, "-m", "opchain", "serve", "-d", str(data_dir), "--port", "0",
               "--bus", url]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            found = re.fullmatch(r"API at (http://127\.0\.0\.1:\d+)\n", line)
            assert found, line
            yield found[1]
        finally:
            process.kill()


def recorder(data_dir: Path, url: str) -> RedisLive:
    settings = Settings(data_dir=data_dir, redis_url=url)  # type: ignore[call-arg]
    return RedisLive(Session(settings=settings, day=DAY, watches=[], offsets=(0,)))


def message_of(cycle: Cycle) -> bytes:
    return encode(live_messages(cycle)[INDEX])


def frame(ws: ClientConnection) -> bytes:
    data = ws.recv(timeout=WAIT)
    return data.encode() if isinstance(data, str) else data


@pytest.mark.e2e
def test_two_instances_push_every_cycle_alike(tmp_path: Path, cycles: list[Cycle]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with ExitStack() as stack:
        url, _ = stack.enter_context(redis_server(tmp_path))
        apis = [stack.enter_context(serve_bus(data_dir, url)) for _ in range(2)]
        clients = [
            stack.enter_context(connect(api.replace("http://", "ws://") + f"/ws/live/{INDEX}"))
            for api in apis
        ]
        output = recorder(data_dir, url)
        stack.callback(output.close, True)
        frames: list[list[bytes]] = [[], []]
        for cycle in cycles:
            output.write(cycle)
            for client, got in zip(clients, frames, strict=True):
                got.append(frame(client))  # the next frame each client gets is this cycle's
        sent = [message_of(cycle) for cycle in cycles]
        assert len(set(sent)) == len(cycles) > 20
        assert frames[0] == frames[1] == sent
        # The REST views read the same message.
        latest = httpx.get(f"{apis[1]}/option-chain/{INDEX}", timeout=WAIT).json()
        assert latest["ts"] == cycles[-1].snapshot.ts.isoformat()


def bus_state(api: str) -> dict[str, str]:
    checks: dict[str, dict[str, str]] = httpx.get(f"{api}/health", timeout=WAIT).json()["checks"]
    return checks["bus"]


@pytest.mark.e2e
def test_health_says_the_bus_is_down_while_redis_is_away(
    tmp_path: Path, cycles: list[Cycle]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with ExitStack() as stack:
        url, process = stack.enter_context(redis_server(tmp_path))
        api = stack.enter_context(serve_bus(data_dir, url))
        client = stack.enter_context(connect(api.replace("http://", "ws://") + f"/ws/live/{INDEX}"))
        output = recorder(data_dir, url)
        stack.callback(output.close, True)
        output.write(cycles[0])
        assert frame(client) == message_of(cycles[0])
        assert bus_state(api)["status"] == "ok"
        stop(process)
        deadline = time.monotonic() + WAIT  # a bound on the wait, not a measure
        while (state := bus_state(api))["status"] != "down":
            assert time.monotonic() < deadline, state
        assert state["detail"].startswith(f"Redis at {url} unreachable: ")
        assert re.search(r"; reconnecting in [\d.]+ s$", state["detail"]), state
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        stack.enter_context(redis_server(tmp_path, port))
        output.write(cycles[1])
        # The message reaches the client only through the feed connected again.
        assert frame(client) == message_of(cycles[1])
        assert bus_state(api)["status"] == "ok"


def test_the_hub_keeps_the_bytes_it_was_put_and_decodes_them_once(
    tmp_path: Path, cycles: list[Cycle]
) -> None:
    from opchain.api.live import Hub

    hub = Hub(tmp_path)
    data = message_of(cycles[0]).replace(b",", b", ", 1)  # not as encode() would write it
    assert hub.put(INDEX, data)
    assert hub.encoded(INDEX) == data and hub.cached(INDEX, "live-text", str) == data.decode()
    message = hub.message(INDEX)
    assert message is not None and message["ts"] == cycles[0].snapshot.ts.isoformat()
    version = hub.version(INDEX)
    assert not hub.put(INDEX, data)  # the very message held: no client is woken
    assert not hub.put("BANKNIFTY", data)  # another index's message
    assert not hub.put(INDEX, b'{"type": "snapshot"}')  # not a Live message
    assert not hub.put(INDEX, data.replace(b"}", b"", 1) + b"NaN")
    assert hub.version(INDEX) == version and hub.encoded(INDEX) == data


def test_a_message_older_than_the_get_is_dropped_until_the_sync(
    tmp_path: Path, cycles: list[Cycle]
) -> None:
    from opchain.bus.live import LiveFeed

    taken: list[tuple[str, bytes]] = []
    settings = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")  # type: ignore[call-arg]
    feed = LiveFeed(settings, lambda index, data: taken.append((index, data)) or True)
    old, new = message_of(cycles[0]), message_of(cycles[1])
    got = {INDEX: cycles[1].snapshot.ts.isoformat()}  # what the GET gave
    for data in (old, new):  # published before the GET, arriving after it
        feed._take({"data": INDEX.encode() + b"\n" + data}, got)
    assert taken == []
    feed._take({"data": INDEX.encode() + b"\n" + old}, None)  # after the sync: as it comes
    assert taken == [(INDEX, old)]


@pytest.mark.e2e
@pytest.mark.parametrize("role", ["serve", "worker", "collect"])
def test_a_bus_that_is_not_a_redis_url_is_one_clear_line(tmp_path: Path, role: str) -> None:
    command = [sys.executable, "-m", "opchain", role, "-d", str(tmp_path), "--bus", "localhost"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    said = (done.stderr + done.stdout).strip().splitlines()
    assert "is not a Redis URL" in said[-1], said


@pytest.mark.e2e
@pytest.mark.parametrize("role", ["worker", "collect"])
def test_a_recorder_without_a_redis_is_one_clear_line(tmp_path: Path, role: str) -> None:
    env = {k: v for k, v in os.environ.items() if "REDIS" not in k}
    command = [sys.executable, "-m", "opchain", role, "-d", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2
    assert "no Redis configured" in done.stderr + done.stdout
