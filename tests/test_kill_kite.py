"""SIGKILL ``opchain run --broker kite`` at random moments and run it again to the close: the
split, analytics and overview files and the raw legs equal an uninterrupted run's, and at every
kill each cycle in the split files has all its legs in the raw record.

The runs are the real command in a subprocess, at 30 times real time, against the fake Kite
server (here in the test's process, under uvicorn, so that its clock can follow the runs). Two
runs compared row for row must see the same market, but the fake prices a quote at the second
its clock says, and a run on a busy machine asks for a cycle's quotes late now and then. So the
runs stamp their quote requests with the cycle they are for (``tests/stamped.py``) and the
fake's clock reads that stamp. Every run resumes from files recorded in-process up to 15:26:30:
a run that starts from nothing records from wherever its clock stands when it is ready, which
is left to chance.
"""

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from opchain.brokers.kite.broker import KiteBroker
from opchain.brokers.kite.client import KiteClient
from opchain.brokers.kite.fake import FakeKite
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store.raw import FILE_SCHEMA

from .servers import serve_in_thread
from .sessions import DAY, tree_bytes
from .stamped import HEADER

pytestmark = pytest.mark.e2e

SESSION = calendar.session("NSE", DAY)
assert SESSION is not None
CADENCE, SPEED = 30, 30  # a cycle a second of wall time
SEEDED = datetime(2026, 11, 20, 15, 26, 30, tzinfo=IST)  # the last cycle recorded in-process
CYCLES = int((SESSION.close - SEEDED).total_seconds() // CADENCE) - 1  # 15:27:00 .. 15:29:30
LEAD = 0.5  # wall seconds a run's clock stands still after it is made: time to get ready
GLITCHES = 0.001  # the simulator's default share of glitched quotes
DRIVER = [sys.executable, str(Path(__file__).with_name("stamped.py"))]
LEG = ("ts", "bucket", "offset", "side")


class CycleClock:
    """The fake's clock: the cycle a request is stamped with (``tests/stamped.py``), else the
    virtual clock of the in-process recording (only the day matters then)."""

    def __init__(self, virtual: VirtualClock) -> None:
        self.virtual = virtual
        self.cycle: ContextVar[datetime | None] = ContextVar("cycle", default=None)

    def now(self) -> datetime:
        return self.cycle.get() or self.virtual.now()

    async def sleep_until(self, moment: datetime) -> None:
        await self.virtual.sleep_until(moment)


class Killer:
    """Passes requests to the fake (with the cycle they are stamped with on its clock); kills
    the run a chosen delay after its n-th quote call (0: after its login check, while it gets
    ready: the instruments, the journals a killed run left, the resume)."""

    def __init__(self, app: ASGIApp, clock: CycleClock) -> None:
        self.app, self.clock = app, clock
        self.process: subprocess.Popen[str] | None = None
        self.at, self.delay, self.calls = 0, 0.0, 0
        self.timer: threading.Timer | None = None

    def arm(self, process: subprocess.Popen[str], at: int, delay: float) -> None:
        self.process, self.at, self.delay, self.calls = process, at, delay, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            stamp = dict(scope["headers"]).get(HEADER.lower().encode())
            self.clock.cycle.set(datetime.fromisoformat(stamp.decode()) if stamp else None)
        if scope["type"] == "http" and self.process is not None:
            if scope["path"] == "/quote":
                self.calls += 1
            trigger = "/quote" if self.at else "/user/profile"
            if scope["path"] == trigger and self.calls == self.at:
                kill = self.process.send_signal  # Popen signals only a process not yet reaped
                self.timer = threading.Timer(self.delay, kill, (signal.SIGKILL,))
                self.timer.start()
        await self.app(scope, receive, send)


class Market:
    """The fake Kite server and the runs against it, one at a time."""

    def __init__(self, root: str, fake: FakeKite, clock: CycleClock, killer: Killer) -> None:
        self.root, self.fake, self.clock, self.killer = root, fake, clock, killer

    def run(
        self, data: Path, kill: tuple[int, float] | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``opchain run`` from the last cycle on disk to the close (or killed)."""
        start, token = _resume_point(data), self.fake.issue_access_token()
        command = [*DRIVER, str(LEAD), "run", "--broker", "kite", "--no-api", "--sessions", "1"]
        options = ["--cadence", str(CADENCE), "--speed", str(SPEED), "--data-dir", str(data)]
        variables = {k: v for k, v in os.environ.items() if "KITE" not in k} | {
            "KITE_API_KEY": self.fake.api_key,
            "KITE_ACCESS_TOKEN": token,
            "OPCHAIN_KITE_ROOT": self.root,
            "OPCHAIN_RAW_WINDOW_MINUTES": "2",
            "COLUMNS": "200",
            **env,
        }
        argv = [*command, *options, "--start", start.strftime("%Y-%m-%dT%H:%M:%S")]
        with subprocess.Popen(argv, env=variables, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as process:  # fmt: skip
            if kill is not None:
                self.killer.arm(process, *kill)
            try:
                out, err = process.communicate(timeout=120)
            finally:
                self.killer.process = None
                if self.killer.timer is not None:
                    self.killer.timer.cancel()
                    self.killer.timer = None
        return subprocess.CompletedProcess(argv, process.returncode, out, err)


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    virtual = VirtualClock(SEEDED)
    clock = CycleClock(virtual)
    fake = FakeKite(clock, glitch_rate=GLITCHES, enforce_rate_limit=False)  # type: ignore[arg-type]
    killer = Killer(fake.app(), clock)
    with serve_in_thread(killer) as root:
        yield Market(root, fake, clock, killer)


@pytest.fixture(scope="module")
def seeded(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15:26:00 and 15:26:30 recorded in-process through the fake (a virtual clock for both):
    the window of 15:26 goes on in the first run."""
    data = tmp_path_factory.mktemp("seeded")
    clock = market.clock.virtual
    client = KiteClient(market.fake.api_key, market.fake.issue_access_token(), market.root, clock)
    broker = KiteBroker(client, cache_dir=data / "cache" / "kite")
    settings = Settings(data_dir=data, raw_window_minutes=2, sim_glitch_rate=GLITCHES)

    async def record() -> None:
        try:
            await record_session(settings, broker, clock, DAY, until=SEEDED + timedelta(seconds=1))
        finally:
            await broker.close()

    asyncio.run(record())
    assert _resume_point(data) == SEEDED
    return data


@pytest.fixture(scope="module")
def whole(market: Market, seeded: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("whole") / "data"
    shutil.copytree(seeded, data)
    done = market.run(data)
    assert done.returncode == 0, done.stderr
    assert f"{CYCLES} snapshots recorded" in done.stdout and " 0 missed" in done.stdout
    return data


@pytest.mark.parametrize(("trial", "flush_seconds"), [(0, "1"), (1, "0")])
def test_sigkill_at_random_moments_then_rerun_equals_the_uninterrupted_run(
    market: Market, seeded: Path, whole: Path, tmp_path: Path, trial: int, flush_seconds: str
) -> None:
    """Two kills at random moments, each run resuming from what the one before left, then a
    run to the close; split files flushed once a second of wall time, then every cycle."""
    rng = random.Random(20261120 + trial)
    data = tmp_path / "data"
    shutil.copytree(seeded, data)
    expected = _legs_by_cycle(_raw_table(whole))
    for _ in range(2):
        left = int((SESSION.close - _resume_point(data)).total_seconds() // CADENCE) - 1
        if left < 2:
            break
        # While the run gets ready (0), or in a cycle with two more to come: half the time in
        # the first 50 ms after its quote call arrives (the cycle's files are being written),
        # else anywhere in it.
        calls = rng.randint(0, left - 2)
        delay = rng.uniform(0, 0.05) if rng.random() < 0.5 else rng.uniform(0, 1.0)
        killed = market.run(data, (calls, delay), OPCHAIN_FLUSH_SECONDS=flush_seconds)
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        # At the kill: every cycle in the split files has every leg in the raw record.
        recorded = _raw_legs_at_kill(data / "raw")
        for index, stamps in _split_stamps(data).items():
            for ts in stamps:
                missing = expected[index, ts] - recorded.get((index, ts), set())
                assert not missing, f"{index} {ts}: {len(missing)} legs not in raw after a kill"

    rerun = market.run(data, OPCHAIN_FLUSH_SECONDS=flush_seconds)
    assert rerun.returncode == 0, rerun.stderr
    assert " 0 missed" in rerun.stdout, rerun.stdout
    for folder in ("csv_data", "overview", "analytics"):
        assert tree_bytes(data / folder) == tree_bytes(whole / folder), folder
    assert _raw_rows(data) == _raw_rows(whole)
    assert not list((data / "raw").rglob("_journal-*")), "every journal is folded"


def _resume_point(data: Path) -> datetime:
    """The last cycle every CSV of the day has reached (the run resumes after it)."""
    stamps = []
    for folder in ("csv_data", "overview", "analytics"):
        for path in (data / folder).rglob(f"{DAY}.csv"):
            lines = path.read_bytes().split(b"\n")[1:-1]  # whole lines after the header
            if lines:
                stamps.append(datetime.fromisoformat(lines[-1].split(b",", 1)[0].decode()))
    return min(stamps, default=SEEDED)


def _split_stamps(data: Path) -> dict[str, set[datetime]]:
    stamps: dict[str, set[datetime]] = {}
    for path in (data / "csv_data").rglob(f"{DAY}.csv"):
        index = path.relative_to(data / "csv_data").parts[0]
        for line in path.read_bytes().split(b"\n")[1:-1]:
            stamps.setdefault(index, set()).add(datetime.fromisoformat(line[:25].decode()))
    return stamps


def _raw_legs_at_kill(root: Path) -> dict[tuple[str, datetime], set[tuple[object, ...]]]:
    """Legs in the parts and journals on disk, as a killed process left them."""
    tables = []
    for folder in root.glob(f"date={DAY}/index=*"):
        index = folder.name.removeprefix("index=")
        pieces = [pq.read_table(p) for p in folder.glob("part-*.parquet")]
        for journal in folder.glob("_journal-*.arrows"):
            pieces += _whole_batches(journal)
        for piece in pieces:
            tables.append(piece.append_column("index", pa.array([index] * piece.num_rows)))
    return _legs_by_cycle(pa.concat_tables(tables)) if tables else {}


def _whole_batches(journal: Path) -> list[pa.Table]:
    """An Arrow IPC stream's batches up to a torn one (read with pyarrow alone)."""
    batches = []
    with contextlib.suppress(pa.ArrowInvalid, OSError), pa.ipc.open_stream(journal) as stream:
        for batch in stream:
            batches.append(pa.Table.from_batches([batch]))
    return batches


def _legs_by_cycle(table: pa.Table) -> dict[tuple[str, datetime], set[tuple[object, ...]]]:
    legs: dict[tuple[str, datetime], set[tuple[object, ...]]] = {}
    for row in table.select(["index", *LEG]).to_pylist():
        legs.setdefault((row["index"], row["ts"]), set()).add(tuple(row[c] for c in LEG))
    return legs


def _raw_table(data: Path) -> pa.Table:
    """The raw legs as DuckDB reads them (README): parts only, journals never."""
    with contextlib.closing(duckdb.connect()) as db:
        pattern = str(data / "raw" / "*" / "*" / "*.parquet")
        query = f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)"
        table: pa.Table = db.sql(query).to_arrow_table()
    return table


def _raw_rows(data: Path) -> list[dict[str, object]]:
    """Every column of every leg but ``received_at`` (the wall time a run's quotes came in)."""
    names = [n for n in FILE_SCHEMA.names if n != "received_at"]
    table = pq.read_table(data / "raw", partitioning="hive").select(["index", *names])
    table = table.set_column(0, "index", table.column("index").cast(pa.string()))
    order = [(c, "ascending") for c in ("index", *LEG)]
    return table.sort_by(order).to_pylist()
