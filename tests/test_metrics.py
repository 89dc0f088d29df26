"""Prometheus metrics: what ``observe_cycle`` counts in a simulated session, the health
gauges, and ``/metrics`` served by a FastAPI app with ``ops.router``, checked by the real
``promtool check metrics``."""

import asyncio
import math
import subprocess
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from opchain.api import ops
from opchain.brokers.sim import SimBroker
from opchain.health import state
from opchain.health.checks import Check
from opchain.health.metrics import Metrics
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle
from opchain.model import Snapshot
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings

from .servers_health import influxd_server, redis_server
from .sessions import DAY

NOW = datetime(2026, 11, 20, 11, 0, tzinfo=IST)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def observed_session(folder: Path, metrics: Metrics) -> tuple[SessionReport, list[Snapshot]]:
    """Five minutes of DAY's simulated session with ``metrics.observe_cycle`` as the consumer
    (glitches on, so some legs are flagged)."""
    settings = Settings(data_dir=folder, sim_glitch_rate=0.05)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    seen: list[Snapshot] = []

    def both(cycle: Cycle) -> None:
        seen.append(cycle.snapshot)
        metrics.observe_cycle(cycle)

    until = session.open + timedelta(minutes=5)
    report = asyncio.run(record_session(settings, broker, clock, DAY, until=until, on_cycle=both))
    return report, seen


@pytest.fixture(scope="module")
def session_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Metrics, SessionReport, list[Snapshot]]:
    metrics = Metrics()
    report, seen = observed_session(tmp_path_factory.mktemp("session"), metrics)
    return metrics, report, seen


def test_observe_cycle_counts_what_the_session_stored(
    session_metrics: tuple[Metrics, SessionReport, list[Snapshot]],
) -> None:
    metrics, report, seen = session_metrics
    found = samples(metrics.exposition().decode())
    assert report.cycles == len(seen) == 10
    last = seen[-1]
    for index in ("NIFTY", "BANKNIFTY", "SENSEX"):
        assert found["opchain_snapshots_total", (("index", index),)] == report.cycles
        legs = sum(len(c.legs) for c in last.chains if c.index == index)
        assert legs > 0 and found["opchain_legs_in_snapshot", (("index", index),)] == legs
        stamp = found["opchain_last_snapshot_timestamp_seconds", (("index", index),)]
        assert stamp == last.ts.timestamp()
    flagged: Counter[str] = Counter()
    for (name, labels), value in found.items():
        if name == "opchain_collect_errors_total":
            flagged[dict(labels)["reason"]] += int(value)
    assert flagged == report.flags and sum(flagged.values()) > 0
    assert found["opchain_collect_duration_seconds_count", ()] == report.cycles
    assert found["opchain_build_info", (("python", found_python(found)), ("version", "0.1.0"))] == 1


def found_python(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> str:
    [labels] = [dict(labels) for name, labels in found if name == "opchain_build_info"]
    return labels["python"]


def test_each_metrics_object_counts_alone(
    session_metrics: tuple[Metrics, SessionReport, list[Snapshot]],
) -> None:
    _, _, seen = session_metrics
    fresh = Metrics()
    fresh.observe_cycle(Cycle(snapshot=seen[0], rows=[], stats=[], solved=[]))
    found = samples(fresh.exposition().decode())
    assert found["opchain_snapshots_total", (("index", "NIFTY"),)] == 1
    assert not any(name.endswith("_created") for name, _ in found)


def test_influx_gauges_sum_the_spools_of_every_writer() -> None:
    """A worker keeps one InfluxDB writer per partition: the spool is all of theirs, and a
    writer's news replaces only its own part."""
    metrics = Metrics()
    metrics.observe_influx(5, 0, 0, spool_bytes=100, queue_points=10, spool="live-NIFTY")
    metrics.observe_influx(7, 0, 1, spool_bytes=40, queue_points=4, spool="live-SENSEX")
    metrics.observe_influx(0, 0, 0, spool_bytes=60, queue_points=6, spool="live-NIFTY")
    found = samples(metrics.exposition().decode())
    assert found["opchain_influx_spool_bytes", ()] == 100
    assert found["opchain_influx_queue_points", ()] == 10
    assert found["opchain_influx_points_written_total", ()] == 12
    assert found["opchain_influx_points_dropped_total", ()] == 1


def test_health_gauges_follow_checks_and_states() -> None:
    metrics = Metrics()
    before = samples(metrics.exposition().decode())
    assert math.isnan(before["opchain_kite_token_expiry_timestamp_seconds", ()])  # not 1970
    checks = [
        Check("disk", "degraded", "low", NOW, 3e9),
        Check("redis", "ok", "up", NOW, 0.002),
        Check("storage", "ok", "closed", NOW),
    ]
    states = {"broker": state.State(component="broker", status="down", detail="x", since="")}
    metrics.set_health(checks, states)
    found = samples(metrics.exposition().decode())
    assert found["opchain_disk_free_bytes", ()] == 3e9
    assert found["opchain_sink_response_seconds", (("sink", "redis"),)] == 0.002
    assert math.isnan(found["opchain_data_lag_seconds", ()])
    up = {dict(k[1])["component"]: v for k, v in found.items() if k[0] == "opchain_component_up"}
    ok = {dict(k[1])["component"]: v for k, v in found.items() if k[0] == "opchain_component_ok"}
    assert up == {"broker": 0, "disk": 1, "redis": 1, "storage": 1}
    assert ok == {"broker": 0, "disk": 0, "redis": 1, "storage": 1}
    metrics.set_health([Check("disk", "ok", "fine", NOW, 9e9)], {})
    again = samples(metrics.exposition().decode())
    assert ("opchain_component_up", (("component", "broker"),)) not in again  # gone is gone


def test_metrics_endpoint_passes_promtool(
    tmp_path: Path, session_metrics: tuple[Metrics, SessionReport, list[Snapshot]]
) -> None:
    metrics = session_metrics[0]
    metrics.observe_request("ok", 0.12)
    metrics.observe_request("rate_limited", 0.03)
    metrics.restarts.labels("collector").inc()
    state.report(tmp_path, "collector", "ok", "running", NOW)
    with redis_server(tmp_path) as (redis_url, _), influxd_server(tmp_path) as (influx_url, _):
        app = FastAPI()
        app.include_router(ops.router)
        app.state.settings = Settings(
            data_dir=tmp_path, redis_url=redis_url, influxdb_url=influx_url
        )
        app.state.metrics = metrics

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/metrics")

        response = asyncio.run(go())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    found = samples(text)
    assert found["opchain_sink_response_seconds", (("sink", "influxdb"),)] > 0
    assert found["opchain_component_up", (("component", "collector"),)] == 1
    assert found["opchain_broker_requests_total", (("outcome", "rate_limited"),)] == 1
    assert found["opchain_disk_free_bytes", ()] > 0
    names = {name for name, _ in found}
    assert all(n.startswith(("opchain_", "process_")) for n in names), names
    checked = subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert checked.returncode == 0 and checked.stdout == checked.stderr == "", checked


def test_metrics_endpoint_makes_its_own_registry_when_the_app_has_none(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(ops.router)
    app.state.settings = Settings(data_dir=tmp_path)

    async def go() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = await client.get("/metrics")
            assert first.status_code == 200
            return (await client.get("/metrics")).text

    found = samples(asyncio.run(go()))
    assert found["opchain_component_up", (("component", "disk"),)] == 1
    assert isinstance(app.state.metrics, Metrics)
