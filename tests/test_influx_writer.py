"""The InfluxDB writer against real servers: influxd 1.6 (v1 write API) and VictoriaMetrics
(v2 write API). Points arrive, exactly once, through a server stopped and started again, a
writer closed, or killed the moment after its last put, a torn spool, a full spool and a server
that never answers; put() never waits on any of it. Several puts go as one request of gzip
members back to back, which both servers read whole."""

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response

from opchain.health.alerts import alerts_for
from opchain.health.metrics import Metrics
from opchain.health.state import read
from opchain.market.ist import IST
from opchain.outputs.influx import writer as writer_module
from opchain.outputs.influx.transport import Outcome, Transport
from opchain.outputs.influx.writer import SINK, InfluxWriter
from opchain.settings import Settings

from .servers_health import closed_port, influxd_server, silent_listener
from .servers_influx import fake_influx, influx_rows, influxd_at, ports, victoria_metrics, vm_export

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=IST)  # in a session

BASE = 1_795_000_000_000_000_000  # ns: 2026-11-18, a fixed time, so a replay overwrites
DB = "writer_test"
FAST = (0.05, 0.2)  # backoff for tests: first wait and longest, seconds


def points(start: int, n: int) -> list[str]:
    """Lines ``start`` .. ``start + n - 1``: seven series, each point at its own time."""
    return [f"w,host=t,k={i % 7} n={i}i {BASE + i * 1_000_000}" for i in range(start, start + n)]


def expected(*ranges: range) -> list[list[int]]:
    return [[BASE + i * 1_000_000, i] for r in ranges for i in r]


def arrived(url: str) -> list[list[int]]:
    return sorted(influx_rows(url, DB, "SELECT n FROM w"))


def settings_for(tmp_path: Path, url: str, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        influxdb_url=url,
        influxdb_db=DB,
        **{"influxdb_flush_seconds": 0.05, **extra},
    )


@contextmanager
def writing(settings: Settings, spool: Path, **options: Any) -> Iterator[InfluxWriter]:
    writer = InfluxWriter(settings, spool, backoff=FAST, **options)
    try:
        yield writer
    finally:
        writer.close(0)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll the writer's thread's progress, bounded by a generous deadline."""
    pause = threading.Event()  # never set: a bounded wait between looks
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        pause.wait(0.01)


def down_url() -> str:
    return f"http://127.0.0.1:{closed_port()}"


def influx_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "influx"
    folder.mkdir(exist_ok=True)
    return folder


def reports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The statuses and details the writer reports to opchain.health, in order (each a
    change)."""
    seen: list[tuple[str, str]] = []
    report = writer_module.report

    def recording(data_dir: Path, component: str, status: Any, detail: str, *args: Any) -> None:
        seen.append((status, detail))
        report(data_dir, component, status, detail, *args)

    monkeypatch.setattr(writer_module, "report", recording)
    return seen


def test_points_arrive_and_a_missing_database_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = reports(monkeypatch)
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        settings = settings_for(tmp_path, url, influxdb_batch_points=1000)
        metrics = Metrics()
        with writing(settings, tmp_path / "spool", metrics=metrics) as writer:
            for start in range(0, 3000, 500):
                writer.put(points(start, 500))
            assert writer.drain(60)
            stats = writer.stats()
        assert arrived(url) == expected(range(3000))
    assert [status for status, _ in seen] == ["ok"]  # once: points in the spool are no news
    text = metrics.exposition().decode()
    assert "opchain_influx_points_written_total 3000.0" in text
    assert "opchain_influx_queue_points 0.0" in text and "opchain_influx_spool_bytes 0.0" in text
    assert (stats.points_attempted, stats.points_written) == (3000, 3000)
    assert (stats.points_rejected, stats.points_dropped, stats.spool_points) == (0, 0, 0)
    assert stats.state == "ok" and stats.flush_latency_ms is not None
    assert read(settings.data_dir)[SINK]["status"] == "ok"


def test_a_bad_line_is_rejected_once_and_other_batches_arrive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        settings = settings_for(tmp_path, url, influxdb_batch_points=10)
        with writing(settings, tmp_path / "spool") as writer:
            writer.put(points(0, 10))
            writer.put([*points(10, 9), "w,host=t n= 1"])  # the tenth line is not a point
            writer.put(points(20, 10))
            with caplog.at_level(logging.WARNING):
                assert writer.drain(60)
            stats = writer.stats()
        # InfluxDB 1.x writes the good lines of a batch with a bad one (a partial write)
        assert arrived(url) == expected(range(19), range(20, 30))
    assert (stats.points_written, stats.points_rejected, stats.spool_points) == (29, 1, 0)
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 1 and "unable to parse" in rejected[0], rejected


def test_the_v2_api_with_bucket_org_and_token(tmp_path: Path) -> None:
    with victoria_metrics(tmp_path / "vm") as (url, _):
        settings = settings_for(
            tmp_path,
            url,
            influxdb_api="v2",
            influxdb_bucket="options",
            influxdb_org="desk",
            influxdb_token="secret",
        )
        with writing(settings, tmp_path / "spool") as writer:
            writer.put(points(0, 100))
            assert writer.drain(60)
            assert writer.stats().points_written == 100
        series = vm_export(url, "w_n")  # a field is the metric <measurement>_<field>
    got = sorted((t, v) for s in series for t, v in zip(s["timestamps"], s["values"], strict=True))
    assert got == [(BASE // 1_000_000 + i, i) for i in range(100)]  # milliseconds there


def test_a_server_stopped_and_started_again_gets_every_point_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = reports(monkeypatch)
    where, folder = ports(), influx_folder(tmp_path)
    settings = settings_for(tmp_path, where.url, influxdb_batch_points=100)
    with writing(settings, tmp_path / "spool") as writer:
        with influxd_at(folder, where):
            writer.put(points(0, 100))
            assert writer.drain(60)
        for start in range(100, 600, 100):  # the server is gone
            writer.put(points(start, 100))
        wait_until(lambda: writer.stats().state == "down")
        assert writer.stats().spool_points == 500
        assert read(settings.data_dir)[SINK]["status"] == "degraded"  # away, not for long yet
        with influxd_at(folder, where):  # the same data, the same port
            assert writer.drain(60)
            assert arrived(where.url) == expected(range(600))
            assert read(settings.data_dir)[SINK]["status"] == "ok"
        stats = writer.stats()
    assert (stats.points_written, stats.spool_points, stats.spool_bytes) == (600, 0, 0)
    assert stats.state == "ok" and stats.last_error is not None
    assert [status for status, _ in seen] == ["ok", "degraded", "degraded", "ok"]
    assert "not taking writes" in seen[1][1] and "replaying" in seen[2][1]  # the backlog


def test_a_closed_writers_spool_is_replayed_in_order_before_new_points(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = InfluxWriter(settings_for(tmp_path, down_url(), influxdb_batch_points=1), spool)
    first.put(points(0, 10))
    for value in (1, 2):  # one point written twice: the later value must win
        first.put([f"w,host=t,k=x n={value}i {BASE - 1}"])
    first.close(0)
    assert first.stats().spool_points == 12
    assert list(spool.glob("*.seg"))
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        with writing(settings_for(tmp_path, url), spool) as second:
            second.put([f"w,host=t,k=x n=3i {BASE - 1}"])  # newer than anything spooled
            assert second.drain(60)
        assert arrived(url) == [[BASE - 1, 3], *expected(range(10))]
    assert not list(spool.glob("*.seg"))


KILLED = """
import sys, threading
from pathlib import Path
from opchain.outputs.influx.writer import InfluxWriter
from opchain.settings import Settings

data, url, spool, base = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
settings = Settings(data_dir=data, influxdb_url=url, influxdb_db="x", influxdb_batch_points=50,
                    influxdb_flush_seconds=0.05)
writer = InfluxWriter(settings, spool, backoff=(0.05, 0.2))
for start in range(0, 1000, 50):
    writer.put([f"w,host=t,k={i % 7} n={i}i {base + i * 1_000_000}"
                for i in range(start, start + 50)])
pause = threading.Event()
while writer.stats().spool_points < 1000:
    pause.wait(0.01)
print("spooled", flush=True)
sys.stdin.read()
"""


def test_a_killed_writers_spool_is_replayed_none_lost_none_twice(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    command = [sys.executable, "-c", KILLED, str(tmp_path / "data"), down_url(), str(spool)]
    process = subprocess.Popen(
        [*command, str(BASE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "spooled\n"
    finally:
        process.kill()  # SIGKILL: no close, no flush
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        with writing(settings_for(tmp_path, url), spool) as writer:
            assert writer.stats().spool_points == 1000
            assert writer.drain(60)
        assert arrived(url) == expected(range(1000))


def test_a_torn_spool_tail_is_cut_and_the_batches_before_it_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    first = InfluxWriter(settings_for(tmp_path, down_url(), influxdb_batch_points=10), spool)
    for start in range(0, 30, 10):
        first.put(points(start, 10))
    first.close(0)
    assert first.stats().spool_points == 30
    last = sorted(spool.glob("*.seg"))[-1]
    with last.open("r+b") as f:  # the last record loses its end, as in a kill mid-write
        f.truncate(last.stat().st_size - 5)
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        with caplog.at_level(logging.WARNING):
            writer = InfluxWriter(settings_for(tmp_path, url), spool, backoff=FAST)
        try:
            assert writer.stats().spool_points == 20
            assert writer.drain(60)
        finally:
            writer.close(0)
        assert arrived(url) == expected(range(20))
    assert any("torn" in r.getMessage() for r in caplog.records)


def test_a_full_spool_drops_counts_and_alerts(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        down_url(),
        influxdb_batch_points=10,
        influxdb_spool_mb=0.002,  # about 2 KB
    )
    metrics = Metrics()
    with writing(settings, tmp_path / "spool", metrics=metrics) as writer:
        for start in range(0, 2000, 10):
            writer.put(points(start, 10))
        assert writer.stats().state == "full"  # put itself found it full
        wait_until(lambda: read(settings.data_dir)[SINK]["status"] == "down")
        stats = writer.stats()
    assert stats.points_dropped > 0
    assert stats.points_dropped + stats.spool_points == 2000
    assert stats.spool_bytes <= 0.002 * (1 << 20)
    state = read(settings.data_dir)[SINK]
    assert "spool full" in state["detail"]
    assert f"component_down:{SINK}" in {a.key for a in alerts_for([], {SINK: state}, NOW)}
    text = metrics.exposition().decode()
    assert f"opchain_influx_points_dropped_total {float(stats.points_dropped)}" in text


def test_a_server_that_never_answers_costs_put_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with silent_listener() as port:
        settings = settings_for(
            tmp_path,
            f"http://127.0.0.1:{port}",
            influxdb_batch_points=10,
            influxdb_timeout_seconds=0.5,
        )
        writer = InfluxWriter(settings, spool, backoff=FAST)
        for start in range(0, 1000, 10):
            writer.put(points(start, 10))
        stats = writer.stats()
        # put() returned though the server never answered: every point is on disk already
        assert stats.points_written == 0
        assert stats.queue_points == stats.spool_points == 1000
        wait_until(lambda: writer.stats().state == "down")
        assert "ReadTimeout" in (writer.stats().last_error or "")
        writer.close(0)
    assert writer.stats().spool_points == 1000
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        with writing(settings_for(tmp_path, url), spool) as second:
            assert second.drain(60)
        assert arrived(url) == expected(range(1000))


def test_a_server_away_for_long_is_down_and_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "DOWN_ALERT_SECONDS", 0.0)  # "long" is now
    settings = settings_for(tmp_path, down_url())
    with writing(settings, tmp_path / "spool") as writer:
        writer.put(points(0, 10))
        wait_until(lambda: read(settings.data_dir)[SINK]["status"] == "down")
        assert writer.stats().state == "down"
    state = read(settings.data_dir)[SINK]
    assert "not taking writes" in state["detail"] and "ConnectError" in state["detail"]
    assert f"component_down:{SINK}" in {a.key for a in alerts_for([], {SINK: state}, NOW)}


def test_points_put_after_close_are_counted_as_dropped(tmp_path: Path) -> None:
    writer = InfluxWriter(settings_for(tmp_path, down_url()), tmp_path / "spool")
    writer.close(0)
    writer.put(points(0, 5))
    stats = writer.stats()
    assert (stats.points_attempted, stats.points_dropped, stats.queue_points) == (5, 5, 0)


def test_refusals_are_retried_after_a_backoff_or_the_servers_retry_after(tmp_path: Path) -> None:
    with fake_influx() as fake:
        fake.answers = [
            Response("busy", status_code=503),
            Response(status_code=429, headers={"Retry-After": "0"}),
        ]
        with writing(settings_for(tmp_path, fake.url), tmp_path / "spool") as writer:
            writer.put(points(0, 10))
            assert writer.drain(60)
            stats = writer.stats()
    assert [s.lines for s in fake.seen] == [points(0, 10)] * 3  # the batch, until taken
    assert (stats.points_written, stats.spool_points, stats.state) == (10, 0, "ok")
    assert stats.last_error == "HTTP 429: HTTP 429"


KILLED_AFTER_PUT = """
import os, signal, sys
from pathlib import Path
from opchain.outputs.influx.writer import InfluxWriter
from opchain.settings import Settings

data, url, spool, base = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
settings = Settings(data_dir=data, influxdb_url=url, influxdb_db="writer_test",
                    influxdb_batch_points=5000, influxdb_flush_seconds=60)
writer = InfluxWriter(settings, spool)
for start in range(0, 1000, 50):
    writer.put([f"w,host=t,k={i % 7} n={i}i {base + i * 1_000_000}"
                for i in range(start, start + 50)])
os.kill(os.getpid(), signal.SIGKILL)  # right after the last put returned: no flush, no close
"""


def test_points_put_before_a_kill_reach_a_live_server_exactly_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        command = [sys.executable, "-c", KILLED_AFTER_PUT, str(tmp_path / "data"), url, str(spool)]
        done = subprocess.run([*command, str(BASE)], check=False)
        assert done.returncode == -signal.SIGKILL
        with writing(settings_for(tmp_path, url), spool) as writer:
            assert writer.stats().spool_points == 1000
            assert writer.drain(60)
        assert arrived(url) == expected(range(1000))  # each series and time once


def gzip_members(body: bytes) -> int:
    count = 0
    while body:
        reader = zlib.decompressobj(wbits=31)  # one gzip member
        reader.decompress(body)
        assert reader.eof
        body, count = reader.unused_data, count + 1
    return count


def test_puts_go_as_one_request_of_gzip_members_which_both_servers_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies: list[bytes] = []
    send = Transport.send

    def recording(self: Transport, body: bytes, n: int) -> Outcome:
        bodies.append(body)
        return send(self, body, n)

    monkeypatch.setattr(Transport, "send", recording)
    slow = {"influxdb_batch_points": 1000, "influxdb_flush_seconds": 60}  # sent by the drain
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        with writing(settings_for(tmp_path, url, **slow), tmp_path / "spool1") as writer:
            for start in range(0, 100, 10):
                writer.put(points(start, 10))
            assert writer.drain(60)
        assert arrived(url) == expected(range(100))
    with victoria_metrics(tmp_path / "vm") as (url, _):
        v2 = {"influxdb_api": "v2", "influxdb_bucket": "options", **slow}
        with writing(settings_for(tmp_path, url, **v2), tmp_path / "spool2") as writer:
            for start in range(0, 100, 10):
                writer.put(points(start, 10))
            assert writer.drain(60)
            assert writer.stats().points_written == 100
        series = vm_export(url, "w_n")
    got = sorted((t, v) for s in series for t, v in zip(s["timestamps"], s["values"], strict=True))
    assert got == [(BASE // 1_000_000 + i, i) for i in range(100)]
    assert [gzip_members(b) for b in bodies] == [10, 10]  # one request each, ten puts in it


@contextmanager
def hung_server() -> Iterator[tuple[int, threading.Event]]:
    """A port whose first connection is accepted (the event is set) and never answered."""
    accepted = threading.Event()
    connections: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(60)

        def accept() -> None:
            try:
                connections.append(listener.accept()[0])
                accepted.set()
            except OSError:
                pass

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            yield listener.getsockname()[1], accepted
        finally:
            for connection in connections:
                connection.close()


def test_puts_return_while_the_thread_is_stuck_in_a_request_and_none_is_lost(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    with hung_server() as (port, accepted):
        settings = settings_for(
            tmp_path,
            f"http://127.0.0.1:{port}",
            influxdb_batch_points=10,
            influxdb_timeout_seconds=600,
        )
        writer = InfluxWriter(settings, spool, backoff=FAST)
        writer.put(points(0, 10))
        assert accepted.wait(60)  # the thread is in a request that will not be answered
        for start in range(10, 500, 10):
            writer.put(points(start, 10))
        stats = writer.stats()
        assert (stats.points_attempted, stats.points_written, stats.spool_points) == (500, 0, 500)
        writer.close(0)
    with influxd_server(influx_folder(tmp_path)) as (url, _):
        with writing(settings_for(tmp_path, url), spool) as second:
            assert second.drain(60)
        assert arrived(url) == expected(range(500))


def test_a_full_spool_is_full_until_half_of_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = reports(monkeypatch)
    with fake_influx() as fake:
        settings = settings_for(
            tmp_path,
            fake.url,
            influxdb_batch_points=100_000,
            influxdb_flush_seconds=60,  # nothing is sent before a drain
            influxdb_spool_mb=0.002,
        )
        with writing(settings, tmp_path / "spool") as writer:
            for start in range(0, 2000, 10):
                writer.put(points(start, 10))
            full = writer.stats()
            assert full.state == "full" and full.points_dropped > 0
            assert writer.drain(60)
            writer.put(points(2000, 10))
            assert writer.drain(60)
            stats = writer.stats()
    assert stats.state == "ok" and stats.points_dropped == full.points_dropped
    assert [status for status, _ in seen] == ["ok", "down", "ok"]
    assert sum(len(s.lines) for s in fake.seen) == full.spool_points + 10
