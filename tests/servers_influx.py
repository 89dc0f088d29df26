"""InfluxDB-speaking servers for the writer's tests: influxd 1.6 on ports the test keeps (so
it can be stopped and started again on the same data), VictoriaMetrics (a second real target,
for the v2 write API), helpers to read back what arrived, and a scripted fake for the answers
the real ones do not give on demand (413, 429, 503, ...)."""

import gzip
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .servers import serve_in_thread
from .servers_health import INFLUXDB_CONF, _until_line, free_port


@dataclass(frozen=True)
class Ports:
    http: int
    rpc: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"


def ports() -> Ports:
    return Ports(free_port(), free_port())


@contextmanager
def influxd_at(folder: Path, where: Ports) -> Iterator[subprocess.Popen[str]]:
    """influxd 1.6 with its data in ``folder`` on the given ports; started again on the same
    folder and ports it finds what it had."""
    conf = folder / "influxdb.conf"
    conf.write_text(INFLUXDB_CONF.format(rpc=where.rpc, http=where.http, dir=folder))
    command = ["influxd", "run", "-config", str(conf)]
    with _until_line(command, "Listening on HTTP", "stderr") as process:
        yield process


@contextmanager
def victoria_metrics(folder: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """VictoriaMetrics on a random loopback port, its data in ``folder``; yields its URL and
    the process. Fresh points are visible at once (``-search.latencyOffset=0s``) after
    :func:`vm_export` flushes."""
    port = free_port()
    command = [
        "victoria-metrics",
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={folder}",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
    ]
    with _until_line(command, "started VictoriaMetrics", "stderr") as process:
        url = f"http://127.0.0.1:{port}"
        # It says it started a moment before its listener is open: poll /health, bounded.
        pause = threading.Event()  # never set: a bounded wait between polls
        for _ in range(500):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            pause.wait(0.01)
        else:
            raise RuntimeError("VictoriaMetrics did not answer /health")
        yield url, process


def influx_rows(url: str, db: str, query: str) -> list[list[Any]]:
    """The rows InfluxDB 1.x answers ``query`` with (times in nanoseconds); [] when none."""
    answer = httpx.get(f"{url}/query", params={"db": db, "q": query, "epoch": "ns"}, timeout=10)
    answer.raise_for_status()
    result = answer.json()["results"][0]
    assert "error" not in result, result
    rows: list[list[Any]] = []
    for series in result.get("series", []):
        rows.extend(series["values"])
    return rows


def vm_export(url: str, metric: str) -> list[dict[str, Any]]:
    """Every series of ``metric`` VictoriaMetrics holds, as /api/v1/export gives them."""
    httpx.get(f"{url}/internal/force_flush", timeout=10).raise_for_status()
    answer = httpx.post(f"{url}/api/v1/export", data={"match[]": metric}, timeout=10)
    answer.raise_for_status()
    return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    lines: list[str]


@dataclass
class Fake:
    url: str
    seen: list[Seen] = field(default_factory=list)
    answers: list[Response] = field(default_factory=list)  # in turn; then 204
    max_lines: int | None = None  # more lines than this: 413
    queries: list[str] = field(default_factory=list)


@contextmanager
def fake_influx() -> Iterator[Fake]:
    """A server on loopback that records every write (lines decompressed, every gzip member;
    the last line's newline dropped) and answers with
    ``answers`` in turn, then 204; ``max_lines``: bodies longer get 413; ``/query`` records
    its ``q``."""
    fake = Fake("")

    async def write(request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.decode().removesuffix("\n").split("\n")
        fake.seen.append(
            Seen(request.url.path, dict(request.query_params), dict(request.headers), lines)
        )
        if fake.max_lines is not None and len(lines) > fake.max_lines:
            return JSONResponse({"error": "Request Entity Too Large"}, status_code=413)
        if fake.answers:
            return fake.answers.pop(0)
        return Response(status_code=204)

    async def query(request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        fake.queries.extend(form["q"])
        return JSONResponse({"results": [{"statement_id": 0}]})

    routes = [Route(p, write, methods=["POST"]) for p in ("/write", "/api/v2/write")]
    routes.append(Route("/query", query, methods=["POST"]))
    with serve_in_thread(Starlette(routes=routes)) as url:
        fake.url = url
        yield fake
