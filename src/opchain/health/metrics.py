"""Prometheus metrics, in a registry of their own (not the library's global one), so a process
can hold one per app and tests do not see each other's counts.

Names follow Prometheus's conventions (research/storage.md §7): the ``opchain_`` prefix, base
units (seconds, bytes, ratios 0-1), ``_total`` for counters, ``_timestamp_seconds`` for times,
``_info`` for the build. Labels are few-valued only: index, flag, outcome, channel, component;
never a strike, an expiry or a time.

``observe_cycle`` matches the pipeline's ``OnCycle`` and runs after every stored snapshot, so
it stays cheap: a few counter and gauge updates per index, label children looked up once.
"""

import platform
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from math import nan

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.process_collector import ProcessCollector

from opchain import __version__
from opchain.health.checks import Check, worst
from opchain.health.state import State
from opchain.merge.cycle import Cycle

# Seconds from a cycle's scheduled time to the broker's answer, and of one HTTP request.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Check name -> (gauge name, help) for the number each check was judged on.
CHECK_VALUES = {
    "disk": ("opchain_disk_free_bytes", "Free space on the data directory's filesystem."),
    "storage": ("opchain_data_lag_seconds", "Age of the newest stored snapshot in a session."),
    "kite_token": ("opchain_kite_token_expiry_timestamp_seconds", "When the Kite token dies."),
    "cpu": ("opchain_cpu_usage_ratio", "System CPU busy share since the previous check."),
    "memory": ("opchain_memory_usage_ratio", "System memory in use."),
    "kite_api": ("opchain_broker_recent_response_seconds", "Mean of Kite's recent answers."),
}


@dataclass
class _IndexSeries:
    snapshots: Counter
    legs: Gauge
    last: Gauge


class Metrics:
    """Every opchain metric, in ``self.registry``."""

    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # global
        self.registry = r = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes
        Info("opchain_build", "opchain's version.", registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )
        self.snapshots = Counter(
            "opchain_snapshots_total", "Snapshots stored.", ["index"], registry=r
        )
        self.collect_errors = Counter(
            "opchain_collect_errors_total",
            "Legs the validation flagged, by reason (missing, no_trade, crossed_book, ...).",
            ["index", "reason"],
            registry=r,
        )
        self.collect_duration = Histogram(
            "opchain_collect_duration_seconds",
            "From a cycle's scheduled time to the broker's answer.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.last_snapshot = Gauge(
            "opchain_last_snapshot_timestamp_seconds",
            "Time of the newest stored snapshot (Unix seconds).",
            ["index"],
            registry=r,
        )
        self.legs = Gauge(
            "opchain_legs_in_snapshot", "Option legs in the newest snapshot.", ["index"], registry=r
        )
        self.broker_requests = Counter(
            "opchain_broker_requests_total",
            "HTTP requests to the broker, by outcome (ok, rate_limited, server_error, error).",
            ["outcome"],
            registry=r,
        )
        self.broker_duration = Histogram(
            "opchain_broker_request_duration_seconds",
            "Time to the broker's answer, per HTTP request.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.component_up = Gauge(
            "opchain_component_up",
            "1 while a component or check is not down, else 0.",
            ["component"],
            registry=r,
        )
        self.component_ok = Gauge(
            "opchain_component_ok",
            "1 while a component or check is fully ok (not degraded, not down), else 0.",
            ["component"],
            registry=r,
        )
        self.sink_response = Gauge(
            "opchain_sink_response_seconds",
            "Answer time of a configured sink's ping.",
            ["sink"],
            registry=r,
        )
        self.check_values = {
            name: Gauge(metric, text, registry=r) for name, (metric, text) in CHECK_VALUES.items()
        }
        for gauge in self.check_values.values():
            gauge.set(nan)  # unknown until a check says (0 would read as a time or a size)
        self.alerts_sent = Counter(
            "opchain_alerts_sent_total", "Alert notices sent, by channel.", ["channel"], registry=r
        )
        self.alert_failures = Counter(
            "opchain_alert_failures_total",
            "Alert notices a channel failed to deliver.",
            ["channel"],
            registry=r,
        )
        self.restarts = Counter(
            "opchain_component_restarts_total",
            "Restarts of a failed component by the supervisor.",
            ["component"],
            registry=r,
        )
        self.influx_written = Counter(
            "opchain_influx_points_written_total", "Points InfluxDB took.", registry=r
        )
        self.influx_rejected = Counter(
            "opchain_influx_points_rejected_total",
            "Points InfluxDB refused as bad lines (never sent again).",
            registry=r,
        )
        self.influx_dropped = Counter(
            "opchain_influx_points_dropped_total",
            "Points dropped because the InfluxDB spool was full.",
            registry=r,
        )
        self.influx_spool_bytes = Gauge(
            "opchain_influx_spool_bytes", "Disk used by points InfluxDB has not taken.", registry=r
        )
        self.influx_queue_points = Gauge(
            "opchain_influx_queue_points",
            "Points in the spool InfluxDB has not taken yet.",
            registry=r,
        )
        self._series: dict[str, _IndexSeries] = {}
        self._errors: dict[tuple[str, str], Counter] = {}
        self._spools: dict[str, tuple[int, int]] = {}  # bytes and points, by spool
        self._spools_lock = threading.Lock()  # each writer tells from a thread of its own

    def observe_cycle(self, cycle: Cycle) -> None:
        """Count a stored snapshot: legs and flags per index, its time, how long it took.
        An ``OnCycle`` consumer for ``record_session``/``run_sessions``."""
        snapshot = cycle.snapshot
        legs: dict[str, int] = {}
        flagged: dict[tuple[str, str], int] = {}
        for chain in snapshot.chains:
            index = chain.index
            legs[index] = legs.get(index, 0) + len(chain.legs)
            for leg in chain.legs:
                if leg.flag is not None:
                    key = index, leg.flag
                    flagged[key] = flagged.get(key, 0) + 1
        for key, n in flagged.items():  # one update per index and reason, not per leg
            child = self._errors.get(key)
            if child is None:
                child = self._errors[key] = self.collect_errors.labels(*key)
            child.inc(n)
        stamp = snapshot.ts.timestamp()
        for index, count in legs.items():
            series = self._series.get(index) or self._index_series(index)
            series.snapshots.inc()
            series.legs.set(count)
            series.last.set(stamp)
        self.collect_duration.observe((snapshot.received_at - snapshot.ts).total_seconds())

    def observe_request(self, outcome: str, seconds: float) -> None:
        """One broker HTTP request (a ``BrokerTally`` listener)."""
        self.broker_requests.labels(outcome).inc()
        self.broker_duration.observe(seconds)

    def observe_influx(
        self,
        written: int,
        rejected: int,
        dropped: int,
        spool_bytes: int,
        queue_points: int,
        spool: str = "",
    ) -> None:
        """The InfluxDB writer's news: points written, rejected and dropped since its last
        call, and its spool and queue as they are now. A worker keeps one writer (``spool``)
        per partition: the gauges are the sums over every spool heard of."""
        self.influx_written.inc(written)
        self.influx_rejected.inc(rejected)
        self.influx_dropped.inc(dropped)
        with self._spools_lock:
            self._spools[spool] = spool_bytes, queue_points
            self.influx_spool_bytes.set(sum(size for size, _ in self._spools.values()))
            self.influx_queue_points.set(sum(points for _, points in self._spools.values()))

    def set_health(self, checks: Iterable[Check], states: dict[str, State]) -> None:
        """The gauges of the latest checks and component states (replacing the previous)."""
        statuses = {s["component"]: s["status"] for s in states.values()}
        self.component_up.clear()
        self.component_ok.clear()
        self.sink_response.clear()
        values = dict.fromkeys(self.check_values, nan)
        for check in checks:
            statuses[check.name] = worst([check.status, statuses.get(check.name, "ok")])
            if check.name in ("influxdb", "redis") and check.value is not None:
                self.sink_response.labels(check.name).set(check.value)
            elif check.name in values and check.value is not None:
                values[check.name] = check.value
        for name, value in values.items():
            self.check_values[name].set(value)
        for name, status in statuses.items():
            self.component_up.labels(name).set(status != "down")
            self.component_ok.labels(name).set(status == "ok")

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format."""
        return prometheus_client.generate_latest(self.registry)

    def serve(self, host: str, port: int) -> str:
        """Serve the registry at ``http://host:port/metrics`` (port 0: any free one) until the
        process ends; the address, with the real port. OSError when the port is taken.

        prometheus_client's own server, in a daemon thread: the roles that use it (``opchain
        collect``, ``opchain worker``) have no web server of their own, and a thread answers
        even while their event loop is busy writing a cycle."""
        server, _ = prometheus_client.start_http_server(port, host, registry=self.registry)
        bound = server.server_address[1]
        return (
            f"http://[{host}]:{bound}/metrics" if ":" in host else f"http://{host}:{bound}/metrics"
        )

    def _index_series(self, index: str) -> _IndexSeries:
        series = _IndexSeries(
            self.snapshots.labels(index), self.legs.labels(index), self.last_snapshot.labels(index)
        )
        self._series[index] = series
        return series
