"""The scale-out against Kite, split between collectors: two ``opchain collect --broker kite``
processes, each with its own API key and access token against its own fake Kite server, one
collecting NIFTY and BANKNIFTY and the other SENSEX, and one set of workers record the same
files, byte for byte, as one collector of all three does (INDIA VIX's overview included, which
both collectors publish inside each index's entry and NIFTY's worker writes).

The fakes run here, under uvicorn, so that they can price a quote at the cycle it is for: the
collectors stamp their requests with it (``tests/stamped.py``, ``--instant``: their answers
count as received at that cycle, so that the raw record's ``received_at`` is the same in every
run), as in ``tests/test_kill_kite.py``. The market clocks start half a cycle before the first
recorded cycle and stand still for ``LEAD`` wall seconds: time for a collector to get ready.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from opchain.brokers.kite.fake import FakeKite
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST

from .servers import serve_in_thread
from .servers_bus import Chorus, Role, chorus, redis_at, tree
from .sessions import DAY
from .stamped import HEADER

pytestmark = pytest.mark.e2e

SESSION = calendar.session("NSE", DAY)
assert SESSION is not None
CADENCE, SPEED = 60, 60  # a cycle a second of wall time
FIRST = datetime(2026, 11, 20, 15, 10, tzinfo=IST)  # the first cycle recorded
START = FIRST - timedelta(seconds=CADENCE / 2)  # off the cycles: FIRST is the first one due
CYCLES = int((SESSION.close - FIRST).total_seconds() // CADENCE)  # 15:10 .. 15:29
GLITCHES = 0.001  # the simulator's default share of glitched quotes
LEAD = 3.0  # wall seconds a collector's clock stands at START after it is made
DRIVER = [sys.executable, str(Path(__file__).with_name("stamped.py")), str(LEAD), "--instant"]
INDICES = ("NIFTY", "BANKNIFTY", "SENSEX")
ENV = {
    "OPCHAIN_CADENCE_SECONDS": str(CADENCE),
    "OPCHAIN_FULL_CHAIN": "false",
    "OPCHAIN_BUS_LEASE_SECONDS": "2",
    "OPCHAIN_API_PORT": "0",
}
Kite = dict[str, str]  # a fake Kite server, as a collector's variables name it
CLOSED = r"day closed"  # a worker's line when a partition's session is recorded to its end
PUBLISHED = r"cycles published"  # a collector's line at the session's end
WHOLE = f"{DAY}: {CYCLES} cycles published every {CADENCE} s (0 missed, 0 lost)"


class Stamped:
    """The fake's ASGI app, its clock at the cycle a request is stamped with (else at START:
    the login, the instruments and the look before the first cycle)."""

    def __init__(self, fake: FakeKite, cycle: ContextVar[datetime | None]) -> None:
        self.app, self.cycle = fake.app(), cycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            stamp = dict(scope["headers"]).get(HEADER.lower().encode())
            self.cycle.set(datetime.fromisoformat(stamp.decode()) if stamp else None)
        await self.app(scope, receive, send)


class CycleClock:
    """The fake's clock: the cycle of the request in hand, else START."""

    def __init__(self) -> None:
        self.start = VirtualClock(START)
        self.cycle: ContextVar[datetime | None] = ContextVar("cycle", default=None)

    def now(self) -> datetime:
        return self.cycle.get() or self.start.now()

    async def sleep_until(self, moment: datetime) -> None:
        await self.start.sleep_until(moment)


@pytest.fixture(scope="module")
def kites() -> Iterator[tuple[Kite, Kite]]:
    """Two fake Kite servers of the same market, each with its own API key and secret."""
    with serve(1) as one, serve(2) as two:
        yield one, two


@pytest.fixture(scope="module")
def reference(kites: tuple[Kite, Kite], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What one collector of the three indices (on the first server) and two workers write."""
    root = tmp_path_factory.mktemp("one")
    with redis_at(root / "redis") as (url, _), chorus(ENV) as bus:
        _workers(bus, url, root / "data")
        collector = _collect(bus, url, root / "c", kites[0])
        bus.wait_for(CLOSED, count=len(INDICES))
        assert collector.finish() == 0
        _whole(bus.wait_for(PUBLISHED))
    return root / "data"


def test_two_collectors_with_two_api_keys_write_what_one_writes(
    kites: tuple[Kite, Kite], reference: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with redis_at(tmp_path / "redis") as (url, _), chorus(ENV) as bus:
        _workers(bus, url, data)
        first = _collect(bus, url, tmp_path / "c1", kites[0], "NIFTY,BANKNIFTY")
        second = _collect(bus, url, tmp_path / "c2", kites[1], "SENSEX")
        bus.wait_for(CLOSED, count=len(INDICES))
        assert first.finish() == 0
        assert second.finish() == 0
        _whole(bus.wait_for(PUBLISHED, count=2))
    expected, found = tree(reference), tree(data)
    for index in (*INDICES, "INDIAVIX"):
        assert any(name.startswith(f"overview/{index}/") for name in expected), sorted(expected)
    assert any(name.startswith("raw/") for name in expected)
    assert sorted(found) == sorted(expected)
    differ = [name for name in expected if found[name] != expected[name]]
    assert not differ, f"{len(differ)} files differ: {differ[:5]}"


@contextmanager
def serve(n: int) -> Iterator[Kite]:
    clock = CycleClock()
    fake = FakeKite(clock, f"kite_key_{n}", f"kite_secret_{n}",  # type: ignore[arg-type]
                    glitch_rate=GLITCHES, enforce_rate_limit=False)  # fmt: skip
    fake.market()  # the day's market built now, not while a collector's lead runs
    with serve_in_thread(Stamped(fake, clock.cycle)) as root:
        env = {
            "KITE_API_KEY": fake.api_key,
            "KITE_ACCESS_TOKEN": fake.issue_access_token(),
            "OPCHAIN_KITE_ROOT": root,
        }
        yield env


def _whole(said: list[str]) -> None:
    """Every collector published every cycle from FIRST (its first was not left to chance)."""
    assert all(WHOLE in line for line in said), said


def _workers(bus: Chorus, url: str, data: Path) -> None:
    """Two workers of the three indices (the default)."""
    for name in ("a", "b"):
        bus.start("-v", "worker", "--bus", url, "-d", str(data), "--name", name)


def _collect(bus: Chorus, url: str, folder: Path, kite: Kite, indices: str = "") -> Role:
    """A collector of ``indices`` (default: the default three) on ``kite``, stamped."""
    options = ["--start", START.strftime("%Y-%m-%dT%H:%M:%S"), "--speed", str(SPEED)]
    command = ["collect", "--bus", url, "--broker", "kite", "-d", str(folder), "--sessions", "1"]
    env = kite | ({"OPCHAIN_INDICES": indices} if indices else {})
    return bus.start(*command, *options, env=env, program=DRIVER)
