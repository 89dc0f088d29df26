"""One write request to InfluxDB, and what its answer means for the batch.

Three outcomes, because each asks something different of the writer:

- ``written``: the server took the batch (2xx); it is done.
- ``rejected``: the server read the batch and refused lines of it (400: a bad line). Sending
  it again would be refused again, so it is counted and never retried. InfluxDB 1.x writes the
  good lines of such a batch (a partial write) and names each bad one in its message.
- ``down``: the server did not take it for a reason that may pass (unreachable, a timeout, 5xx,
  429, a refused token, a missing bucket): the batch is kept and sent again later.

A v1 database that does not exist (404 ``database not found``) is created and the batch sent
once more. A batch too large for the server (413) is split in halves, each sent on its own.
Timestamps are nanoseconds: ``precision=n`` on v1 (1.6 reads ``ns`` and ``us`` as nanoseconds
too, so no other spelling is sent), ``precision=ns`` on v2.
"""

import gzip
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from opchain.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["written", "rejected", "down"]
GZIP_TEXT = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
MESSAGE_LIMIT = 500  # characters of a server's message kept in a log line or a state
DROPPED = re.compile(r"\bdropped=(\d+)")  # points a 1.x partial write could not store


@dataclass(frozen=True)
class Target:
    """Where and how to write: the settings' InfluxDB part, resolved."""

    url: str
    api: Literal["v1", "v2"]
    db: str
    bucket: str | None
    org: str | None
    token: str | None
    timeout: float


def target_from(settings: Settings) -> Target | None:
    """The settings' InfluxDB target; None when no URL is set (the output is off). A v2
    target without a bucket is a ValueError: every write would be refused."""
    if not settings.influxdb_url:
        return None
    if settings.influxdb_api == "v2" and not settings.influxdb_bucket:
        raise ValueError("influxdb_api v2 needs influxdb_bucket (INFLUXDB_BUCKET)")
    token = settings.influxdb_token
    return Target(
        url=settings.influxdb_url.rstrip("/"),
        api=settings.influxdb_api,
        db=settings.influxdb_db,
        bucket=settings.influxdb_bucket,
        org=settings.influxdb_org,
        token=token.get_secret_value() if token is not None else None,
        timeout=settings.influxdb_timeout_seconds,
    )


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    written: int  # points the server took
    rejected: int  # points it refused for good
    detail: str  # the server's message, or what went wrong ("" when written)
    retry_after: float | None = None  # seconds the server asked us to wait (429, 503)


def compress(lines: Sequence[str]) -> bytes:
    """Lines as spooled and sent: each ended by a newline, gzip'd (level 1: fast, and line
    protocol still shrinks about tenfold). Such members concatenated are one gzip stream of
    the lines of all, which the servers read whole (Go's gzip reader reads every member)."""
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)


class Transport:
    """Writes batches to one target over one connection of its own (a sync httpx client, used
    by the writer's thread only)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        headers = {}
        if target.token:
            headers["Authorization"] = f"Token {target.token}"
        self._http = httpx.Client(
            base_url=target.url,
            headers=headers,
            timeout=target.timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def close(self) -> None:
        self._http.close()

    def send(self, body: bytes, points: int) -> Outcome:
        """Write one gzip'd batch of ``points`` lines (one gzip member or several, back to
        back); never raises."""
        outcome = self._post(body, points)
        if outcome.kind == "down" and _database_missing(outcome):
            created = self._create_database()
            if created is not None:
                return created
            outcome = self._post(body, points)
        if outcome.detail.startswith("HTTP 413"):
            return self._split(body)
        return outcome

    def _post(self, body: bytes, points: int) -> Outcome:
        t = self.target
        if t.api == "v1":
            path, params = "/write", {"db": t.db, "precision": "n"}
        else:
            path, params = "/api/v2/write", {"bucket": t.bucket or "", "org": t.org or ""}
            params["precision"] = "ns"
        try:
            response = self._http.post(path, params=params, content=body, headers=GZIP_TEXT)
        except httpx.HTTPError as err:
            return Outcome("down", 0, 0, f"{type(err).__name__}: {err}"[:MESSAGE_LIMIT])
        return classify(response, points)

    def _create_database(self) -> Outcome | None:
        """``CREATE DATABASE`` (idempotent on 1.x); None when it worked, else why not."""
        name = self.target.db.replace("\\", "\\\\").replace('"', '\\"')
        try:
            response = self._http.post("/query", data={"q": f'CREATE DATABASE "{name}"'})
        except httpx.HTTPError as err:
            return Outcome("down", 0, 0, f"{type(err).__name__}: {err}"[:MESSAGE_LIMIT])
        if response.is_success and '"error"' not in response.text:
            log.info("InfluxDB: created database %s", self.target.db)
            return None
        return Outcome("down", 0, 0, f"CREATE DATABASE: {_message(response)}")

    def _split(self, body: bytes) -> Outcome:
        """A batch too large for the server, sent in halves (each split again if need be)."""
        lines = [line for line in gzip.decompress(body).decode().split("\n") if line]
        if len(lines) < 2:
            return Outcome("rejected", 0, len(lines), "413: one line larger than the server takes")
        half = len(lines) // 2
        written = rejected = 0
        details = []
        for part in (lines[:half], lines[half:]):
            outcome = self.send(compress(part), len(part))
            if outcome.kind == "down":
                return outcome  # the whole batch is kept; what was written is written again
            written, rejected = written + outcome.written, rejected + outcome.rejected
            details.append(outcome.detail)
        kind: Kind = "rejected" if rejected else "written"
        return Outcome(kind, written, rejected, "; ".join(d for d in details if d))


def classify(response: httpx.Response, points: int) -> Outcome:
    """What an answer to a write means for its batch of ``points`` lines."""
    status = response.status_code
    if response.is_success:
        return Outcome("written", points, 0, "")
    if status == 400:
        # 1.x names each line it could not parse, and counts the points it parsed but could
        # not store ("partial write: field type conflict ... dropped=1"); the rest is written.
        # Any other 400: nothing of the batch is known to be written.
        message = _message(response, limit=None)  # counted whole, kept short
        named = message.count("unable to parse") + sum(map(int, DROPPED.findall(message)))
        partial = "partial write" in message or "unable to parse" in message
        bad = min(points, max(1, named)) if partial else points
        return Outcome("rejected", points - bad, bad, message[:MESSAGE_LIMIT])
    retry_after = _retry_after(response) if status in (429, 503) else None
    return Outcome("down", 0, 0, f"HTTP {status}: {_message(response)}", retry_after)


def _message(response: httpx.Response, limit: int | None = MESSAGE_LIMIT) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = str(body.get("error") or body.get("message") or body)
    else:
        text = response.text
    return " ".join(text.split())[:limit] or f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None  # an HTTP date, or nothing: our own backoff decides


def _database_missing(outcome: Outcome) -> bool:
    return outcome.detail.startswith("HTTP 404") and "database not found" in outcome.detail
