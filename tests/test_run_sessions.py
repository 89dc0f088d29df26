"""``run_sessions``, the loop of ``opchain run`` (issue 13, case 7): a session is recorded
once, even when it ends (at its last cycle) before the close, and a restarted loop neither
records a day again nor counts it twice. In-process on a virtual clock, at a 5-minute cadence
so a whole day is 75 cycles."""

import asyncio
import random
from datetime import date, datetime
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.health.supervisor import supervise
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import SessionReport, run_sessions
from opchain.settings import Settings

FRIDAY, MONDAY, TUESDAY = date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 24)
LATE = datetime(2026, 11, 20, 15, 29, 40, tzinfo=IST)  # after the last 5-minute cycle (15:25)


def test_a_session_ended_at_its_last_cycle_is_recorded_once_then_the_next_day(
    tmp_path: Path,
) -> None:
    """Started 20 s before Friday's close, after its last cycle's time: that cycle is not
    recorded late under a time its quotes are not from (issue 13, case 22), every cycle of
    Friday was before the run started, and the next session is Monday's, whole; Friday is not
    recorded again."""
    settings = Settings(data_dir=tmp_path, cadence_seconds=300)
    clock = VirtualClock(LATE)
    reports: list[SessionReport] = []
    asyncio.run(run_sessions(settings, SimBroker(clock), clock, 2, on_session=reports.append))
    assert [r.day for r in reports] == [FRIDAY, MONDAY]
    assert (reports[0].cycles, reports[0].skipped, reports[0].before_start) == (0, 0, 75)
    assert reports[0].missed == 0
    assert (reports[1].cycles, reports[1].skipped, reports[1].missed) == (75, 0, 0)


def test_a_restarted_loop_goes_on_from_the_days_it_recorded(tmp_path: Path) -> None:
    """The collector fails once, after Friday's session was recorded and before the close
    (printing the report); the supervisor restarts the loop with the same list of days. It
    neither records Friday again nor counts it twice: ``sessions=2`` is Friday and Monday."""
    settings = Settings(data_dir=tmp_path, cadence_seconds=300)
    clock = VirtualClock(LATE)
    broker = SimBroker(clock)
    reports: list[SessionReport] = []
    recorded: list[date] = []

    def done(report: SessionReport) -> None:
        reports.append(report)
        if len(reports) == 1:
            raise OSError("the terminal went away")

    async def collector() -> None:
        await run_sessions(settings, broker, clock, 2, on_session=done, recorded=recorded)

    asyncio.run(supervise("collector", collector, tmp_path, clock, rng=random.Random(1),
                          max_failures=3))  # fmt: skip
    assert [r.day for r in reports] == [FRIDAY, MONDAY]
    assert recorded == [FRIDAY, MONDAY]
    assert reports[1].cycles == 75 and clock.now().date() == MONDAY
    assert TUESDAY not in recorded
