"""Recorded days into InfluxDB (``opchain influx backfill``): each cycle rebuilt from the files,
encoded as the live run encodes it.

The files are the record: a cycle's legs come from the raw Parquet (every leg with its quote,
flag, spot and ATM strike), its index quotes from the overview files, its analytics from the
analytics files (their cells are what ``chain_analytics`` holds, so reading them back gives
the same points), its split rows from the split files; the implied vols and Greeks are solved
again on the legs, with the same vectorized solve the live run used. So a backfilled point is
the live point, on the same series and time (the cycle's scheduled time): writing a day again
changes nothing.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from opchain.market.indices import OVERVIEW
from opchain.market.strikes import offset_label, pair_label
from opchain.merge.cycle import Cycle
from opchain.merge.rows import solve
from opchain.merge.stats import BucketStats, OiKey
from opchain.model import ChainSlice, Quote, Snapshot, SplitRow
from opchain.outputs.influx.points import Tags, cycle_lines
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.raw import RawStore
from opchain.store.recorded import raw_cycles, raw_days, read_overview, read_stats
from opchain.store.splits import read_split


class LineSink(Protocol):
    """Where points go: the InfluxWriter (``put`` never blocks; ``drain`` waits)."""

    def put(self, lines: Sequence[str]) -> None: ...


Progress = Callable[[date, int, int], None]  # (day, cycles of it done, cycles in the day)


@dataclass
class BackfillReport:
    days: list[date] = field(default_factory=list)
    cycles: int = 0
    points: int = 0  # handed to the sink


def recorded_days(settings: Settings) -> list[date]:
    """Every day the data directory holds raw legs of, oldest first."""
    return raw_days(layout.raw_root(settings.data_dir))


def recorded_cycles(settings: Settings, day: date) -> Iterator[Cycle]:
    """Each recorded cycle of ``day`` rebuilt from the files (module docstring), in time order.
    ``loop`` is left empty: how the live loop went is not recorded."""
    root = settings.data_dir
    overview = _overview(root, day)
    stats = _stats(root, day)
    splits = _splits(settings, day)
    previous = _previous_oi(settings, day)
    order = {index: n for n, index in enumerate(settings.indices)}
    for raw in raw_cycles(layout.raw_root(root), day):
        chains = sorted(raw.chains, key=lambda c: order.get(c.index, len(order)))
        snapshot = Snapshot(
            ts=raw.ts,
            received_at=raw.received_at,
            indices=overview.get(raw.ts, {}),
            chains=tuple(chains),
        )
        rows = [row for chain in chains for row in _rows(splits, chain, raw.ts)]
        found = stats.get(raw.ts, {})
        cycle_stats = [
            s for chain in chains if (s := found.get((chain.index, chain.bucket))) is not None
        ]
        solved = solve(snapshot, settings.rate)
        yield Cycle(
            snapshot=snapshot, rows=rows, stats=cycle_stats, solved=solved, previous_oi=previous
        )


def backfill(
    settings: Settings,
    days: Iterable[date],
    sink: LineSink,
    progress: Progress | None = None,
    tags: Tags | None = None,
) -> BackfillReport:
    """Every recorded cycle of ``days`` to ``sink``, a cycle's points in one ``put``; the
    caller drains the sink. ``progress`` is told after each cycle."""
    tags = tags or Tags(env="", host="")
    offsets = settings.strike_offsets
    report = BackfillReport()
    for day in days:
        total = count_cycles(settings, day) if progress else 0
        report.days.append(day)
        for done, cycle in enumerate(recorded_cycles(settings, day), start=1):
            lines = cycle_lines(cycle, tags, offsets)
            sink.put(lines)
            report.cycles += 1
            report.points += len(lines)
            if progress:
                progress(day, done, max(total, done))
    return report


def count_cycles(settings: Settings, day: date) -> int:
    """A day's recorded cycles, by its overview files (cheap: one small file per index)."""
    times = _overview(settings.data_dir, day)
    return len(times)


def _overview(data_dir: Path, day: date) -> dict[datetime, dict[str, Quote]]:
    found: dict[datetime, dict[str, Quote]] = {}
    for key in OVERVIEW:
        for ts, quote in read_overview(layout.overview_path(data_dir, key, day)):
            found.setdefault(ts, {})[key] = quote
    return found


def _stats(data_dir: Path, day: date) -> dict[datetime, dict[tuple[str, str], BucketStats]]:
    found: dict[datetime, dict[tuple[str, str], BucketStats]] = {}
    root = layout.analytics_root(data_dir)
    for path in sorted(root.glob(f"*/*/{day.isoformat()}.csv")):
        for row in read_stats(path):
            found.setdefault(datetime.fromisoformat(row.ts), {})[row.index, row.bucket] = row
    return found


Splits = dict[tuple[str, str, str], dict[datetime, SplitRow]]


def _splits(settings: Settings, day: date) -> Splits:
    found: Splits = {}
    for path in sorted(settings.split_root.glob(f"*/*/*/{day.isoformat()}.csv")):
        series = (path.parents[2].name, path.parents[1].name, path.parent.name)
        found[series] = {row.ts: row for row in read_split(path)}
    return found


def _rows(splits: Splits, chain: ChainSlice, ts: datetime) -> list[SplitRow]:
    """The chain's split rows at ``ts``: offsets ascending, then pairs (as ``merge`` makes
    them)."""
    held = sorted({leg.offset for leg in chain.legs})
    labels = [offset_label(o) for o in held] + [pair_label(s) for s in held if s > 0]
    rows = []
    for label in labels:
        row = splits.get((chain.index, chain.bucket, label), {}).get(ts)
        if row is not None:
            rows.append(row)
    return rows


def _previous_oi(settings: Settings, day: date) -> dict[OiKey, int]:
    """Open interest at the previous recorded close, as the live run loaded it."""
    store = RawStore(layout.raw_root(settings.data_dir))
    try:
        return {k: v for index in settings.indices for k, v in store.closing_oi(index, day).items()}
    finally:
        store.close()
