"""The kite broker end to end: a session recorded through the fake Kite server equals the same
session recorded from the simulator directly, and trouble on the wire loses no minute."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from opchain.brokers.kite.broker import KiteBroker
from opchain.brokers.kite.client import QUOTE_INTERVAL, KiteClient, TokenExpired
from opchain.brokers.kite.fake import FakeKite, Faults
from opchain.brokers.kite.ticks import TickBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings

from .servers import serve_in_thread
from .sessions import DAY, record, tree_bytes

SESSION = calendar.session("NSE", DAY)
assert SESSION is not None
UNTIL = SESSION.open + timedelta(minutes=30)


def record_via_kite(
    data_dir: Path,
    faults: Faults | None = None,
    until: datetime = UNTIL,
    ticks: bool = False,
    timeout: float = 7.0,
    **settings_given: object,
) -> tuple[SessionReport, FakeKite]:
    clock = VirtualClock(SESSION.open)  # one clock for both ends: the run takes no wall time
    fake = FakeKite(clock, glitch_rate=0.001, faults=faults or Faults())
    fake.ticker.heartbeat = 0.05
    with serve_in_thread(fake.app()) as root:
        token = fake.issue_access_token()
        client = KiteClient(fake.api_key, token, root, clock, seed=3, timeout=timeout)
        broker: KiteBroker | TickBroker = KiteBroker(client, cache_dir=data_dir / "cache")
        if ticks:  # a silent socket is dropped after 0.3 s; a read waits up to 5 s for ticks
            url = root.replace("http", "ws")
            broker = TickBroker(broker, lambda: token, url, stall_after=0.3, backoff=0.02, seed=1)
        settings = Settings(data_dir=data_dir, **settings_given)  # type: ignore[arg-type]

        async def session() -> SessionReport:
            try:
                return await record_session(settings, broker, clock, DAY, until=until)
            finally:
                await broker.close()

        report = asyncio.run(session())
    fake.broker = broker  # type: ignore[attr-defined]  # for the tests to look at
    return report, fake


def _raw(root: Path) -> list[dict[str, object]]:
    table = pq.read_table(root / "raw", partitioning="hive")
    order = [("ts", "ascending"), ("tradingsymbol", "ascending"), ("bucket", "ascending")]
    return table.sort_by(order).to_pylist()


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's session, its quote calls paced as the Kite client paces them."""
    folder = tmp_path_factory.mktemp("sim")
    record(folder, until=UNTIL, pace=QUOTE_INTERVAL)
    return folder


@pytest.fixture(scope="module")
def direct_ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's session, its quote calls a second apart as tick mode reads its book."""
    folder = tmp_path_factory.mktemp("sim")
    record(folder, until=UNTIL)
    return folder


def test_kite_records_the_same_files_as_the_simulator(direct: Path, tmp_path: Path) -> None:
    report, fake = record_via_kite(tmp_path)
    assert report.cycles == 60 and report.missed == 0
    assert tree_bytes(tmp_path / "csv_data") == tree_bytes(direct / "csv_data")
    assert tree_bytes(tmp_path / "overview") == tree_bytes(direct / "overview")
    assert _raw(tmp_path) == _raw(direct)
    quote_calls = [r for r in fake.requests if r.path == "/quote"]
    assert len(quote_calls) == report.quote_calls and all(r.status == 200 for r in quote_calls)


def test_under_scripted_faults_no_minute_is_missed(direct: Path, tmp_path: Path) -> None:
    faults = Faults(too_many=0.10, server_error=0.05, html=0.02, malformed=0.02, seed=11)
    report, fake = record_via_kite(tmp_path, faults)
    statuses = [r.status for r in fake.requests if r.path == "/quote"]
    assert statuses.count(429) > 0 and any(s is not None and s >= 500 for s in statuses)
    assert report.cycles == 60 and report.missed == 0
    # Retries cost clock time (backoff), so quotes may be of a later second: the same minutes,
    # every one of them, not the same bytes.
    for path in (tmp_path / "csv_data").rglob("*.csv"):
        lines = path.read_text().splitlines()[1:]
        assert len(lines) == 60
        minutes = {line[11:16] for line in lines}
        assert len(minutes) == 30


def test_a_bad_broker_hour_loses_cycles_not_the_collector(tmp_path: Path) -> None:
    """Issue 13, case 2's mix (but stalls, which cost wall time) at a 5 s cadence on a virtual
    clock: each quote call that cannot be answered
    before the next cycle is due loses its cycle alone, counted by reason; the session goes
    on to its end, every cycle on time, and every cycle some answer could be had for is
    recorded."""
    faults = Faults(too_many=0.3, server_error=0.2, html=0.1, malformed=0.1, seed=13)
    report, fake = record_via_kite(tmp_path, faults, cadence_seconds=5)  # stalls: test_chaos_kite
    assert report.missed == 0 and report.cycles + report.lost.total() == 360
    assert report.lost.total() > 20 and report.cycles > 200
    assert {"rate limited (HTTP 429)", "server error (HTTP 5xx)"} <= set(report.lost)
    path = tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"
    recorded = {line[:25] for line in path.read_text().splitlines()[1:]}
    assert len(recorded) == report.cycles
    cycles = [SESSION.open + timedelta(seconds=5 * k) for k in range(360)]
    usable = {
        r.at.replace(microsecond=0, second=r.at.second // 5 * 5)
        for r in fake.requests
        if r.path == "/quote" and r.status == 200 and r.fault in ("ok", "garbled")
    }
    had = {ts.isoformat() for ts in cycles if ts in usable}
    assert recorded == had


def test_an_expired_token_stops_the_session_cleanly(tmp_path: Path) -> None:
    faults = Faults(token_expires_at=SESSION.open + timedelta(minutes=10))
    with pytest.raises(TokenExpired, match="TokenException"):
        record_via_kite(tmp_path, faults)
    # Everything collected before the expiry is on disk, whole.
    rows = (tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv").read_text().splitlines()
    assert len(rows) == 1 + 20 and rows[-1].startswith("2026-11-20T09:24:30+05:30")


def test_tick_mode_records_the_same_files_as_polling(direct_ticks: Path, tmp_path: Path) -> None:
    report, fake = record_via_kite(tmp_path, ticks=True)
    assert report.cycles == 60 and report.missed == 0
    assert tree_bytes(tmp_path / "csv_data") == tree_bytes(direct_ticks / "csv_data")
    assert tree_bytes(tmp_path / "overview") == tree_bytes(direct_ticks / "overview")
    assert _raw(tmp_path) == _raw(direct_ticks)  # depth, OI, timestamps: every field of every leg
    assert not [r for r in fake.requests if r.path.startswith("/quote")]  # ticks only
    assert [r.status for r in fake.requests if r.method == "WS"] == [101]


def test_tick_mode_rides_out_a_broken_stream(direct_ticks: Path, tmp_path: Path) -> None:
    """Cut, silenced, muted (heartbeats only) and garbled: each time the ticker reconnects or
    skips the bad frame, and the session is still the polling session, byte for byte."""
    script = ["ok"] * 5 + ["drop"] + ["ok"] * 5 + ["stall", "ok", "mute", "ok", "garbled"]
    report, fake = record_via_kite(tmp_path, Faults(ws_script=script), ticks=True)
    assert report.cycles == 60 and report.missed == 0
    assert tree_bytes(tmp_path / "csv_data") == tree_bytes(direct_ticks / "csv_data")
    assert _raw(tmp_path) == _raw(direct_ticks)
    broker = fake.broker  # type: ignore[attr-defined]
    assert broker.ticker.reconnects >= 3 and broker.late_reads == 0
    upgrades = [r.status for r in fake.requests if r.method == "WS"]
    assert len(upgrades) >= 4 and set(upgrades) == {101}


def test_tick_mode_stops_on_an_expired_token(tmp_path: Path) -> None:
    faults = Faults(token_expires_at=SESSION.open + timedelta(minutes=10), ws_script=["drop"])
    with pytest.raises(TokenExpired, match="TokenException"):
        record_via_kite(tmp_path, faults, ticks=True)
    rows = (tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv").read_text().splitlines()
    assert len(rows) == 1 + 20 and rows[-1].startswith("2026-11-20T09:24:30+05:30")
