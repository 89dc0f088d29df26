"""The outputs (src/opchain/outputs): opened from one list, resumed from the earliest durable
reach, closed whichever fails; the cycle's solved IVs are the ones the live view shows; a
session recorded through the outputs writes what the stores write when fed directly."""

import asyncio
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from opchain.analytics.expiry_time import years_to_expiry
from opchain.analytics.greeks import greeks
from opchain.brokers.sim import SimBroker
from opchain.brokers.tally import BrokerTally
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.merge.cycle import Cycle, Solved
from opchain.merge.rows import implied_vols, merge_cycle
from opchain.merge.view import live_messages
from opchain.outputs import OUTPUTS, Factory, Output, Session, opened
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.appendlog import FlushSchedule
from opchain.store.overview import OverviewStore
from opchain.store.raw import RawStore
from opchain.store.splits import SplitStore
from opchain.store.stats import StatsStore

from .sessions import DAY, tree_bytes

T0 = datetime.fromisoformat(f"{DAY}T09:30:00+05:30")


@dataclass
class Fake:
    name: str
    durable: bool = True
    reached: datetime | None = None
    fails: bool = False
    log: list[str] = field(default_factory=list)

    def reach(self) -> datetime | None:
        return self.reached

    def write(self, cycle: Cycle) -> None:
        self.log.append(f"write {self.name}")

    def close(self, day_over: bool) -> None:
        self.log.append(f"close {self.name} {day_over}")
        if self.fails:
            raise OSError(f"{self.name} cannot close")


def listed(*fakes: Fake | None) -> list[tuple[str, Factory]]:
    def factory(fake: Fake | None) -> Factory:
        return lambda session: fake

    return [(f"o{n}", factory(fake)) for n, fake in enumerate(fakes)]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    return Session(settings=Settings(data_dir=tmp_path), day=DAY, watches=[], offsets=(0,))


def test_one_output_failing_to_close_still_closes_the_others(session: Session) -> None:
    log: list[str] = []
    a, b, c = (Fake(n, fails=n == "b", log=log) for n in "abc")
    with pytest.raises(OSError, match="b cannot close"), opened(session, listed(a, b, c)) as out:
        out.day_over = True
    assert log == ["close c True", "close b True", "close a True"]  # the last opened first


def test_an_error_while_recording_closes_every_output_the_day_not_over(session: Session) -> None:
    log: list[str] = []
    a, b = Fake("a", log=log), Fake("b", log=log)
    with pytest.raises(RuntimeError), opened(session, listed(a, b)):
        raise RuntimeError("the collector failed")
    assert log == ["close b False", "close a False"]


def test_resume_is_the_earliest_reach_of_the_durable_outputs(session: Session) -> None:
    fakes = [Fake("a", reached=T0 + timedelta(minutes=2)), Fake("b", reached=T0)]
    live = Fake("live", durable=False)  # reaches nothing, and does not hold a restart back
    with opened(session, listed(*fakes, live)) as out:
        assert out.reach() == T0
    with opened(session, listed(Fake("a", reached=T0), Fake("b"))) as out:
        assert out.reach() is None  # one holds nothing of the day: from the open
    with opened(session, listed(live)) as out:
        assert out.reach() is None  # no durable output: nothing to resume from


def test_a_factory_returning_none_is_skipped(session: Session) -> None:
    log: list[str] = []
    a = Fake("a", log=log, reached=T0)
    with opened(session, listed(None, a, None)) as out:
        assert out.outputs == [a]
        assert out.reach() == T0
        out.write(Cycle(snapshot=None, rows=[], stats=[], solved=[]))  # type: ignore[arg-type]
    assert log == ["write a", "close a False"]


def test_the_outputs_are_listed_in_write_order() -> None:
    names = [name for name, _ in OUTPUTS]
    assert names[0] == "raw" and names[-2:] == ["live", "redis"]  # the journal first, views last
    assert names.index("profiles") > names.index("splits")  # they read the split files
    assert len(set(names)) == len(names)


def test_every_listed_output_implements_the_protocol(session: Session) -> None:
    on = [name for name, _ in OUTPUTS if name not in ("influxdb", "redis")]  # no URLs: left off
    with opened(session, OUTPUTS) as out:
        for output, name in zip(out.outputs, on, strict=True):
            check: Output = output
            assert check.name == name
        assert [o.name for o in out.outputs if not o.durable] == ["profiles", "live"]


def _recorded(data_dir: Path, minutes: int = 4) -> list[Cycle]:
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    settings = Settings(data_dir=data_dir)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    got: list[Cycle] = []
    until = session.open + timedelta(minutes=minutes)
    asyncio.run(record_session(settings, broker, clock, DAY, until=until, on_cycle=got.append))
    return got


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Cycle]]:
    folder = tmp_path_factory.mktemp("recorded")
    return folder, _recorded(folder)


def _old_solved(cycle: Cycle, rate: float) -> list[Solved]:
    """Each chain's IVs and Greeks the way the live view made them before the Cycle: a second
    solve of the snapshot, and the Greeks chain by chain."""
    snapshot = cycle.snapshot
    prices = [[leg.price for leg in chain.legs] for chain in snapshot.chains]
    ivs, _, forwards = implied_vols(snapshot, prices, rate)
    out = []
    for chain, chain_ivs, forward in zip(snapshot.chains, ivs, forwards, strict=True):
        t = years_to_expiry(snapshot.ts, chain.expiry)
        vols = np.array([math.nan if v is None else v for v in chain_ivs])
        calls = np.array([leg.side == "CE" for leg in chain.legs])
        strikes = np.array([math.nan if leg.strike is None else leg.strike for leg in chain.legs])
        f = math.nan if forward is None else forward
        g = greeks(f, strikes, t, vols, calls, math.exp(-rate * t))
        delta, gamma, theta, vega = (
            _where_solved(chain_ivs, x.tolist()) for x in (g.delta, g.gamma, g.theta, g.vega)
        )
        solved = Solved(
            forward=forward, iv=chain_ivs, delta=delta, gamma=gamma, theta=theta, vega=vega
        )
        out.append(solved)
    return out


def _where_solved(ivs: list[float | None], values: list[float]) -> list[float | None]:
    return [None if iv is None else v for iv, v in zip(ivs, values, strict=True)]


@pytest.mark.parametrize("rate", [0.0, 0.065])
def test_live_messages_from_the_cycle_equal_those_of_a_second_solve(
    recorded: tuple[Path, list[Cycle]], rate: float
) -> None:
    _, cycles = recorded
    for cycle in (cycles[0], cycles[-1]):
        again = merge_cycle(cycle.snapshot, rate, None, None)
        again = replace(again, previous_oi=cycle.previous_oi)
        old = live_messages(replace(again, solved=_old_solved(again, rate)), rate)
        new = live_messages(again, rate)
        assert _close(new, old)


def _close(a: object, b: object) -> bool:
    """Equal, floats within a few units in the last place: a vectorized solve's last digit
    depends on the length of the arrays it runs over (SIMD loops), which differ here."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-300)
    return a == b


def test_the_outputs_write_what_the_stores_write_fed_directly(
    recorded: tuple[Path, list[Cycle]], tmp_path: Path
) -> None:
    """The same cycles through the stores by hand, as the pipeline fed them before outputs."""
    folder, cycles = recorded
    flushes = FlushSchedule()
    splits = SplitStore(layout.split_root(tmp_path), flushes=flushes)
    overview = OverviewStore(layout.overview_root(tmp_path), flushes=flushes)
    stats = StatsStore(layout.analytics_root(tmp_path), flushes=flushes)
    raw = RawStore(layout.raw_root(tmp_path), flushes=flushes)
    for cycle in cycles:
        raw.add(cycle.snapshot)
        splits.write(cycle.rows)
        overview.write(cycle.snapshot)
        stats.write(cycle.snapshot.ts, cycle.stats)
    for store in (splits, overview, stats, raw):
        store.close()
    for root in (layout.split_root, layout.overview_root, layout.analytics_root):
        assert tree_bytes(root(folder)) == tree_bytes(root(tmp_path))
    parts = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet"))
    assert parts and parts == sorted(p.relative_to(folder) for p in folder.rglob("*.parquet"))
    for part in parts:
        assert pq.read_table(folder / part).equals(pq.read_table(tmp_path / part))


def test_each_cycle_says_how_its_loop_went(recorded: tuple[Path, list[Cycle]]) -> None:
    _, cycles = recorded
    assert [c.loop.cycles for c in cycles] == list(range(1, len(cycles) + 1))
    for cycle in cycles:
        loop = cycle.loop
        assert loop.legs == sum(len(chain.legs) for chain in cycle.snapshot.chains)
        assert loop.flagged == sum(
            leg.flag is not None for c in cycle.snapshot.chains for leg in c.legs
        )
        assert loop.quote_calls >= 1 and loop.collect_ms >= 0 and loop.merge_ms > 0
        assert loop.lag_s == (cycle.snapshot.received_at - cycle.snapshot.ts).total_seconds()
        assert loop.requests == 0  # the simulator has no HTTP to count


def test_the_loop_counts_the_brokers_http_answers_from_its_tally(tmp_path: Path) -> None:
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock)
    broker.tally = BrokerTally()
    for outcome in ("ok", "ok", "rate_limited", "server_error", "error"):
        broker.tally.record(outcome, 0.1)
    got: list[Cycle] = []
    until = session.open + timedelta(minutes=1)
    settings = Settings(data_dir=tmp_path)
    asyncio.run(record_session(settings, broker, clock, DAY, until=until, on_cycle=got.append))
    assert got and {c.loop[-3:] for c in got} == {(5, 1, 2)}
