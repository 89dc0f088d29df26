"""The supervisor: restarts with capped exponential backoff and jitter, a reset after a
healthy run, every restart in the component's health state; sleeps are recorded or virtual,
never real."""

import asyncio
import errno
import logging
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.health import state
from opchain.health.metrics import Metrics
from opchain.health.supervisor import Backoff, GaveUp, supervise
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


class Flaky:
    """A component that fails ``failures`` times (after running ``runs[i]`` seconds of the
    clock, if given), then returns."""

    def __init__(self, clock: VirtualClock, failures: int, runs: list[float] | None = None):
        self.clock, self.failures, self.runs = clock, failures, runs or []
        self.starts = 0

    async def __call__(self) -> None:
        self.starts += 1
        if self.starts <= len(self.runs):
            await self.clock.sleep_until(
                self.clock.now() + timedelta(seconds=self.runs[self.starts - 1])
            )
        if self.starts <= self.failures:
            raise ConnectionError(f"failure {self.starts}")


class Recorder:
    """A sleep that records how long it was asked to wait, and the state at that moment."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.waits: list[float] = []
        self.states: list[state.State] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.states.append(state.read(self.data_dir)["collector"])


def test_restarts_back_off_exponentially_with_jitter_and_report_each(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    flaky = Flaky(clock, failures=4)
    sleep = Recorder(tmp_path)
    metrics = Metrics()
    backoff = Backoff(first=1.0, cap=300.0)
    asyncio.run(
        supervise(
            "collector",
            flaky,
            tmp_path,
            clock,
            backoff,
            sleep=sleep,
            rng=random.Random(3),
            metrics=metrics,
        )
    )
    assert flaky.starts == 5
    for wait, ceiling in zip(sleep.waits, [1.0, 2.0, 4.0, 8.0], strict=True):
        assert ceiling / 2 <= wait <= ceiling
    assert len(set(sleep.waits)) == 4
    assert [s["status"] for s in sleep.states] == ["down"] * 4
    assert sleep.states[2]["detail"].startswith("failed: ConnectionError: failure 3; restart 3 in")
    final = state.read(tmp_path)["collector"]
    assert (final["status"], final["detail"]) == ("ok", "finished")
    restarts = metrics.registry.get_sample_value(
        "opchain_component_restarts_total", {"component": "collector"}
    )
    assert restarts == 4


def test_the_wait_is_capped(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    sleep = Recorder(tmp_path)
    asyncio.run(
        supervise(
            "collector",
            Flaky(clock, failures=12),
            tmp_path,
            clock,
            Backoff(first=1.0, cap=30.0),
            sleep=sleep,
            rng=random.Random(1),
        )
    )
    assert max(sleep.waits) <= 30.0
    assert all(15.0 <= w <= 30.0 for w in sleep.waits[5:])  # 2**5 > 30: at the cap from there


def test_a_healthy_run_resets_the_backoff(tmp_path: Path) -> None:
    """Fails fast twice, then runs 10 minutes before failing: the next wait is the first
    again. The virtual clock does the waiting: the supervisor's default sleep uses it."""
    clock = VirtualClock(NOW)
    flaky = Flaky(clock, failures=4, runs=[0, 0, 600, 0])
    backoff = Backoff(first=10.0, cap=1000.0, healthy_after=600)
    times: list[datetime] = []

    async def component() -> None:
        times.append(clock.now())
        await flaky()

    asyncio.run(supervise("collector", component, tmp_path, clock, backoff, rng=random.Random(5)))
    waits = [
        (b - a).total_seconds() - run
        for a, b, run in zip(times, times[1:], [0, 0, 600, 0], strict=False)
    ]
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20  # 1st, 2nd failure in a row
    assert 5 <= waits[2] <= 10  # after the healthy run: the first wait again
    assert 10 <= waits[3] <= 20


def test_a_hopeless_error_is_not_restarted(tmp_path: Path) -> None:
    class Expired(Exception):
        pass

    async def expired() -> None:
        raise Expired("Kite no longer accepts the token")

    sleep = Recorder(tmp_path)
    with pytest.raises(Expired):
        asyncio.run(
            supervise(
                "collector",
                expired,
                tmp_path,
                VirtualClock(NOW),
                sleep=sleep,
                give_up_on=(Expired,),
            )
        )
    assert sleep.waits == []
    found = state.read(tmp_path)["collector"]
    assert found["status"] == "down" and "Kite no longer accepts" in found["detail"]


def test_it_gives_up_after_max_failures_in_a_row(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    sleep = Recorder(tmp_path)
    with pytest.raises(GaveUp) as caught:
        asyncio.run(
            supervise(
                "collector", Flaky(clock, failures=99), tmp_path, clock, sleep=sleep, max_failures=3
            )
        )
    assert len(sleep.waits) == 2
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert "gave up after 3 failures" in state.read(tmp_path)["collector"]["detail"]


def test_cancelling_the_supervisor_cancels_the_component_without_a_restart(
    tmp_path: Path,
) -> None:
    started = asyncio.Event()
    sleep = Recorder(tmp_path)

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async def go() -> None:
        task = asyncio.create_task(
            supervise("collector", forever, tmp_path, VirtualClock(NOW), sleep=sleep)
        )
        await started.wait()
        assert state.read(tmp_path)["collector"]["detail"] == "running"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert sleep.waits == []


@given(
    first=st.floats(0.01, 10),
    factor=st.floats(1.0, 4.0),
    cap=st.floats(0.01, 1000),
    failures=st.integers(1, 10**6),
    seed=st.integers(0, 2**32),
)
def test_every_wait_lies_between_half_and_all_of_its_capped_ceiling(
    first: float, factor: float, cap: float, failures: int, seed: int
) -> None:
    backoff = Backoff(first=first, cap=cap, factor=factor)
    wait = backoff.delay(failures, random.Random(seed))
    assert wait <= cap
    if failures < 100:  # beyond, the ceiling is the cap (and the power may overflow a float)
        ceiling = min(cap, first * factor ** (failures - 1))
        assert ceiling / 2 <= wait <= ceiling
    else:
        assert wait >= min(cap, first * factor**99) / 2


# --- failures are one line each (issue 13, case 18) -----------------------------------------


class Full:
    """A component that fails ``failures`` times the way a full disk does (the same line of
    code, the same error), then once differently, then returns."""

    def __init__(self, failures: int) -> None:
        self.failures, self.starts = failures, 0

    async def __call__(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise OSError(errno.ENOSPC, "No space left on device")
        if self.starts == self.failures + 1:
            raise ValueError("something else")


def test_each_restart_is_one_line_and_a_traceback_once_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="opchain.health.supervisor")
    clock = VirtualClock(NOW)
    component = Full(failures=5)
    asyncio.run(supervise("collector", component, tmp_path, clock, rng=random.Random(2)))
    assert component.starts == 7
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6  # one a restart
    for number, record in enumerate(warnings, start=1):
        assert record.exc_info is None  # no traceback on the terminal
        line = record.getMessage()
        assert "\n" not in line and f"; restart {number} in " in line
    assert "No space left on device" in warnings[0].getMessage()
    traced = [r for r in caplog.records if r.exc_info is not None]
    assert all(r.levelno == logging.DEBUG for r in traced)
    assert [type(r.exc_info[1]).__name__ for r in traced if r.exc_info] == ["OSError", "ValueError"]


def test_the_state_keeps_the_first_start_through_restarts(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    sleep = Recorder(tmp_path)

    async def sleep_on_the_clock(seconds: float) -> None:
        await sleep(seconds)
        await clock.sleep_until(clock.now() + timedelta(seconds=seconds))

    asyncio.run(
        supervise("collector", Flaky(clock, failures=3), tmp_path, clock, sleep=sleep_on_the_clock)
    )
    assert clock.now() > NOW
    assert [s.get("started") for s in sleep.states] == [NOW.isoformat()] * 3
    final = state.read(tmp_path)["collector"]
    assert final["started"] == NOW.isoformat() and final["since"] == clock.now().isoformat()


def test_a_state_that_cannot_be_written_is_still_seen_and_never_raises(tmp_path: Path) -> None:
    """A read-only or full data directory: the state file is not written, but this process
    (its /health, metrics and alerts) still sees the state, and the reporter goes on."""
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data directory should be")
    state.report(blocked, "storage", "down", "cannot write: No space left on device", NOW)
    assert state.read(blocked)["storage"]["detail"] == "cannot write: No space left on device"
    assert state.read(tmp_path) == {}
