"""How often the jump flags are wrong, and how often they catch a jump.

The simulated market is recorded through the whole pipeline (``record_session``, 30 s cadence,
every index and bucket) on days of several seeds, one date each (a Monday to a Friday of
November 2026, so every index has its expiry day among them), in three kinds of day:

* **no jumps**: the model's own rare jumps taken out. Every flag in the analytics files'
  ``anomaly`` column and every minute in the eod report's ``outliers`` is a false flag.
* **vol jumps**: every option's implied vol jumps eight times a day, up or down, at seeded
  seconds, by ``k`` local noises: ``k`` times the robust standard deviation of the NIFTY
  this_week straddle's relative change per cycle over the quarter hour before, measured on the
  same seed's day without jumps (strike rolls left out). The straddles move by about that much.
* **vol jumps of p %**: the same, by a fixed share of the IV (``--vol-pct``).
* **index jumps**: the indices jump the same way, by ``k`` times their own local noise (the
  standard deviation of NIFTY's log return over one cycle, ``SimMarket.noise``).

A jump is caught in a bucket when that bucket's analytics row at the first cycle after it
carries a flag; in the eod report when the series' minute holding that cycle is an outlier.
Flags away from the jumps are false flags, counted per bucket and day (analytics) and per
series and day (eod; 7 series a bucket).

    .venv/bin/python benchmarks/anomaly.py [--seeds 5] [--vol 4,8,16,32] [--vol-pct 1,2,3,5]
                                           [--index 8,16,32]
"""

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np

from opchain.brokers.sim import Jump, SimBroker, SimMarket
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.indices import INDICES
from opchain.market.ist import SESSION_CLOSE, at
from opchain.merge.cycle import Cycle
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store import eod

DATES = [date(2026, 11, 16) + timedelta(days=d) for d in range(5)]  # Monday to Friday
JUMPS_PER_DAY = 8
WARM_UP = 1200  # seconds: no jump in the first 40 cycles (a score needs a history)
NOISE_WINDOW = 30  # cycles the local noise of the straddle is measured over


@dataclass
class Day:
    """A recorded day: each bucket's rows (cycle time -> flags, straddle, forward), the eod
    outliers per series, and the cycle each jump lands in."""

    rows: dict[tuple[str, str], dict[datetime, tuple[str, float, float]]]
    outliers: dict[tuple[str, str, str], tuple[str, ...]]
    jumps: list[datetime]
    expiries: dict[tuple[str, str], datetime]  # each bucket's expiry, 15:30 IST


def record(seed: int, day: date, jumps: Sequence[Jump], cadence: float, full: bool) -> Day:
    session = calendar.session("NSE", day)
    assert session is not None
    rows: dict[tuple[str, str], dict[datetime, tuple[str, float, float]]] = {}
    expiries: dict[tuple[str, str], datetime] = {}

    def seen(cycle: Cycle) -> None:
        for row in cycle.stats:
            expiries[row.index, row.bucket] = at(date.fromisoformat(row.expiry), SESSION_CLOSE)
            ts = datetime.fromisoformat(row.ts)
            rows.setdefault((row.index, row.bucket), {})[ts] = (
                row.anomaly, row.straddle, row.forward
            )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), sim_seed=seed, cadence_seconds=cadence, full_chain=full,
            durable_writes=False,
        )  # fmt: skip
        clock = VirtualClock(session.open)
        broker = SimBroker(clock, seed, settings.sim_glitch_rate, jumps=jumps)
        asyncio.run(record_session(settings, broker, clock, day, on_cycle=seen))
        quality = eod.quality(settings.split_root, day)
    outliers = {(q.series[0], q.series[1], q.series[2]): q.outliers for q in quality}
    landed = [
        session.open + timedelta(seconds=cadence * math.ceil(j.second / cadence)) for j in jumps
    ]
    return Day(rows, outliers, landed, expiries)


def jump_seconds(seed: int, day: date) -> list[tuple[int, float]]:
    """Eight (second, sign): one in each eighth of the session after the warm-up."""
    seconds = SimMarket(seed, day, 0.0, jumps=()).seconds
    rng = np.random.default_rng([seed, day.toordinal(), 13])
    span = (seconds - WARM_UP) // JUMPS_PER_DAY
    return [
        (WARM_UP + b * span + int(rng.integers(span // 4, 3 * span // 4)),
         float(rng.choice([-1.0, 1.0])))
        for b in range(JUMPS_PER_DAY)
    ]  # fmt: skip


def straddle_noise(calm: Day, at: datetime, cadence: float) -> float:
    """1.4826 × MAD of the NIFTY this_week straddle's relative change per cycle over the
    NOISE_WINDOW cycles before ``at``, strike rolls (on the forward) left out."""
    rows = calm.rows["NIFTY", "this_week"]
    start = at - timedelta(seconds=cadence * (NOISE_WINDOW + 1))
    window = [rows[t] for t in sorted(rows) if start <= t < at]
    step = INDICES["NIFTY"].strike_step or 50
    changes = [
        b[1] / a[1] - 1
        for a, b in pairwise(window)
        if math.floor(a[2] / step + 0.5) == math.floor(b[2] / step + 0.5) and a[1] > 0
    ]
    center = statistics.median(changes)
    return 1.4826 * statistics.median(abs(c - center) for c in changes)


def plan(seed: int, day: date, kind: str, size: float, calm: Day, cadence: float) -> list[Jump]:
    market = SimMarket(seed, day, 0.0, jumps=())
    session = calendar.session("NSE", day)
    assert session is not None
    jumps = []
    for second, sign in jump_seconds(seed, day):
        if kind == "index":
            jumps.append(Jump(second, spot=sign * size * market.noise(second, cadence)))
        elif kind == "vol%":
            jumps.append(Jump(second, vol=sign * math.log1p(size / 100)))
        else:
            at = session.open + timedelta(seconds=cadence * math.ceil(second / cadence))
            jumps.append(Jump(second, vol=sign * size * straddle_noise(calm, at, cadence)))
    return jumps


@dataclass
class Tally:
    bucket_days: int = 0
    series_days: int = 0
    flags: dict[str, int] = field(default_factory=lambda: {"atm_iv": 0, "straddle": 0})
    flagged_rows: int = 0  # analytics rows with a flag, away from any jump
    outliers: int = 0  # eod outliers away from any jump
    chances: int = 0  # (jump, bucket) pairs
    caught: int = 0
    eod_chances: int = 0  # (jump, series) pairs
    eod_caught: int = 0
    sizes: list[float] = field(default_factory=list)  # relative size of each vol jump
    where: list[str] = field(default_factory=list)  # the false flags, each described

    def add(self, day: Day) -> None:
        hit = set(day.jumps)
        minutes = {t.strftime("%H:%M") for t in hit}
        for (index, bucket), rows in day.rows.items():
            self.bucket_days += 1
            for ts, (flag, _, _) in rows.items():
                if ts in hit:
                    self.chances += 1
                    self.caught += bool(flag)
                elif flag:
                    self.flagged_rows += 1
                    for name in flag.split():
                        self.flags[name] += 1
                    left = day.expiries[index, bucket] - ts
                    self.where.append(f"{ts:%Y-%m-%d %H:%M:%S} {index} {bucket} {flag}, "
                                      f"{left.total_seconds() / 3600:.1f} h to expiry")  # fmt: skip
        for found in day.outliers.values():
            self.series_days += 1
            self.eod_chances += len(minutes)
            self.eod_caught += len(minutes & set(found))
            self.outliers += len(set(found) - minutes)


def rate(part: int, whole: int) -> str:
    return f"{part}/{whole} = {part / whole:.0%}" if whole else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="days of each kind (a date each)")
    parser.add_argument("--vol", default="4,8,16,32", help="vol jump sizes, in local noises")
    parser.add_argument("--vol-pct", default="", help="vol jump sizes, in % of the IV")
    parser.add_argument("--index", default="8,16,32", help="index jump sizes, in local noises")
    parser.add_argument("--cadence", type=float, default=30.0)
    parser.add_argument("--full-chain", action="store_true", help="quote every listed strike")
    args = parser.parse_args()
    kinds = [("none", 0.0)]
    kinds += [("vol", float(k)) for k in args.vol.split(",") if k]
    kinds += [("vol%", float(k)) for k in args.vol_pct.split(",") if k]
    kinds += [("index", float(k)) for k in args.index.split(",") if k]
    tallies = {kind: Tally() for kind in kinds}
    start = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        day = DATES[(seed - 1) % len(DATES)]
        calm = record(seed, day, [], args.cadence, args.full_chain)
        tallies["none", 0.0].add(calm)
        for kind, size in kinds[1:]:
            jumps = plan(seed, day, kind, size, calm, args.cadence)
            tallies[kind, size].add(record(seed, day, jumps, args.cadence, args.full_chain))
            if kind.startswith("vol"):
                tallies[kind, size].sizes += [abs(math.expm1(j.vol)) for j in jumps]
    mode = "every listed strike" if args.full_chain else "the watched band"
    print(f"seeds 1-{args.seeds} ({DATES[0]}..{DATES[-1]}), cadence {args.cadence:g} s, {mode}")
    print()
    print("| day | false flags / bucket-day (atm_iv, straddle) | caught | "
          "eod false outliers / series-day | eod caught |")  # fmt: skip
    print("|---|---|---|---|---|")
    for (kind, size), t in tallies.items():
        name = {"none": "no jumps", "index": "index jumps"}.get(kind, "vol jumps")
        if kind == "vol%":
            name += f" of {size:g} % of the IV"
        elif kind != "none":
            name += f" of {size:g} noises"
        if t.sizes and kind == "vol":
            name += f" (median {100 * statistics.median(t.sizes):.2f} % of the IV)"
        print(
            f"| {name} | {t.flagged_rows / t.bucket_days:.2f} "
            f"({t.flags['atm_iv'] / t.bucket_days:.2f}, {t.flags['straddle'] / t.bucket_days:.2f})"
            f" | {rate(t.caught, t.chances)} | {t.outliers / t.series_days:.2f} "
            f"| {rate(t.eod_caught, t.eod_chances)} |"
        )
    print("\nfalse flags on the days without jumps:")
    for line in tallies["none", 0.0].where:
        print(f"  {line}")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
