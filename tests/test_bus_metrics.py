"""The scale-out's /metrics: ``opchain collect`` and ``opchain worker`` started with
OPCHAIN_METRICS_PORT serve their own metrics (restarts, the broker's requests, the workers'
cycles and InfluxDB writers), in a format ``promtool check metrics`` accepts; a taken port is
one line and exit code 2."""

import os
import re
import shutil
import socket
import subprocess
from datetime import datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from opchain.brokers.kite.fake import FakeKite
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST

from .servers import serve_in_thread
from .servers_bus import OPCHAIN, Chorus, chorus, redis_at
from .servers_health import closed_port

DAY = "2026-11-20"
INDICES = ("NIFTY", "BANKNIFTY", "SENSEX")
ENV = {
    "OPCHAIN_CADENCE_SECONDS": "300",  # 75 cycles: a whole day, quickly
    "OPCHAIN_FULL_CHAIN": "false",
}
METRICS = {"OPCHAIN_METRICS_PORT": "0"}  # any free port, said in the `metrics at` line
SERVED = r"^metrics at (http://127\.0\.0\.1:(\d+)/metrics)$"


def scrape(bus: Chorus, count: int = 1) -> list[str]:
    """The /metrics of the ``count`` processes that said where theirs are, checked by
    promtool."""
    pages = []
    for line in bus.wait_for(SERVED, count=count):
        found = re.match(SERVED, line.strip())
        assert found and found[2] != "0", line
        response = httpx.get(found[1])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        promtool = shutil.which("promtool")
        assert promtool, "promtool is missing: scripts/system-packages installs it (prometheus)"
        checked = subprocess.run([promtool, "check", "metrics"], input=response.text,
                                 capture_output=True, text=True)  # fmt: skip
        assert checked.returncode == 0 and checked.stdout == checked.stderr == "", checked
        pages.append(response.text)
    return pages


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"no {name}{labels} in {text}")


def test_a_collector_serves_its_restarts_and_broker_requests(tmp_path: Path) -> None:
    """A Kite collector (a fake Kite server): its login check is a request counted."""
    fake = FakeKite(VirtualClock(datetime(2026, 11, 20, 9, 0, tzinfo=IST)))
    with (
        serve_in_thread(fake.app()) as root,
        redis_at(tmp_path / "redis") as (url, _),
        chorus(ENV) as bus,
    ):
        kite = {"KITE_API_KEY": fake.api_key, "KITE_ACCESS_TOKEN": fake.issue_access_token(),
                "OPCHAIN_KITE_ROOT": root, **METRICS}  # fmt: skip
        collector = bus.start("collect", "--bus", url, "--broker", "kite", "-d",
                              str(tmp_path / "c"), env=kite)  # fmt: skip
        bus.wait_for(r"Kite: logged in as", alive=collector)
        [text] = scrape(bus)
        assert collector.process.poll() is None, bus.tail()
    served = families(text)
    assert {"opchain_component_restarts", "opchain_broker_requests",
            "opchain_broker_request_duration_seconds", "opchain_build_info"} <= served  # fmt: skip
    assert value(text, "opchain_broker_requests_total", outcome="ok") >= 1


def test_a_collector_counts_its_restarts(tmp_path: Path) -> None:
    """Redis away and a spool that cannot be written (a file where its folder goes): the
    collector fails at its first cycle, again and again, and is restarted each time."""
    data = tmp_path / "c"
    (data / "spool").mkdir(parents=True)
    (data / "spool" / "bus").write_text("in the way")
    with chorus(ENV) as bus:
        collector = bus.start("collect", "--bus", f"redis://127.0.0.1:{closed_port()}/0", "-d",
                              str(data), "--date", DAY, "--speed", "1", env=METRICS)  # fmt: skip
        # The second restart is said after the first is counted.
        bus.wait_for(r"collector failed .*; restart 2 in", alive=collector)
        [text] = scrape(bus)
    assert value(text, "opchain_component_restarts_total", component="collector") >= 1


def test_a_worker_serves_its_cycles_and_influx_writers(tmp_path: Path) -> None:
    """InfluxDB away (a closed port): every partition's points wait in its spool, and the
    worker's /metrics says how much disk they take, summed over the partitions."""
    influx = {**METRICS, "OPCHAIN_INFLUXDB_URL": f"http://127.0.0.1:{closed_port()}"}
    with redis_at(tmp_path / "redis") as (url, _), chorus(ENV) as bus:
        bus.start("worker", "--bus", url, "-d", str(tmp_path / "data"), "--name", "a", env=influx)
        bus.wait_for(r"taken \(token", count=len(INDICES))
        bus.start("collect", "--bus", url, "-d", str(tmp_path / "c"), "--date", DAY)
        bus.wait_for(r"day closed", count=len(INDICES))
        [text] = scrape(bus)
    assert {"opchain_influx_spool_bytes", "opchain_influx_points_dropped",
            "opchain_component_restarts", "opchain_snapshots"} <= families(text)  # fmt: skip
    for index in INDICES:
        assert value(text, "opchain_snapshots_total", index=index) == 75
    spools = [p for p in (tmp_path / "data").rglob("live-*") if p.is_dir()]
    assert sorted(p.name for p in spools) == sorted(f"live-{index}" for index in INDICES)
    on_disk = sum(f.stat().st_size for p in spools for f in p.rglob("*") if f.is_file())
    assert value(text, "opchain_influx_spool_bytes") == on_disk > 0
    assert value(text, "opchain_influx_points_written_total") == 0


def test_a_taken_port_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        bus = f"redis://127.0.0.1:{closed_port()}/0"  # away: the roles would wait for it
        for role in ("worker", "collect"):
            done = subprocess.run(
                [*OPCHAIN, role, "--bus", bus, "-d", str(tmp_path)],
                env={**os.environ, "OPCHAIN_METRICS_PORT": port, "COLUMNS": "200"},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            said = done.stdout + done.stderr
            assert done.returncode == 2, said
            assert said.strip().splitlines() == [
                f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use "
                "(OPCHAIN_METRICS_PORT)"
            ], said
