"""The cadence is a promise the broker's limits can keep (issue 13, case 22): quote calls are
paced from their slots, a cycle is one call, the first cycle included, quotes are of the time a
row is stamped with, and a cadence the limits cannot keep is said first, with what would."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from opchain.brokers.pacing import Pacer
from opchain.brokers.sim import SimBroker
from opchain.collect.budget import plan_cadence
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings

from .sessions import DAY

MID = datetime(2026, 11, 20, 10, 0, 0, 500_000, tzinfo=IST)


class LateClock(VirtualClock):
    """A virtual clock whose sleeps end a millisecond late, as an event loop's do."""

    async def sleep_until(self, moment: datetime) -> None:
        await super().sleep_until(moment + timedelta(milliseconds=1))


def test_calls_are_paced_from_their_slots_not_from_late_wakeups() -> None:
    """A late wake-up does not push the next call back: a thousand calls a second apart take
    999 seconds, not 1 s more (issue 13, case 22: the lag grew until a cycle was missed)."""
    start = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
    clock = LateClock(start)
    pacer = Pacer(clock, 1.0)

    async def go() -> list[datetime]:
        slots = []
        for _ in range(1000):
            await pacer.wait()
            slots.append(pacer._last)
        return slots  # type: ignore[return-value]

    slots = asyncio.run(go())
    assert slots[-1] == start + timedelta(seconds=999)
    assert clock.now() <= start + timedelta(seconds=999, milliseconds=1)


def record_at_one_second(data_dir: Path, minutes: int) -> tuple[SessionReport, SimBroker]:
    settings = Settings(data_dir=data_dir, cadence_seconds=1)
    clock = VirtualClock(MID)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    until = MID + timedelta(minutes=minutes)
    return asyncio.run(record_session(settings, broker, clock, DAY, until=until)), broker


def test_a_one_second_cadence_is_one_call_a_cycle_at_its_own_time(tmp_path: Path) -> None:
    """Started mid-session at a 1 s cadence on the simulator (one call a second): the run
    looks at the indices first, then every cycle is one call made at the cycle's time, so its
    quotes are of the second its rows are stamped with; none is missed, none lags."""
    report, _ = record_at_one_second(tmp_path, 10)
    assert report.cadence == 1 and report.missed == 0 and not report.lost
    assert report.cycles == 10 * 60 - 1  # 10:00:02 to 10:10:00
    assert report.before_start == 45 * 60 + 2 and report.skipped == 0  # to 10:00:01: not ready
    assert report.quote_calls == report.cycles + 1  # the look before the first cycle
    assert set(report.lags) == {0.0}


def test_polling_kite_cannot_keep_one_second_and_says_what_would() -> None:
    plan = plan_cadence(1.0, False, calls_full=7, calls_band=1, interval=1.1, broker="kite")
    assert plan.cadence == 2.0 and not plan.full_chain and plan.calls == 1
    assert plan.notes[-1] == (
        "A 1 s cadence cannot be kept: a cycle needs 1 quote call and kite allows one each "
        "1.1 s. Recording every 2 s instead; streaming ticks (--ticks), a cadence of 2 s or "
        "more or fewer legs would keep a promise the limits allow."
    )


def test_a_cadence_within_the_limits_is_kept() -> None:
    assert plan_cadence(1.0, False, 7, 1, 1.0, "sim").cadence == 1.0  # the simulator, ticks
    plan = plan_cadence(5.0, True, 7, 1, 1.1, "kite")  # the whole chain, asked for
    assert (plan.cadence, plan.full_chain, plan.calls) == (8.0, True, 7)
    assert "fewer legs (OPCHAIN_FULL_CHAIN=false)" in plan.notes[-1]


def test_the_whole_chain_by_default_when_the_cadence_has_room() -> None:
    """Issue 13, case 11: PCR, max pain, walls and GEX of five strikes are not what a trader
    means. At the default 30 s the whole chain's calls fit (six, one each 1.1 s); at 5 s they do
    not, and the run says the band is what it sees, and what would give the whole chain."""
    plan = plan_cadence(30.0, None, calls_full=6, calls_band=1, interval=1.1, broker="kite")
    assert (plan.cadence, plan.full_chain, plan.calls) == (30.0, True, 6)
    assert plan.notes == ("Analytics over the whole chain: 6 quote calls a cycle.",)
    plan = plan_cadence(5.0, None, calls_full=6, calls_band=1, interval=1.1, broker="kite")
    assert (plan.cadence, plan.full_chain, plan.calls) == (5.0, False, 1)
    assert plan.notes == (
        "Analytics over the watched band of strikes only: the whole chain needs 6 quote calls "
        "a cycle, one each 1.1 s: 6.6 s, more than the 5 s cadence; a cadence of 7 s or "
        "streaming ticks (--ticks) would give it.",
    )
    ticks = plan_cadence(1.0, None, calls_full=1, calls_band=1, interval=1.0, broker="kite-ticks")
    assert ticks.full_chain and ticks.cadence == 1.0


def test_a_default_session_at_30_s_sees_the_whole_chain(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, full_chain=None)  # the default, whatever the tests'
    clock = VirtualClock(MID)
    said: list[str] = []
    until = MID + timedelta(minutes=1)
    report = asyncio.run(
        record_session(settings, SimBroker(clock), clock, DAY, until=until, say=said.append)
    )
    assert report.full_chain and report.cycles == 2 and report.notes == said
    assert said[0].startswith("Analytics over the whole chain:")
    assert report.legs > 2 * 2000  # every listed strike, not ten slices of five


def test_a_late_call_pushes_no_later_one_back() -> None:
    """In-process brokers allow one call per clock second: a call that went out 0.85 s late
    (the loop busy) leaves the next second's call on time. Spaced a second from each call, a
    run's cycles stayed 0.86 s late all session after one early stall (issue 13, case 22)."""
    clock = VirtualClock(datetime(2026, 11, 20, 10, 0, 0, 850_000, tzinfo=IST))
    pacer = Pacer(clock, 1.0, per_second=True)

    async def go() -> None:
        await pacer.wait()
        await clock.sleep_until(datetime(2026, 11, 20, 10, 0, 1, tzinfo=IST))
        assert pacer.next_slot() == clock.now()
        await pacer.wait()  # a second call in the same second waits for the next
        assert pacer.next_slot() == datetime(2026, 11, 20, 10, 0, 2, tzinfo=IST)

    asyncio.run(go())
