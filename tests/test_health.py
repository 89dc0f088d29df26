"""Health checks against real things: a recorded session's files, the disk, token files,
throwaway redis-server and influxd processes, a listener that never answers, the fake Kite
behind the counting transport; then ``/health`` and ``opchain health`` on top."""

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from opchain.api import ops
from opchain.brokers.kite.client import KiteClient, Transient
from opchain.brokers.kite.fake import FakeKite, Faults
from opchain.brokers.kite.session import StoredToken, save_token
from opchain.brokers.tally import BrokerTally, CountingTransport
from opchain.cli import app as cli
from opchain.health import state
from opchain.health.checks import (
    Check,
    bounded,
    broker_check,
    check_all,
    cpu_check,
    disk_check,
    hold_since,
    influxdb_check,
    memory_status,
    redact,
    redis_check,
    storage_check,
    token_check,
)
from opchain.health.summary import summarize
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.settings import Settings

from .servers import serve_in_thread
from .servers_health import closed_port, influxd_server, redis_server, silent_listener, stop
from .sessions import DAY, record

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=IST)
SESSION = calendar.session("NSE", DAY)
assert SESSION is not None


def kite_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path,
        broker="kite",
        kite_api_key="k",
        kite_token_file=tmp_path / "token.json",
        **overrides,
    )


def stored(expires: datetime, api_key: str = "k") -> StoredToken:
    return StoredToken(
        api_key, "secret-token", "AB1234", "A B", expires - timedelta(hours=20), expires
    )


# --- the Kite token -------------------------------------------------------------------------


def test_the_simulator_has_no_token_to_check(tmp_path: Path) -> None:
    assert token_check(Settings(data_dir=tmp_path), NOW) is None


@pytest.mark.parametrize(
    ("left", "status"),
    [
        (timedelta(hours=19), "ok"),
        (timedelta(minutes=31), "ok"),
        (timedelta(minutes=30), "degraded"),
        (timedelta(minutes=1), "degraded"),
        (timedelta(0), "down"),
        (-timedelta(hours=1), "down"),
    ],
)
def test_a_token_is_judged_by_the_time_it_has_left(
    tmp_path: Path, left: timedelta, status: str
) -> None:
    settings = kite_settings(tmp_path)
    save_token(settings.token_file, stored(NOW + left))
    check = token_check(settings, NOW)
    assert check is not None and check.status == status
    assert check.value == (NOW + left).timestamp()
    assert "secret-token" not in check.detail
    assert ("opchain login" in check.detail) == (status != "ok")


def test_no_login_or_another_keys_login_is_down(tmp_path: Path) -> None:
    settings = kite_settings(tmp_path)
    missing = token_check(settings, NOW)
    assert missing is not None and missing.status == "down" and "no Kite login" in missing.detail
    save_token(settings.token_file, stored(NOW + timedelta(hours=5), api_key="other"))
    other = token_check(settings, NOW)
    assert other is not None and other.status == "down" and "another API key" in other.detail
    settings.token_file.write_text("{not json")
    broken = token_check(settings, NOW)
    assert broken is not None and broken.status == "down" and "log in again" in broken.detail


def test_a_token_from_the_environment_dies_by_six(tmp_path: Path) -> None:
    settings = kite_settings(tmp_path, kite_access_token="from-env")
    evening = token_check(settings, NOW)
    assert evening is not None and evening.status == "ok" and "environment" in evening.detail
    assert evening.value == datetime(2026, 11, 21, 6, 0, tzinfo=IST).timestamp()
    dawn = token_check(settings, datetime(2026, 11, 21, 5, 45, tzinfo=IST))
    assert dawn is not None and dawn.status == "degraded"


# --- stored data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten minutes of the simulated session of DAY, to 09:25."""
    folder = tmp_path_factory.mktemp("recorded")
    record(folder, until=SESSION.open + timedelta(minutes=10))
    return folder


def test_fresh_data_in_a_session_is_ok_and_old_data_is_stale(recorded: Path) -> None:
    settings = Settings(data_dir=recorded)
    newest = SESSION.open + timedelta(minutes=9, seconds=30)  # the last 30-second cycle
    fresh = storage_check(settings, newest + timedelta(seconds=40))
    assert (fresh.status, fresh.value) == ("ok", 40.0)
    in_utc = storage_check(settings, (newest + timedelta(seconds=40)).astimezone(UTC))
    assert (in_utc.status, in_utc.value) == ("ok", 40.0)  # the same instant, any timezone
    past_midnight = datetime(2026, 11, 20, 19, 30, tzinfo=UTC)  # 01:00 IST on Saturday
    assert "no snapshot today" in storage_check(settings, past_midnight).detail  # IST's day
    assert "09:24:30" in fresh.detail
    stale = storage_check(settings, newest + timedelta(seconds=121))
    assert (stale.status, stale.value) == ("down", 121.0)
    assert "stale after 120" in stale.detail
    strict = storage_check(
        Settings(data_dir=recorded, stale_seconds=30), newest + timedelta(seconds=40)
    )
    assert strict.status == "down"


def test_outside_a_session_nothing_is_stale(recorded: Path) -> None:
    settings = Settings(data_dir=recorded)
    evening = storage_check(settings, SESSION.close + timedelta(hours=2))
    assert evening.status == "ok" and "market closed" in evening.detail
    saturday = storage_check(settings, datetime(2026, 11, 21, 11, 0, tzinfo=IST))
    assert saturday.status == "ok" and "no snapshot today" in saturday.detail


def test_a_session_without_any_data_turns_stale_after_the_open(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    early = storage_check(settings, SESSION.open + timedelta(seconds=60))
    assert early.status == "ok" and early.value == 60.0
    late = storage_check(settings, SESSION.open + timedelta(minutes=5))
    assert late.status == "down" and "no snapshot today" in late.detail


def test_a_collector_started_mid_session_has_stale_seconds_to_store(tmp_path: Path) -> None:
    """Issue 13, case 14: `opchain run` started at 14:26 with nothing stored today was judged
    from the open ("nothing stored for 18660 s"), a critical alert within seconds. Stale is
    nothing stored for stale_seconds since the open or the collector's start, the later."""
    settings = Settings(data_dir=tmp_path)
    start = datetime(2026, 11, 20, 14, 26, tzinfo=IST)
    state.report(tmp_path, "collector", "ok", "running", start, started=start)
    at_once = storage_check(settings, start + timedelta(seconds=4))
    assert (at_once.status, at_once.value) == ("ok", 4.0)
    assert "no snapshot today; the collector started at 14:26:00, 4 s ago" in at_once.detail
    assert storage_check(settings, start + timedelta(seconds=120)).status == "ok"
    stalled = storage_check(settings, start + timedelta(seconds=121))
    assert (stalled.status, stalled.value) == ("down", 121.0)
    # Restarts keep the first start; a collector of yesterday (or before the open) counts
    # from the open.
    later = start + timedelta(minutes=3)
    state.report(tmp_path, "collector", "ok", "running again (restart 1)", later, started=start)
    assert storage_check(settings, later + timedelta(seconds=4)).status == "down"
    yesterday = start - timedelta(days=1)
    state.report(tmp_path, "collector", "ok", "running", yesterday, started=yesterday)
    assert storage_check(settings, SESSION.open + timedelta(seconds=121)).status == "down"


def test_a_collector_started_mid_session_is_judged_by_its_snapshots_once_it_has_one(
    recorded: Path, tmp_path: Path
) -> None:
    """A snapshot stored after the start: the lag is from it, as before."""
    shutil.copytree(recorded / "overview", tmp_path / "overview")
    newest = SESSION.open + timedelta(minutes=9, seconds=30)
    started = newest - timedelta(seconds=5)
    state.report(tmp_path, "collector", "ok", "running", started, started=started)
    check = storage_check(Settings(data_dir=tmp_path), newest + timedelta(seconds=121))
    assert (check.status, check.value) == ("down", 121.0)
    assert "the collector started" not in check.detail


@pytest.mark.parametrize("tail", [b"\xff\xfe\n", b"@@@\n", b"\x00\x00\n", b"ts,index\n"])
def test_a_damaged_last_line_is_not_the_end_of_the_data(
    recorded: Path, tmp_path: Path, tail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad last line in today's overview files (every index's) was no snapshot at all: a
    false `storage` down (a critical stale alert) while the recorder was fine. The newest
    snapshot is the last good row's, and the bad line is named once in the log."""
    shutil.copytree(recorded / "overview", tmp_path / "overview")
    for path in (tmp_path / "overview").rglob(f"{DAY}.csv"):
        path.write_bytes(path.read_bytes() + tail)
    newest = SESSION.open + timedelta(minutes=9, seconds=30)
    check = storage_check(Settings(data_dir=tmp_path), newest + timedelta(seconds=40))
    assert (check.status, check.value) == ("ok", 40.0)
    again = storage_check(Settings(data_dir=tmp_path), newest + timedelta(seconds=50))
    assert (again.status, again.value) == ("ok", 50.0)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == len(Settings().indices)  # one line a file, however often it is checked
    assert all(m.startswith(str(tmp_path / "overview")) and ":22: " in m for m in said), said


def test_a_year_without_a_calendar_is_degraded_not_an_error(tmp_path: Path) -> None:
    check = storage_check(Settings(data_dir=tmp_path), datetime(2031, 3, 3, 11, tzinfo=IST))
    assert check.status == "degraded"


# --- disk, CPU, memory ----------------------------------------------------------------------


def test_disk_space_against_the_minimum_and_the_floor(tmp_path: Path) -> None:
    ok = disk_check(Settings(data_dir=tmp_path / "not" / "yet"), NOW)
    assert ok.status == "ok" and ok.value is not None and ok.value > 0
    assert str(tmp_path) in ok.detail  # the nearest existing folder is measured
    low = disk_check(Settings(data_dir=tmp_path, disk_min_free_gb=1e9), NOW)
    assert low.status == "degraded"
    full = disk_check(Settings(data_dir=tmp_path), NOW, floor=2**62)
    assert full.status == "down"


def test_cpu_and_memory_are_ratios_and_thresholds_hold() -> None:
    cpu = cpu_check(NOW)
    assert cpu.value is not None and 0.0 <= cpu.value <= 1.0 and "CPUs" in cpu.detail
    assert [memory_status(p) for p in (50.0, 90.0, 97.9, 98.0)] == [
        "ok",
        "degraded",
        "degraded",
        "down",
    ]


# --- InfluxDB and Redis, for real -----------------------------------------------------------


def test_redis_up_then_killed(tmp_path: Path) -> None:
    with redis_server(tmp_path) as (url, process):
        up = asyncio.run(redis_check(url, NOW))
        assert up.status == "ok" and up.value is not None and "answers" in up.detail
        stop(process)
        down = asyncio.run(redis_check(url, NOW))
    assert down.status == "down" and "unreachable" in down.detail


def test_influxdb_up_then_killed(tmp_path: Path) -> None:
    with influxd_server(tmp_path) as (url, process):
        up = asyncio.run(influxdb_check(url, NOW))
        assert up.status == "ok" and "InfluxDB 1.6.7" in up.detail
        stop(process)
        down = asyncio.run(influxdb_check(url, NOW))
    assert down.status == "down" and "unreachable" in down.detail


def test_an_http_answer_other_than_204_is_down() -> None:
    async def teapot(_: object) -> Response:
        return Response(status_code=418)

    with serve_in_thread(Starlette(routes=[Route("/ping", teapot)])) as root:
        check = asyncio.run(influxdb_check(root, NOW))
    assert check.status == "down" and "HTTP 418" in check.detail


def test_hung_sinks_cost_the_timeout_not_the_health_endpoint(tmp_path: Path) -> None:
    with silent_listener() as port:
        settings = Settings(
            data_dir=tmp_path,
            influxdb_url=f"http://127.0.0.1:{port}",
            redis_url=f"redis://127.0.0.1:{port}/0",
        )
        checks = {c.name: c for c in asyncio.run(check_all(settings, NOW, timeout=0.3))}
    assert checks["influxdb"].status == "down" and checks["redis"].status == "down"
    assert {"disk", "cpu", "memory", "storage"} <= set(checks)  # the rest still answered


def test_a_check_that_hangs_or_breaks_is_down_not_stuck() -> None:
    hung = asyncio.run(bounded("stuck", asyncio.Event().wait(), NOW, 0.05))  # type: ignore[arg-type]
    assert hung == Check("stuck", "down", "no answer within 0.05 s", NOW)

    async def broken() -> Check:
        raise OSError("input/output error")

    failed = asyncio.run(bounded("disk", broken(), NOW, 1.0))
    assert failed == Check("disk", "down", "the check failed: input/output error", NOW)


def test_unconfigured_sinks_are_not_listed_and_configured_ones_are(tmp_path: Path) -> None:
    names = {c.name for c in asyncio.run(check_all(Settings(data_dir=tmp_path), NOW))}
    assert names == {"cpu", "disk", "memory", "storage"}
    closed = f"127.0.0.1:{closed_port()}"
    settings = Settings(
        data_dir=tmp_path,
        influxdb_url=f"http://{closed}",
        redis_url=f"redis://u:pw-secret@{closed}/0",
    )
    checks = {c.name: c for c in asyncio.run(check_all(settings, NOW))}
    assert checks["influxdb"].status == checks["redis"].status == "down"
    assert "pw-secret" not in checks["redis"].detail


def test_redact_drops_user_and_password() -> None:
    assert redact("redis://u:secret@host:6379/0") == "redis://host:6379/0"
    assert redact("http://127.0.0.1:8086") == "http://127.0.0.1:8086"


# --- Kite's answers, counted at the transport -----------------------------------------------


def test_the_transport_counts_429s_and_the_check_sees_them() -> None:
    clock = VirtualClock(NOW)
    fake = FakeKite(clock, faults=Faults(script=["too_many", "too_many", "server_error"]))
    seen: list[str] = []
    tally = BrokerTally(lambda outcome, _: seen.append(outcome))
    with serve_in_thread(fake.app()) as root:

        async def go() -> None:
            transport = CountingTransport(httpx.AsyncHTTPTransport(), tally)
            kite = KiteClient(
                fake.api_key, fake.issue_access_token(), root, clock, transport=transport, seed=1
            )
            assert broker_check(tally, NOW).detail == "no requests yet"
            await kite.quote(["NSE:NIFTY 50"])
            await kite.close()

        asyncio.run(go())
    assert seen == ["rate_limited", "rate_limited", "server_error", "ok"]
    check = broker_check(tally, NOW)
    assert check.status == "degraded"
    assert "last 4 requests" in check.detail and "2 rate-limited (429), 1 failed" in check.detail


def test_a_broker_that_never_answers_is_down() -> None:
    tally = BrokerTally()
    clock = VirtualClock(NOW)

    async def go() -> None:
        transport = CountingTransport(httpx.AsyncHTTPTransport(), tally)
        kite = KiteClient(
            "k",
            "t",
            f"http://127.0.0.1:{closed_port()}",
            clock,
            transport=transport,
            attempts=3,
            seed=1,
        )
        with pytest.raises(Transient):
            await kite.profile()
        await kite.close()

    asyncio.run(go())
    assert tally.totals == {"error": 3}
    assert broker_check(tally, NOW).status == "down"


# --- the summary, the since, the state files -------------------------------------------------


def test_since_is_held_while_the_status_holds() -> None:
    memory: dict[str, Check] = {}
    later = NOW + timedelta(minutes=1)
    first = hold_since(memory, [Check("disk", "ok", "a", NOW)])
    same = hold_since(memory, [Check("disk", "ok", "b", later)])
    changed = hold_since(memory, [Check("disk", "degraded", "c", later + timedelta(minutes=1))])
    assert [c.since for c in (*first, *same, *changed)] == [NOW, NOW, later + timedelta(minutes=1)]
    assert same[0].detail == "b"


def test_the_summary_merges_component_states_worst_first(tmp_path: Path) -> None:
    state.report(tmp_path, "broker", "degraded", "slow", NOW)
    state.report(tmp_path, "disk", "down", "a running process says so", NOW)
    checks = [Check("disk", "ok", "plenty", NOW), Check("cpu", "ok", "idle", NOW)]
    found = summarize(checks, state.read(tmp_path))
    assert found["status"] == "down"
    assert list(found["checks"]) == ["broker", "cpu", "disk"]
    assert found["checks"]["disk"]["detail"] == "a running process says so"
    assert found["checks"]["cpu"]["since"] == NOW.isoformat()
    assert summarize(checks, {})["status"] == "ok"


def test_an_unreadable_state_file_reads_as_down_not_as_an_error(tmp_path: Path) -> None:
    (tmp_path / "health").mkdir()
    (tmp_path / "health" / "worker.json").write_text("{torn")
    (tmp_path / "health" / "odd.json").write_text('{"component": "odd", "status": "fine"}')
    states = state.read(tmp_path)
    assert states["worker"]["status"] == "down" and "unreadable" in states["worker"]["detail"]
    assert states["odd"]["status"] == "down"


# --- /health and opchain health -------------------------------------------------------------


def get_health(settings: Settings) -> httpx.Response:
    app = FastAPI()
    app.include_router(ops.router)
    app.state.settings = settings

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/health")

    return asyncio.run(go())


def test_health_endpoint_200_when_ok_or_degraded_503_when_down(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    ok = get_health(settings)
    assert ok.status_code == 200
    body = ok.json()
    assert body["status"] in ("ok", "degraded")  # this machine's CPU and memory decide
    assert {"cpu", "disk", "memory", "storage"} <= set(body["checks"])
    assert set(body["checks"]["disk"]) == {"status", "detail", "since"}
    state.report(tmp_path, "broker", "degraded", "Kite answers slowly", NOW)
    degraded = get_health(settings)
    assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
    state.report(tmp_path, "broker", "down", "Kite no longer accepts the access token", NOW)
    down = get_health(settings)
    assert down.status_code == 503
    assert down.json()["status"] == "down"
    assert down.json()["checks"]["broker"] == {
        "status": "down",
        "detail": "Kite no longer accepts the access token",
        "since": NOW.isoformat(),
    }


def test_the_health_command_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    quiet = {"OPCHAIN_DISK_MIN_FREE_GB": "0"}
    ok = runner.invoke(cli, ["health", "-d", str(tmp_path), "--json"], env=quiet)
    body = json.loads(ok.stdout)
    assert ok.exit_code == {"ok": 0, "degraded": 1}[body["status"]]  # CPU/memory: this machine
    low = runner.invoke(
        cli, ["health", "-d", str(tmp_path)], env={"OPCHAIN_DISK_MIN_FREE_GB": "1e9"}
    )
    assert low.exit_code == 1 and "disk" in low.stdout and "degraded" in low.stdout
    state.report(tmp_path, "broker", "down", "token expired", NOW)
    down = runner.invoke(cli, ["health", "-d", str(tmp_path)], env=quiet)
    assert down.exit_code == 2 and "token expired" in down.stdout
    bad = runner.invoke(
        cli, ["health", "-d", str(tmp_path)], env={"OPCHAIN_DISK_MIN_FREE_GB": "-1"}
    )
    assert bad.exit_code == 2 and "error: bad settings" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
