"""Replaying a recorded 1-second day against writing the same bytes with pyarrow in one go.

    .venv/bin/python benchmarks/replay.py                 # --minutes 375 --cadence 1 --runs 2

Records the simulated session of 2026-11-20 (seed 7, band mode) at ``--cadence`` seconds for
``--minutes`` minutes into a temporary directory (not timed), then, alternating ``--runs`` times:

- **replay**: ``opchain replay --into`` a fresh directory (``history.replay.replay_day``): raw
  legs and overview read back, every cycle merged and written (split, overview and analytics
  files), the profiles the day feeds rebuilt, the new set put in place; timed whole and by part;
- **floor**: the files that replay wrote, already parsed into Arrow tables (not timed), written
  again with ``pyarrow.csv.write_csv``, one call per file: the least any writer of those bytes
  could spend.

The replayed files are checked equal to the recorded ones, byte for byte, every run.
"""

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from opchain.brokers.sim import SimBroker
from opchain.history import replay
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import record_session
from opchain.settings import Settings

DAY = date(2026, 11, 20)
DERIVED = ("csv_data", "overview", "analytics", "data_adv")


def record(data: Path, minutes: int, cadence: float) -> int:
    settings = Settings(data_dir=data, cadence_seconds=cadence, full_chain=False)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    until = session.open + timedelta(minutes=minutes)
    whole = until >= session.close
    report = asyncio.run(
        record_session(settings, broker, clock, DAY, until=None if whole else until)
    )
    return report.cycles


def files(root: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(root): p.read_bytes()
        for folder in DERIVED
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def timed_replay(source: Path, into: Path) -> dict[str, float]:
    parts: dict[str, float] = {}
    originals = {name: getattr(replay, name) for name in ("_derive", "_profiles", "_plan")}

    def clocked(name: str):  # type: ignore[no-untyped-def]
        def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                parts[name] = time.perf_counter() - start

        return run

    for name in originals:
        setattr(replay, name, clocked(name))
    try:
        start = time.perf_counter()
        done = replay.replay_day(Settings(data_dir=source), DAY, datetime.now(IST), into)
        parts["whole"] = time.perf_counter() - start
    finally:
        for name, function in originals.items():
            setattr(replay, name, function)
    parts["cycles"] = done.cycles
    return parts


def tables(root: Path) -> list[tuple[Path, pa.Table]]:
    """Every derived CSV parsed as text columns (so that writing it gives its bytes back)."""
    out = []
    for path in sorted(p for folder in DERIVED for p in (root / folder).rglob("*.csv")):
        with path.open("rb") as f:
            header = f.readline().decode().rstrip("\n").split(",")
        types = {name: pa.string() for name in header}
        opts = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
        out.append((path, pacsv.read_csv(path, convert_options=opts)))
    return out


def floor(parsed: list[tuple[Path, pa.Table]], into: Path) -> float:
    options = pacsv.WriteOptions(quoting_style="none")
    start = time.perf_counter()
    for path, table in parsed:
        target = into / path.name
        pacsv.write_csv(table, target, write_options=options)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=375)
    parser.add_argument("--cadence", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "recorded"
        start = time.perf_counter()
        cycles = record(source, args.minutes, args.cadence)
        print(f"recorded {cycles:,} cycles in {time.perf_counter() - start:.1f} s (not timed)")
        want = files(source)
        if args.minutes < 375:  # a day cut short is open in the live profiles, closed in a rebuild
            want = {k: v for k, v in want.items() if k.parts[0] != "data_adv"}
        replays, floors = [], []
        for run in range(args.runs):
            into = Path(tmp) / f"replayed-{run}"
            parts = timed_replay(source, into)
            got = {k: v for k, v in files(into).items() if k in want or k.parts[0] != "data_adv"}
            assert got == want, "the replay did not reproduce the recorded files"
            parsed = tables(into)
            out = Path(tmp) / f"floor-{run}"
            out.mkdir()
            floors.append(floor(parsed, out))
            replays.append(parts)
            print(
                f"run {run + 1}: replay {parts['whole']:.1f} s (merge and files "
                f"{parts['_derive']:.1f} s, profiles {parts['_profiles']:.1f} s, swap plan "
                f"{parts['_plan']:.1f} s) against the pyarrow floor {floors[-1]:.2f} s: "
                f"{parts['whole'] / floors[-1]:.1f}x; {len(got):,} files equal"
            )
            shutil.rmtree(into)
            shutil.rmtree(out)
        whole = statistics.median(p["whole"] for p in replays)
        print(
            f"median: replay {whole:.1f} s, floor {statistics.median(floors):.2f} s, "
            f"{whole / statistics.median(floors):.1f}x"
        )


if __name__ == "__main__":
    main()
