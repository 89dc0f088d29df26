"""The REST/WebSocket API over a recorded stretch of the simulated session: the views agree with
the analytics, the live files follow the collector, keys and rate limits hold, no parameter
reaches the file system unchecked, and the WebSocket pushes each new snapshot."""

import asyncio
import hashlib
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from opchain.analytics.greeks import greeks
from opchain.analytics.oi import max_pain
from opchain.api import live
from opchain.api.app import create_app
from opchain.api.keys import digests, identify
from opchain.api.limits import RateLimiter
from opchain.api.live import Hub
from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.merge.cycle import Cycle
from opchain.merge.view import live_messages
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store.live import MAX_SHARE, LiveFiles, encode, live_path, read_live, write_live
from opchain.store.stats import stats_path

from .apidata import KEY, copy_of, recorded
from .apiserver import Running, running
from .sessions import DAY

HEADERS = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded(tmp_path_factory)


@pytest.fixture(scope="module")
def api(data: Path) -> Iterator[Running]:
    hub = Hub(data)
    hub.poll()
    with running(create_app(Settings(data_dir=data, api_keys=KEY), hub)) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture(scope="module")
def client(api: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, headers=HEADERS) as c:
        yield c


def _cycles(minutes: int, data_dir: Path | None = None) -> list[Cycle]:
    """The cycles of the first minutes of DAY, as the outputs got them, in memory (recorded
    into ``data_dir``, or a temporary folder)."""
    got: list[Cycle] = []
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    with tempfile.TemporaryDirectory() as folder:
        config = Settings(data_dir=data_dir or Path(folder))
        broker = SimBroker(clock, config.sim_seed, config.sim_glitch_rate)
        until = session.open + timedelta(minutes=minutes)
        asyncio.run(
            record_session(
                config, broker, clock, DAY, until=until,
                on_cycle=got.append,
            )
        )  # fmt: skip
    return got


@pytest.fixture(scope="module")
def cycles() -> list[Cycle]:
    return _cycles(3)


# The views (merge/view.py).


def test_chain_views_agree_with_the_analytics(
    cycles: list[Cycle],
) -> None:
    snapshot, stats = cycles[-1].snapshot, cycles[-1].stats
    previous = {
        (leg.index, leg.expiry, leg.strike, leg.side): leg.quote.oi - 100
        for chain in snapshot.chains
        for leg in chain.legs
        if leg.quote is not None and leg.strike is not None
    }
    messages = live_messages(replace(cycles[-1], previous_oi=previous))
    assert set(messages) == {chain.index for chain in snapshot.chains}
    json.dumps(messages, allow_nan=False)  # JSON-safe: no NaN anywhere
    for chain, row in zip(snapshot.chains, stats, strict=True):
        view = next(c for c in messages[chain.index]["chains"] if c["bucket"] == chain.bucket)
        strikes = [r["strike"] for r in view["rows"]]
        assert strikes == sorted(set(strikes))
        assert view["stats"]["max_pain"] == (None if math.isnan(row.max_pain) else row.max_pain)
        call_oi = [(r["call"] or {}).get("oi") or 0 for r in view["rows"]]
        put_oi = [(r["put"] or {}).get("oi") or 0 for r in view["rows"]]
        payout = [r["payout"] for r in view["rows"]]
        if not math.isnan(row.max_pain):
            assert strikes[int(np.argmin(payout))] == max_pain(strikes, call_oi, put_oi)
        gex = [r["gex_net"] for r in view["rows"] if r["gex_net"] is not None]
        if not math.isnan(row.gex):
            assert sum(gex) == pytest.approx(row.gex, rel=1e-9)
        for r in view["rows"]:
            for side, leg in (("CE", r["call"]), ("PE", r["put"])):
                if leg is None or leg["oi"] is None:
                    continue
                assert leg["oi_change"] == 100
                if leg["iv"] is not None:
                    g = greeks(view["forward"], r["strike"], view["years"], leg["iv"], side == "CE")
                    assert leg["delta"] == pytest.approx(float(g.delta))
                    assert leg["theta"] == pytest.approx(float(g.theta) / 365)
                    assert leg["vega"] == pytest.approx(float(g.vega) / 100)


def test_live_files_are_written_at_most_once_a_second_and_at_the_end(
    cycles: list[Cycle], tmp_path: Path
) -> None:
    clock = [0.0]
    files = LiveFiles(tmp_path, now=lambda: clock[0])
    for n, cycle in enumerate(cycles):
        clock[0] = n * 0.25  # four cycles a second of wall time
        files.offer(cycle)
    assert files.writes == math.floor((len(cycles) - 1) * 0.25) + 1
    files.flush()  # the end of the session: the last snapshot is written
    last = cycles[-1].snapshot.ts.isoformat()
    for index in ("NIFTY", "BANKNIFTY", "SENSEX"):
        message = read_live(live_path(tmp_path, index))
        assert message is not None and message["ts"] == last
    writes = files.writes
    files.flush()  # nothing pending: nothing written
    assert files.writes == writes


@pytest.mark.parametrize(("tick", "second_write_at"), [(0.001, 1.0), (0.01, 2.0)])
def test_slow_live_writes_space_out_to_a_small_share_of_the_time(
    cycles: list[Cycle],
    tmp_path: Path,
    tick: float,
    second_write_at: float,
) -> None:
    """Each look at the clock moves it by ``tick``, so a write (two looks) costs one tick: 1 ms
    keeps the 1 s interval, 10 ms stretches it to 10 ms / MAX_SHARE = 2 s."""
    clock = [0.0]

    def now() -> float:
        clock[0] += tick
        return clock[0]

    files = LiveFiles(tmp_path, now=now)
    files.offer(cycles[0])
    first = clock[0]
    assert files.writes == 1
    while files.writes == 1:
        files.offer(cycles[0])
    assert max(1.0, tick / MAX_SHARE) == second_write_at
    assert clock[0] - first == pytest.approx(second_write_at, abs=3 * tick)


def test_a_recorded_session_leaves_its_last_snapshot_in_the_live_files(data: Path) -> None:
    for index in ("NIFTY", "BANKNIFTY", "SENSEX"):
        message = read_live(live_path(data, index))
        assert message is not None
        last = stats_path(data / "analytics", index, "next_month", DAY).read_text()
        assert message["ts"] == last.splitlines()[-1].split(",")[0]


def test_the_hub_builds_views_only_when_asked_and_once_per_snapshot(
    cycles: list[Cycle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Cycle] = []
    hub = Hub(tmp_path)
    monkeypatch.setattr(live, "live_messages", lambda cycle, rate: built.append(cycle) or {})
    for cycle in cycles:
        hub.publish(cycle)
    assert built == []  # nobody asked: nothing was built
    assert hub.version("NIFTY") == len(cycles)
    monkeypatch.undo()
    first = hub.encoded("NIFTY")
    assert first is not None and hub.encoded("NIFTY") is first  # built and encoded once
    assert json.loads(first) == live_messages(cycles[-1])["NIFTY"]
    hub.publish(cycles[0])  # a new snapshot: a new message
    assert hub.encoded("NIFTY") != first


def test_serve_follows_the_live_files(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    hub = Hub(folder)
    assert sorted(hub.poll()) == ["BANKNIFTY", "NIFTY", "SENSEX"]
    assert hub.poll() == []  # nothing changed
    message = read_live(live_path(folder, "NIFTY"))
    assert message is not None
    message["ts"] = "2026-11-20T15:29:30+05:30"
    write_live(folder, "NIFTY", encode(message))
    assert hub.poll() == ["NIFTY"]
    current = hub.message("NIFTY")
    assert current is not None and current["ts"] == "2026-11-20T15:29:30+05:30"


# Endpoints.


def test_every_endpoint_answers_over_recorded_data(client: httpx.Client, data: Path) -> None:
    for path in [
        "/market-status", "/indices", "/option-chain/NIFTY", "/analytics/NIFTY/greeks",
        "/analytics/NIFTY/pcr", "/analytics/NIFTY/max-pain", "/analytics/SENSEX/gex",
        "/analytics/BANKNIFTY/iv-smile?bucket=next_month", "/analytics/NIFTY/term-structure",
        "/profiles/NIFTY/this_week/atm", "/profiles/NIFTY/this_week/atm/weekday/fri",
        "/profiles/NIFTY/this_week/atm/dte/3", "/splits/NIFTY",
    ]:  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"] == "application/json"
    overview = client.get("/indices").json()["indices"]
    assert [o["index"] for o in overview] == ["NIFTY", "BANKNIFTY", "SENSEX", "INDIAVIX"]
    assert overview[-1]["buckets"] == []


def test_the_option_chain_is_the_live_message_chain(client: httpx.Client, data: Path) -> None:
    message = read_live(live_path(data, "NIFTY"))
    assert message is not None
    nearest = min(message["chains"], key=lambda c: c["expiry"])
    assert client.get("/option-chain/NIFTY").json() == nearest
    monthly = client.get("/option-chain/NIFTY", params={"bucket": "next_month"}).json()
    assert monthly["bucket"] == "next_month" and monthly["rows"]
    missing = client.get("/option-chain/BANKNIFTY", params={"bucket": "this_week"})
    assert missing.status_code == 404  # BANKNIFTY has no weeklies
    assert missing.json() == {"detail": "BANKNIFTY has no this_week bucket"}


def test_pcr_series_is_every_cycle_of_the_analytics_files(client: httpx.Client, data: Path) -> None:
    body = client.get("/analytics/NIFTY/pcr").json()
    rows = stats_path(data / "analytics", "NIFTY", "this_week", DAY).read_text().splitlines()
    mine = [p for p in body["series"] if p["bucket"] == "this_week"]
    assert len(mine) == len(rows) - 1
    assert mine[-1]["ts"] == body["ts"]


def test_profiles_put_today_beside_the_masters(client: httpx.Client) -> None:
    body = client.get("/profiles/NIFTY/this_week/atm").json()
    assert (body["date"], body["weekday"], body["dte"]) == (DAY.isoformat(), "fri", 3)
    assert len(body["minutes"]) == 375
    master = client.get("/profiles/NIFTY/this_week/atm/weekday/fri").json()
    assert master["applied"] == [DAY.isoformat()] and master["rows"]
    # the masters hold today's finished minutes, and only days before today are compared
    assert (body["weekday_days"], body["dte_days"]) == (0, 0)
    assert all(m["weekday_avg"] is None and m["dte_days"] is None for m in body["minutes"])
    assert client.get("/profiles/NIFTY/this_week/atm/weekday/mon").status_code == 404


def test_split_files_are_listed_and_served_as_they_are(client: httpx.Client, data: Path) -> None:
    listing = client.get("/splits/NIFTY", params={"date": DAY.isoformat()}).json()
    assert listing["date"] == DAY.isoformat()
    one = next(f for f in listing["files"] if (f["bucket"], f["offset"]) == ("this_week", "atm"))
    answer = client.get(one["url"])
    on_disk = (data / "csv_data/NIFTY/this_week/atm" / f"{DAY}.csv").read_bytes()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content == on_disk
    assert one["rows"] == on_disk.count(b"\n") - 1 and one["bytes"] == len(on_disk)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/splits/NIFTY?date=2026-02-30", 422),  # no such day
        ("/splits/NIFTY?date=20261120", 422),
        ("/splits/NIFTY?date=2026-11-20T00:00:00", 422),
        ("/option-chain/nifty", 422),
        ("/option-chain/NIFTY?bucket=weekly", 422),
        ("/profiles/NIFTY/this_week/atm/dte/-1", 422),
        ("/profiles/NIFTY/this_week/atm/weekday/sat", 422),
        ("/profiles/NIFTY/this_week/atm_p2m1", 404),
        ("/splits/NIFTY?date=2020-01-01", 404),
    ],
)
def test_bad_parameters_get_a_4xx_with_one_sentence(
    client: httpx.Client, path: str, status: int
) -> None:
    answer = client.get(path)
    assert answer.status_code == status
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail


TRAVERSALS = [
    "/splits/NIFTY/this_week/..%2F..%2F..%2F..%2Fsecret/2026-11-20.csv",
    "/splits/NIFTY/this_week/atm/..%2F..%2F..%2F..%2Fsecret.csv",
    "/splits/NIFTY/this_week/atm/%2e%2e%2f%2e%2e%2fsecret.csv",
    "/splits/NIFTY/this_week/%2e%2e/2026-11-20.csv",
    "/splits/NIFTY/..%2F..%2F..%2Fsecret/atm/2026-11-20.csv",
    "/splits/..%2F..%2Fsecret",
    "/splits/NIFTY/this_week/atm/2026-11-20.csv%00.txt",
    "/splits/NIFTY/this_week/atm%00/2026-11-20.csv",
    "/splits/NIFTY/this_week/atm_p1%2F..%2F..%2F..%2F..%2Fsecret/2026-11-20.csv",
    "/profiles/NIFTY/this_week/..%2F..%2F..%2Fsecret",
    "/profiles/NIFTY/this_week/atm/weekday/..%2F..%2Fsecret",
    "/profiles/NIFTY/this_week/atm/dte/..%2F1",
    "/splits/NIFTY?date=..%2F..%2Fsecret",
    "/splits/NIFTY/this_week/atm/..%5C..%5Csecret.csv",
    "/%2e%2e/%2e%2e/secret.csv",
    "/..%2F..%2Fsecret.csv",
    "/static/..%2F..%2F..%2Fsecret.csv",
]


def test_path_traversal_attempts_get_4xx_and_nothing_else(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data" / "inner")
    for where in (tmp_path / "secret.csv", tmp_path / "data" / "secret.csv", folder / "secret.csv"):
        where.write_text("SECRET\n")
    hub = Hub(folder)
    hub.poll()
    with running(create_app(Settings(data_dir=folder), hub)) as server:
        with httpx.Client(base_url=server.url) as c:
            for path in TRAVERSALS:
                answer = c.get(path)
                assert 400 <= answer.status_code < 500, path
                assert b"SECRET" not in answer.content, path
        host, port = server.url.removeprefix("http://").split(":")
        for raw in ("/../../secret.csv", "/splits/NIFTY/this_week/atm/../../../../secret.csv",
                    "/../../../../etc/passwd"):  # fmt: skip
            status, body = _raw_get(host, int(port), raw)
            assert 400 <= status < 500 and b"SECRET" not in body and b"root:" not in body, raw


def _raw_get(host: str, port: int, target: str) -> tuple[int, bytes]:
    """A request with its target exactly as given (clients would normalise the dots)."""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    found = re.match(rb"HTTP/1.1 (\d{3})", answer)
    assert found, answer[:100]
    return int(found[1]), answer


# Keys and limits.


def test_a_wrong_or_missing_key_gets_401_and_the_open_endpoints_stay_open(api: Running) -> None:
    with httpx.Client(base_url=api.url) as c:
        for headers in (
            {},
            {"X-API-Key": "wrong"},
            {"X-API-Key": ""},
            {"X-API-Key": KEY + "x"},
            {"X-API-Key": KEY.upper()},
        ):
            answer = c.get("/option-chain/NIFTY", headers=headers)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == "APIKey"
            assert set(answer.json()) == {"detail"}
        for path in ("/health", "/metrics", "/openapi.json", "/docs"):
            assert c.get(path).status_code == 200, path
        assert c.get("/option-chain/NIFTY", headers=HEADERS).status_code == 200


def test_keys_are_kept_as_digests_and_either_form_works() -> None:
    hashed = "sha256:" + hashlib.sha256(b"second").hexdigest()
    known = digests([SecretStr("first"), SecretStr(hashed.upper().replace("SHA256", "sha256"))])
    assert known == (hashlib.sha256(b"first").digest(), hashlib.sha256(b"second").digest())
    assert identify("first", known) == known[0]
    assert identify("second", known) == known[1]
    assert identify(hashed, known) is None  # the digest itself is not a key
    assert identify(None, known) is None
    with pytest.raises(ValueError, match="hexadecimal"):
        digests([SecretStr("sha256:zz")])


def test_a_burst_gets_429_with_retry_after(data: Path) -> None:
    config = Settings(data_dir=data, api_keys=KEY, api_burst=5, api_rate=0.01)  # type: ignore[arg-type]
    hub = Hub(data)
    hub.poll()
    with running(create_app(config, hub)) as server, httpx.Client(base_url=server.url) as c:
        codes = [c.get("/indices", headers=HEADERS).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        refused = c.get("/indices", headers=HEADERS)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["detail"].startswith("too many requests")
        # Guessing keys is limited by address, apart from the key's own bucket:
        guesses = [c.get("/indices", headers={"X-API-Key": f"g{n}"}) for n in range(7)]
        assert [g.status_code for g in guesses] == [401] * 5 + [429] * 2
        assert c.get("/health").status_code == 200  # operations are not limited


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, now=lambda: now[0])
    assert [limiter.take("a") for _ in range(4)] == [None, None, None, 1]
    assert limiter.take("b") is None  # clients are apart
    now[0] = 0.5  # one token back
    assert limiter.take("a") is None and limiter.take("a") == 1
    slow = RateLimiter(rate=0.1, burst=1, now=lambda: now[0])
    assert slow.take("a") is None and slow.take("a") == 10


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 100), burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)  # fmt: skip
def test_no_client_ever_gets_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    now = [0.0]
    limiter = RateLimiter(rate, burst, now=lambda: now[0])
    granted = 0
    for gap in gaps:
        now[0] += gap
        wait = limiter.take("c")
        granted += wait is None
        assert wait is None or wait >= 1
        assert granted <= burst + rate * now[0] + 1e-9


# The WebSocket.


def test_the_websocket_pushes_each_new_snapshot(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    hub = Hub(folder)
    hub.poll()
    with running(create_app(Settings(data_dir=folder, api_keys=KEY), hub)) as server:  # type: ignore[arg-type]
        ws_url = server.url.replace("http://", "ws://") + "/ws/live/NIFTY"
        with connect(f"{ws_url}?key={KEY}") as first, connect(f"{ws_url}?key={KEY}") as second:
            now = [json.loads(first.recv(timeout=30)), json.loads(second.recv(timeout=30))]
            assert now[0] == now[1] == read_live(live_path(folder, "NIFTY"))
            for stamp in ("2026-11-20T15:29:00+05:30", "2026-11-20T15:29:30+05:30"):
                message = dict(now[0], ts=stamp)
                write_live(folder, "NIFTY", encode(message))
                assert server.on_loop(hub.poll) == ["NIFTY"]
                for ws in (first, second):
                    pushed = json.loads(ws.recv(timeout=30))
                    assert pushed["type"] == "snapshot" and pushed["ts"] == stamp


def test_the_websocket_wants_a_key(api: Running) -> None:
    ws_url = api.url.replace("http://", "ws://") + "/ws/live/NIFTY"
    for url in (ws_url, f"{ws_url}?key=wrong"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url).close()
        assert refused.value.response.status_code == 401


def test_a_slow_client_gets_the_newest_message_not_a_queue(
    cycles: list[Cycle], tmp_path: Path
) -> None:
    hub = Hub(tmp_path)

    async def scenario() -> list[str]:
        seen: list[str] = []
        changed = hub.changed("NIFTY")
        for cycle in cycles:  # three snapshots while the client is busy
            hub.publish(cycle)
        await changed.wait()
        message = hub.message("NIFTY")
        assert message is not None
        seen.append(message["ts"])
        return seen

    assert asyncio.run(scenario()) == [cycles[-1].snapshot.ts.isoformat()]


# The commands.


def _api_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.fullmatch(r"API at (http://127\.0\.0\.1:\d+)\n", line)
    assert found, line
    return found[1]


@pytest.mark.e2e
def test_opchain_serve_shows_a_recorded_directory(data: Path) -> None:
    command = [sys.executable, "-m", "opchain", "serve", "-d", str(data), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = _api_line(process)
            indices = httpx.get(f"{url}/indices").json()["indices"]
            assert [i["index"] for i in indices][:3] == ["NIFTY", "BANKNIFTY", "SENSEX"]
        finally:
            process.kill()


@pytest.mark.e2e
def test_opchain_run_serves_the_api_beside_the_collector(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "opchain", "run", "-d", str(tmp_path), "--speed", "600",
               "--start", "2026-11-20T09:15:00", "--sessions", "1", "--cadence", "30"]  # fmt: skip
    env = {**os.environ, "OPCHAIN_API_PORT": "0"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            url = _api_line(process)
            with connect(url.replace("http://", "ws://") + "/ws/live/SENSEX") as ws:
                message = json.loads(ws.recv(timeout=60))
                assert message["index"] == "SENSEX" and message["chains"]
                status = httpx.get(f"{url}/market-status").json()
                assert status["now"].startswith("2026-11-20T")  # the simulated clock
                assert status["is_open"] is True
                # The collector's own counters and its supervisor's state, in the same process.
                metrics = httpx.get(f"{url}/metrics").text
                assert _sample(metrics, 'opchain_snapshots_total{index="SENSEX"}') >= 1
                checks = httpx.get(f"{url}/health").json()["checks"]
                assert checks["collector"]["status"] == "ok"
        finally:
            process.kill()


def _sample(text: str, name: str) -> float:
    """The value of one sample in Prometheus' text format."""
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[-1])
