"""Health checks: plain functions, each judging one thing and returning a :class:`Check`.

``check_all`` runs every check that applies to the settings at once, each under a timeout, so
one hung dependency (an InfluxDB that accepts connections and never answers, a stuck disk)
costs ``/health`` at most that timeout and shows up as ``down`` instead of hanging it.
Unconfigured sinks are not checked and not listed.
"""

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import redis.asyncio
import redis.exceptions

from opchain.brokers.kite.session import load_token, token_expiry
from opchain.brokers.tally import BrokerTally
from opchain.health import state
from opchain.health.state import Status
from opchain.market import calendar
from opchain.market.indices import INDICES
from opchain.market.ist import to_ist
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.csvrows import last_stamp

CHECK_TIMEOUT = 2.0  # seconds one check may take before it counts as down
TOKEN_WARNING = timedelta(minutes=30)  # a Kite token this close to expiry is degraded
DISK_FLOOR = 100 * 2**20  # bytes free below which writes are about to fail: down
CPU_BUSY = 95.0  # percent, degraded
MEMORY_HIGH, MEMORY_FULL = 90.0, 98.0  # percent used: degraded, down
SLOW_BROKER = 2.0  # seconds, mean answer time of the recent requests: degraded
RANK: dict[Status, int] = {"ok": 0, "degraded": 1, "down": 2}
_cpu_primed = False  # psutil measures CPU use between calls; the first one has nothing before


@dataclass(frozen=True)
class Check:
    """One check's verdict. ``since`` is when the status began (the check time for a fresh
    result; :func:`hold_since` carries it forward); ``value`` is the number it was judged on,
    in the unit of its metric (bytes free, seconds of lag, ...), when there is one."""

    name: str
    status: Status
    detail: str
    since: datetime
    value: float | None = None


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=RANK.__getitem__, default="ok")


def token_check(settings: Settings, now: datetime) -> Check | None:
    """The Kite access token: there, for this API key, and how long until 06:00 IST kills it.
    Not listed for the simulator."""
    if settings.broker != "kite":
        return None
    now = to_ist(now)
    if settings.kite_access_token is not None:
        expires = token_expiry(now)  # issued some time before now; dies by the next 06:00
        where = "the access token from the environment"
    else:
        path = settings.token_file
        try:
            stored = load_token(path)
        except ValueError as err:
            return Check("kite_token", "down", str(err), now)
        if stored is None:
            return Check("kite_token", "down", f"no Kite login in {path}: run `opchain login`", now)
        if stored.api_key != settings.kite_api_key:
            detail = f"the login in {path} is for another API key: run `opchain login`"
            return Check("kite_token", "down", detail, now)
        expires, where = to_ist(stored.expires_at), f"the login of {stored.user_id}"
    stamp = expires.timestamp()
    if now >= expires:
        detail = f"{where} expired at {expires:%Y-%m-%d %H:%M} IST: run `opchain login`"
        return Check("kite_token", "down", detail, now, stamp)
    left = expires - now
    hours, minutes = divmod(int(left.total_seconds()) // 60, 60)
    detail = f"{where} expires at {expires:%a %H:%M} IST (in {hours} h {minutes:02d} min)"
    if left <= TOKEN_WARNING:
        return Check("kite_token", "degraded", detail + ": run `opchain login`", now, stamp)
    return Check("kite_token", "ok", detail, now, stamp)


def newest_snapshot(settings: Settings, now: datetime) -> datetime | None:
    """The newest snapshot time written today, from the last good row of each overview file
    (a damaged last line is not the end of the data: it is named once in the log)."""
    day = to_ist(now).date()
    stamps = [
        last_stamp(layout.overview_path(settings.data_dir, index, day))
        for index in settings.indices
    ]
    return max((ts for ts in stamps if ts is not None), default=None)


def storage_check(settings: Settings, now: datetime) -> Check:
    """During a session, how long nothing has been stored (``value``, seconds): since the
    newest stored snapshot, or, while there is none newer, since the session opened or the
    collector started, whichever is later. More than ``stale_seconds`` is down; a collector
    started mid-session has that long to store its first snapshot. Outside a session it is ok.
    """
    now = to_ist(now)
    exchange = INDICES[settings.indices[0]].exchange
    try:
        session = calendar.session(exchange, now.date())
    except calendar.CalendarUnavailable as err:
        return Check("storage", "degraded", str(err), now)
    newest = newest_snapshot(settings, now)
    seen = f"newest snapshot {newest:%H:%M:%S}" if newest else "no snapshot today"
    if session is None or not session.open <= now < session.close:
        return Check("storage", "ok", f"market closed; {seen}", now)
    started = collector_started(settings.data_dir)
    since = max(t for t in (newest, session.open, started) if t is not None)
    lag = max((now - since).total_seconds(), 0.0)
    if since != newest and since == started:
        seen += f"; the collector started at {since:%H:%M:%S}"
    if lag > settings.stale_seconds:
        detail = f"{seen}: nothing stored for {lag:.0f} s (stale after {settings.stale_seconds:g})"
        return Check("storage", "down", detail, now, lag)
    return Check("storage", "ok", f"{seen}, {lag:.0f} s ago", now, lag)


def collector_started(data_dir: Path) -> datetime | None:
    """When the collector's process started it (its health state's ``started``), if known."""
    found = state.read(data_dir).get(state.COLLECTOR)
    stamp = found.get("started") if found is not None else None
    try:
        started = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None
    return to_ist(started) if started is not None and started.tzinfo else None


def disk_check(settings: Settings, now: datetime, floor: int = DISK_FLOOR) -> Check:
    """Free space on the data directory's filesystem (``value``, bytes): below
    ``disk_min_free_gb`` degraded, below ``floor`` down."""
    path = _existing(settings.data_dir)
    free = shutil.disk_usage(path).free
    detail = f"{free / 1e9:.1f} GB free under {path} (minimum {settings.disk_min_free_gb:g} GB)"
    if free < floor:
        return Check("disk", "down", detail, now, free)
    if free < settings.disk_min_free_gb * 1e9:
        return Check("disk", "degraded", detail, now, free)
    return Check("disk", "ok", detail, now, free)


def cpu_check(now: datetime) -> Check:
    """System CPU use since the previous call (``value``, 0-1); busy is degraded, never down.
    A process's first call has no previous one: it measures a fifth of a second instead."""
    global _cpu_primed
    percent = psutil.cpu_percent(interval=None if _cpu_primed else 0.2)
    _cpu_primed = True
    load = os.getloadavg()[0]
    detail = f"{percent:.0f} % busy, load {load:.2f} on {psutil.cpu_count() or 1} CPUs"
    return Check("cpu", "degraded" if percent >= CPU_BUSY else "ok", detail, now, percent / 100)


def memory_check(now: datetime) -> Check:
    """System memory in use (``value``, 0-1), with this process's resident size."""
    memory = psutil.virtual_memory()
    rss = psutil.Process().memory_info().rss
    detail = f"{memory.percent:.0f} % used, {memory.available / 1e9:.1f} GB available; "
    detail += f"opchain {rss / 2**20:.0f} MiB"
    return Check("memory", memory_status(memory.percent), detail, now, memory.percent / 100)


def memory_status(percent: float) -> Status:
    if percent >= MEMORY_FULL:
        return "down"
    return "degraded" if percent >= MEMORY_HIGH else "ok"


async def influxdb_check(url: str, now: datetime, timeout: float = CHECK_TIMEOUT) -> Check:
    """InfluxDB's ``/ping`` (204 on 1.x, 2.x and 3.x); ``value`` is the answer time, s."""
    start = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url.rstrip("/") + "/ping")
    except httpx.HTTPError as err:
        return Check("influxdb", "down", f"{redact(url)} unreachable: {_say(err)}", now)
    seconds = time.perf_counter() - start
    if response.status_code != 204:
        detail = f"{redact(url)}/ping answered HTTP {response.status_code}"
        return Check("influxdb", "down", detail, now, seconds)
    version = response.headers.get("X-Influxdb-Version", "?")
    detail = f"InfluxDB {version} at {redact(url)} answers in {seconds * 1000:.0f} ms"
    return Check("influxdb", "ok", detail, now, seconds)


async def redis_check(
    url: str, now: datetime, timeout: float = CHECK_TIMEOUT, password: str | None = None
) -> Check:
    """Redis ``PING``; ``value`` is the answer time, s."""
    start = time.perf_counter()
    client = redis.asyncio.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, password=password
    )
    try:
        await client.ping()
    except (redis.exceptions.RedisError, OSError) as err:
        return Check("redis", "down", f"{redact(url)} unreachable: {_say(err)}", now)
    finally:
        await client.aclose()
    seconds = time.perf_counter() - start
    detail = f"Redis at {redact(url)} answers in {seconds * 1000:.0f} ms"
    return Check("redis", "ok", detail, now, seconds)


def broker_check(tally: BrokerTally, now: datetime) -> Check:
    """Kite's recent answers (the last requests the tally keeps): any 429 or a slow mean is
    degraded, all of them failing is down. ``value`` is the mean answer time, s."""
    recent = tally.recent()
    if not recent.requests:
        return Check("kite_api", "ok", "no requests yet", now)
    detail = (
        f"last {recent.requests} requests: mean {recent.mean_seconds * 1000:.0f} ms, "
        f"{recent.rate_limited} rate-limited (429), {recent.failed} failed"
    )
    if recent.failed == recent.requests:
        status: Status = "down"
    elif recent.rate_limited or recent.failed or recent.mean_seconds > SLOW_BROKER:
        status = "degraded"
    else:
        status = "ok"
    return Check("kite_api", status, detail, now, recent.mean_seconds)


async def check_all(
    settings: Settings,
    now: datetime,
    broker: BrokerTally | None = None,
    timeout: float = CHECK_TIMEOUT,
) -> list[Check]:
    """Every check that applies, run together, each bounded by ``timeout``; sorted by name."""
    jobs: dict[str, Awaitable[Check | None]] = {
        "kite_token": asyncio.to_thread(token_check, settings, now),
        "storage": asyncio.to_thread(storage_check, settings, now),
        "disk": asyncio.to_thread(disk_check, settings, now),
        "cpu": asyncio.to_thread(cpu_check, now),
        "memory": asyncio.to_thread(memory_check, now),
    }
    if settings.influxdb_url:
        jobs["influxdb"] = influxdb_check(settings.influxdb_url, now, timeout)
    if settings.redis:
        secret = settings.redis_password
        password = secret.get_secret_value() if secret is not None else None
        jobs["redis"] = redis_check(settings.redis, now, timeout, password)
    if broker is not None:
        jobs["kite_api"] = asyncio.to_thread(broker_check, broker, now)
    results = await asyncio.gather(*(bounded(n, job, now, timeout) for n, job in jobs.items()))
    return sorted((r for r in results if r is not None), key=lambda c: c.name)


def hold_since(memory: dict[str, Check], checks: list[Check]) -> list[Check]:
    """``checks`` with ``since`` carried over from the previous round for every check whose
    status has not changed, so it says how long a state has lasted; ``memory`` is updated."""
    held = []
    for check in checks:
        before = memory.get(check.name)
        if before is not None and before.status == check.status:
            check = replace(check, since=before.since)
        memory[check.name] = check
        held.append(check)
    return held


def redact(url: str) -> str:
    """The URL without its user and password, fit for a log line or a health detail."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


async def bounded(
    name: str, job: Awaitable[Check | None], now: datetime, timeout: float
) -> Check | None:
    """``job``'s result, or ``name`` down when it takes longer than ``timeout`` or raises."""
    try:
        return await asyncio.wait_for(job, timeout)
    except TimeoutError:
        return Check(name, "down", f"no answer within {timeout:g} s", now)
    except Exception as err:  # a check that breaks says so; /health itself never breaks
        return Check(name, "down", f"the check failed: {_say(err)}", now)


def _say(err: BaseException) -> str:
    return str(err) or type(err).__name__


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the data directory may not exist yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
