"""The embedded pipeline: broker -> collect -> merge -> outputs, one session at a time.

This is the only module that wires the stages together. It decides which cycles to run (all of
them from the open for a replayable source such as the simulator; from now on for a live one),
hands each cycle to every output listed in :data:`opchain.outputs.OUTPUTS`, resumes after a
crash from how far every durable output already reaches, and reports what it did.

Which days have sessions is the calendar's to say. In a year it has no holiday table for, the
simulator refuses (it must not invent a market); a live broker records every weekday at regular
hours, provisionally, warning each day (log, the ``calendar`` health state, the session's
report), and a weekday on which the exchange's own timestamps are all from an earlier day is
reported closed and nothing is recorded for it (:mod:`opchain.collect.opening`).
"""

import gc
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from time import perf_counter
from typing import TYPE_CHECKING, NamedTuple, Protocol

from opchain.brokers import pacing
from opchain.brokers.base import Broker, QuoteUnavailable
from opchain.collect.budget import plan_cadence
from opchain.collect.cycle import Collector
from opchain.collect.opening import watch_opening
from opchain.collect.watch import Watch, plan_watches
from opchain.health import state as health
from opchain.market import calendar
from opchain.market.clock import Clock
from opchain.market.indices import INDICES
from opchain.market.instruments import format_dump
from opchain.market.strikes import offset_label
from opchain.merge.cycle import Cycle, LoopStats
from opchain.merge.rows import merge_cycle
from opchain.merge.stats import History
from opchain.model import Instrument, Snapshot
from opchain.outputs import OUTPUTS, Outlets, Session, opened
from opchain.outputs.splits import series_keys as series_keys
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.appendlog import FlushSchedule, write_atomic
from opchain.store.raw import RawStore
from opchain.store.splits import SeriesKey, read_split, split_path
from opchain.store.stats import iv30_closes, recent_cycles

if TYPE_CHECKING:
    from opchain.health.metrics import Metrics

log = logging.getLogger(__name__)

Progress = Callable[[datetime, int, int], None]  # (cycle time, cycles done, cycles in session)
Say = Callable[[str], None]  # a line the run prints before its first cycle
# Called after each cycle is stored, with the cycle every output got: how the API, the metrics
# and other watchers in the same process see each snapshot as it happens.
OnCycle = Callable[[Cycle], None]


class Record(Protocol):
    """How one session is recorded: :func:`record_session`, or a bus collector's publishing."""

    def __call__(
        self,
        settings: Settings,
        broker: Broker,
        clock: Clock,
        day: date,
        progress: Progress | None = None,
        *,
        on_cycle: OnCycle | None = None,
        say: Say | None = None,
        metrics: "Metrics | None" = None,
    ) -> Awaitable["SessionReport"]: ...


@dataclass
class SessionReport:
    day: date
    session: calendar.Session
    watches: list[Watch] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cycles: int = 0
    resumed_after: datetime | None = None
    skipped: int = 0  # cycles already on disk from an earlier run
    before_start: int = 0  # cycles of the session before this run was ready to record
    missed: int = 0  # cycles whose time had passed before we could run them
    lost: Counter[str] = field(default_factory=Counter)  # cycles the broker failed, by reason
    legs: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    rows_added: int = 0
    quote_calls: int = 0
    streamed: bool = False  # quotes read from a tick stream, not asked for with quote calls
    cadence: float = 0.0  # seconds between cycles, as kept
    full_chain: bool = False
    notes: list[str] = field(default_factory=list)  # the plan, said before the first cycle
    lags: list[float] = field(default_factory=list)  # seconds from each cycle's time to quotes
    files: dict[SeriesKey, int] = field(default_factory=dict)  # rows per split file, on disk
    raw_parts: int = 0
    closed: str = ""  # why nothing was recorded: the exchange did not trade (provisional days)


def cycle_times(session: calendar.Session, cadence: float) -> list[datetime]:
    """Cycle times from the open, every ``cadence`` seconds, before the close."""
    count = int((session.close - session.open).total_seconds() // cadence)
    return [session.open + timedelta(seconds=k * cadence) for k in range(count + 1)][:count]


@dataclass
class Plan:
    """A session ready to record: what it watches, how often, and the collector that asks."""

    session: calendar.Session
    dump: list[Instrument]
    watches: list[Watch]
    collector: Collector
    cadence: float
    planned: datetime  # the moment the watches were planned for


class Taken(NamedTuple):
    """One cycle the loop collected: the ``n``-th of the session's ``total`` cycle times."""

    n: int
    total: int
    snapshot: Snapshot
    loop: LoopStats  # the collector's part (``merge_ms`` is the caller's to fill)


async def record_session(
    settings: Settings,
    broker: Broker,
    clock: Clock,
    day: date,
    progress: Progress | None = None,
    until: datetime | None = None,
    on_cycle: OnCycle | None = None,
    say: Say | None = None,
    metrics: "Metrics | None" = None,
) -> SessionReport:
    """Record one session of ``day`` from the clock's current time to the close (or ``until``).

    The cadence kept and how much of the chain the analytics see are planned first
    (:mod:`opchain.collect.budget`) and said through ``say``. A cycle the broker cannot
    answer in time is lost alone (``report.lost``, by reason); the next runs on time."""
    report, plan = await plan_session(settings, broker, clock, day)
    if plan is None:
        return report
    write_atomic(layout.instruments_path(settings.data_dir, day), format_dump(plan.dump).encode())
    say_notes(report, say)
    watches, offsets, collector = plan.watches, settings.strike_offsets, plan.collector
    flushes = FlushSchedule(settings.flush_seconds)  # one schedule: all files flush together
    here = Session(
        settings=settings,
        day=day,
        watches=watches,
        offsets=offsets,
        flushes=flushes,
        metrics=metrics,
    )
    with opened(here, OUTPUTS) as outputs, quiet_gc():
        try:
            resume = outputs.reach() if watches else None  # raw's reach folds old journals first
            report.resumed_after = resume
            history = history_for(settings, watches, day, resume)
            if resume is not None:
                collector.resume(*_collector_state(settings, watches, day, resume))
            async for taken in take_cycles(broker, clock, plan, report, resume, until):
                cycle = write_cycle(settings, outputs, history, taken.snapshot, taken.loop)
                if on_cycle:
                    on_cycle(cycle)
                if progress:
                    progress(taken.snapshot.ts, taken.n, taken.total)
                outputs.settle()  # what can wait until the cycle is out: the profiles' minute
            outputs.day_over = until is None or until >= plan.session.close  # the whole day is in
        finally:
            report.quote_calls = collector.quote_calls
    written = outputs.written()  # once every output is closed
    report.rows_added, report.files = written.rows_added, written.files
    report.raw_parts = written.raw_parts
    return report


def write_cycle(
    settings: Settings, outputs: Outlets, history: History, snapshot: Snapshot, loop: LoopStats
) -> Cycle:
    """Merge a collected snapshot (its analytics against ``history``, which remembers it) and
    hand the cycle to every output, in the listed order (the raw journal first); the cycle,
    its loop stats with the merge's time. A bus worker records each cycle the same way."""
    start = perf_counter()
    cycle = merge_cycle(snapshot, settings.rate, settings.strike_offsets, history)
    history.remember(cycle.stats)
    cycle = replace(cycle, loop=loop._replace(merge_ms=(perf_counter() - start) * 1000))
    outputs.write(cycle)
    return cycle


async def plan_session(
    settings: Settings, broker: Broker, clock: Clock, day: date
) -> tuple[SessionReport, Plan | None]:
    """What a session of ``day`` will watch and how often (``report.notes``: :func:`say_notes`
    says them); no plan when the exchange turns out not to trade (``report.closed`` says
    why)."""
    exchange = INDICES[settings.indices[0]].exchange
    session = _session(exchange, day, live=broker.name != "sim")
    if session is None:
        raise calendar.CalendarUnavailable(f"{day} is not a trading day on {exchange}")
    report = SessionReport(day=day, session=session)

    dump = await broker.instruments()
    if session.kind == "provisional":  # a guess: the exchange's timestamps say if it trades
        report.warnings.append(_provisional_warning(settings, session, clock))
        if not await _trades(settings, broker, clock, session, report):
            return report, None
    planned = max(clock.now(), session.open)
    watches, warnings = plan_watches(dump, settings.indices, planned)
    report.watches = watches
    report.warnings += warnings  # after the calendar's, if any

    collector = Collector(broker, clock, watches, settings.strike_offsets)
    plan = plan_cadence(
        settings.cadence_seconds,
        settings.full_chain,
        collector.calls_per_cycle(full_chain=True),
        collector.calls_per_cycle(full_chain=False),
        broker.quote_interval,
        broker.name,
    )
    collector.full_chain = report.full_chain = plan.full_chain
    cadence = report.cadence = plan.cadence
    if cadence < 2 * broker.quote_interval * plan.calls:  # no room for a second call
        collector.widen_band()
    report.streamed = broker.name.endswith("ticks")
    report.notes = list(plan.notes)  # said by the caller once it is ready (say_notes)
    return report, Plan(session, dump, watches, collector, cadence, planned)


def say_notes(report: SessionReport, say: Say | None) -> None:
    """Say the session's plan (its cadence, how much of the chain), before its first cycle."""
    for note in report.notes:
        log.info("%s", note)
        if say:
            say(note)


async def take_cycles(
    broker: Broker,
    clock: Clock,
    plan: Plan,
    report: SessionReport,
    resume: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[Taken]:
    """The session's cycles as they are collected, on time: those after ``resume`` (already
    recorded before it) and before ``until``. Cycles missed or lost are counted in ``report``
    and skipped; the next runs on time."""
    collector, cadence = plan.collector, plan.cadence
    times = cycle_times(plan.session, cadence)
    if until is not None:
        times = [t for t in times if t < until]
    ready = await _prime(collector, clock, times, cadence, broker.quote_interval)
    for n, ts in enumerate(times, start=1):
        if resume is not None and ts <= resume:
            report.skipped += 1
            continue
        if ts < ready:  # before this run could record
            report.before_start += 1
            continue
        if (clock.now() - ts).total_seconds() > cadence:
            report.missed += 1
            continue
        await clock.sleep_until(ts)
        calls, start = collector.quote_calls, perf_counter()
        try:
            with pacing.until(ts + timedelta(seconds=cadence)):
                snapshot = await collector.snapshot(ts)
        except QuoteUnavailable as err:  # this cycle is a gap; the next runs on time
            if err.attempts == 0:  # it started too late to ask: ours, not the broker's
                report.missed += 1
                log.warning("cycle %s missed: %s", ts.time(), err)
            else:
                report.lost[err.reason] += 1
                log.warning("cycle %s lost: %s", ts.time(), err)
            continue
        collected = perf_counter()
        report.lags.append((snapshot.received_at - ts).total_seconds())
        report.cycles += 1
        legs, flagged = _count_legs(snapshot, report)
        loop = LoopStats(
            collect_ms=(collected - start) * 1000,
            quote_calls=collector.quote_calls - calls,
            legs=legs,
            flagged=flagged,
            lag_s=report.lags[-1],
            cycles=report.cycles,
            lost=sum(report.lost.values()),
            missed=report.missed,
            **_requests(broker),
        )
        yield Taken(n, len(times), snapshot, loop)


def _count_legs(snapshot: Snapshot, report: SessionReport) -> tuple[int, int]:
    """Count the snapshot's legs and flags into the report; its legs and flagged legs."""
    legs = flagged = 0
    for chain in snapshot.chains:
        legs += len(chain.legs)
        flags = [leg.flag for leg in chain.legs if leg.flag]
        flagged += len(flags)
        report.flags.update(flags)
    report.legs += legs
    return legs, flagged


def _requests(broker: Broker) -> dict[str, int]:
    """The broker's HTTP requests so far, as counted at its transport (none without a tally)."""
    tally = broker.tally
    if tally is None:
        return {}
    totals = tally.totals
    failed = totals["server_error"] + totals["error"]
    return {"requests": totals.total(), "rate_limited": totals["rate_limited"], "failed": failed}


async def _prime(
    collector: Collector, clock: Clock, times: list[datetime], cadence: float, interval: float
) -> datetime:
    """Let the collector learn where to look before its first cycle, so that the cycle is one
    quote call, not two; the moment from which the run records (cycles before it are not
    missed: the run was not there yet).

    With time for the call before the first cycle, it is made now. Without, a cycle of two
    calls is harmless when the cadence has room for two calls; when it has not (a 1-second
    cadence), the second call would push every later cycle back, so the call is made now and
    recording starts with the cycle after it."""
    now = clock.now()
    first = next((t for t in times if t >= now), None)
    if collector.primed or first is None:
        return now
    room = now + timedelta(seconds=interval) <= first
    if not room and cadence >= 2 * interval:
        return now
    try:
        with pacing.until(now + timedelta(seconds=cadence)):
            await collector.prime()
    except QuoteUnavailable as err:  # the first cycle finds its strikes itself
        log.warning("could not look at the indices before the first cycle: %s", err)
        return now
    return now if room else now + timedelta(seconds=interval)


@contextmanager
def quiet_gc(young: int = 50_000) -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of the way for a session.

    Each cycle makes thousands of short-lived records that reference counting frees when the
    cycle ends, while the day's dump, plans and market model live all session. With the
    default settings the collector runs several times a cycle, promotes the records of the
    cycle in flight and walks the long-lived objects again on every full pass. Frozen, the
    long-lived objects are left out; with a higher young-generation threshold the collector
    runs when garbage piles up rather than mid-cycle. Both are undone on the way out.
    BENCHMARKS.md ("Garbage collection") measures the difference.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def history_for(
    settings: Settings, watches: list[Watch], day: date, resume: datetime | None
) -> History:
    """What the day's analytics compare with: the previous close's open interest, earlier
    closes of the 30-day IV, and (resuming) the cycles already recorded today."""
    root = layout.analytics_root(settings.data_dir)
    raw = RawStore(layout.raw_root(settings.data_dir))
    indices = sorted({w.index for w in watches})
    history = History(
        previous_oi={k: v for i in indices for k, v in raw.closing_oi(i, day).items()},
        iv30_closes={i: iv30_closes(root, i, day) for i in indices},
    )
    if resume is not None:
        for w in watches:
            history.recent[w.index, w.bucket] = recent_cycles(root, w.index, w.bucket, day, resume)
    return history


def _collector_state(
    settings: Settings, watches: list[Watch], day: date, moment: datetime
) -> tuple[dict[Watch, float], dict[Watch, float]]:
    """Each watch's ATM strike in its last ``atm`` row at or before ``moment``, and the forward
    estimate (K + C − P) of the last such row with both prices: what the collector held."""
    atms, forwards = {}, {}
    for watch in watches:
        path = split_path(settings.split_root, watch.index, watch.bucket, offset_label(0), day)
        if path.exists():
            rows = [row for row in read_split(path) if row.ts <= moment]
            if rows:
                atms[watch] = rows[-1].atm_strike
            for row in reversed(rows):
                if row.call_last_price is not None and row.put_last_price is not None:
                    forwards[watch] = row.atm_strike + row.call_last_price - row.put_last_price
                    break
    return atms, forwards


def _session(exchange: str, day: date, live: bool) -> calendar.Session | None:
    """The session of ``day``: a live broker's is provisional beyond the tables."""
    return calendar.provisional_session(exchange, day) if live else calendar.session(exchange, day)


def _provisional_warning(settings: Settings, session: calendar.Session, clock: Clock) -> str:
    """Say loudly (log, health state) that ``session`` is a guess; the warning's text."""
    exchange = INDICES[settings.indices[0]].exchange
    warning = f"{session.day}: {calendar.heads_up(exchange, session.day)}"
    log.warning("%s", warning)
    health.report(settings.data_dir, "calendar", "degraded", warning, clock.now())
    return warning


async def _trades(
    settings: Settings,
    broker: Broker,
    clock: Clock,
    session: calendar.Session,
    report: SessionReport,
) -> bool:
    """Whether the exchange trades on a provisional session's day, by its own timestamps on
    the index quotes; a closed day is reported (``report.closed``, log, health state)."""
    keys = [INDICES[k].quote_key for k in settings.indices]
    seen = await watch_opening(broker, clock, keys, session.day, session.open)
    if seen.open is not False:
        if seen.open is None:
            report.warnings.append(f"{session.day}: no exchange timestamps to confirm the open")
        return True
    assert seen.newest is not None
    report.closed = (
        f"the market did not trade: the exchange's newest timestamps are from "
        f"{seen.newest:%Y-%m-%d %H:%M} ({seen.looks} looks since the open)"
    )
    log.warning("%s: %s; nothing is recorded for the day", session.day, report.closed)
    detail = f"{session.day}: closed ({report.closed})"
    health.report(settings.data_dir, "calendar", "degraded", detail, clock.now())
    return False


async def run_sessions(
    settings: Settings,
    broker: Broker,
    clock: Clock,
    sessions: int | None = None,
    on_session: Callable[[SessionReport], None] | None = None,
    progress: Progress | None = None,
    on_cycle: OnCycle | None = None,
    recorded: list[date] | None = None,
    say: Say | None = None,
    metrics: "Metrics | None" = None,
    record: "Record | None" = None,
) -> None:
    """Record session after session, waiting for each open (``sessions=None``: forever).
    ``record`` records one (default :func:`record_session`; a bus collector publishes it).

    A day is recorded once: after its session (it may end before the close, at the last
    cycle) the next one is the next trading day's. ``recorded`` lists the days done, and is
    appended to; a run restarted with the same list goes on from there, counting them.
    """
    exchange = INDICES[settings.indices[0]].exchange
    live = broker.name != "sim"  # a live broker goes on past the tables, provisionally
    done = recorded if recorded is not None else []
    while sessions is None or len(done) < sessions:
        upcoming = calendar.upcoming_session(exchange, clock.now(), provisional=live)
        if done and upcoming.day <= done[-1]:  # recorded before a restart: wait for its close
            await clock.sleep_until(upcoming.close)
            continue
        if upcoming.kind != "provisional" and (notice := calendar.heads_up(exchange, upcoming.day)):
            log.warning("%s", notice)
        elif upcoming.kind == "provisional" and clock.now() < upcoming.open:
            _provisional_warning(settings, upcoming, clock)  # now, and again at the open
        await clock.sleep_until(upcoming.open)
        day = upcoming.day
        report = await (record or record_session)(
            settings, broker, clock, day, progress, on_cycle=on_cycle, say=say, metrics=metrics
        )
        if not report.closed:  # a day the exchange did not trade is no session
            done.append(day)
        if on_session:
            on_session(report)
        if sessions is None or len(done) < sessions:  # the next session is another day's
            await clock.sleep_until(upcoming.close)
