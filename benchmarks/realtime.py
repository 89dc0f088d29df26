"""Live timing in real time (issue 13, cases 3 and 22): ``opchain run`` as a user runs it, at
``--speed 1``, against the fake Kite server or the simulator.

    .venv/bin/python benchmarks/realtime.py full-chain [--minutes 10]
    .venv/bin/python benchmarks/realtime.py one-second --mode ticks [--minutes 20]
    .venv/bin/python benchmarks/realtime.py one-second --mode sim [--minutes 20]
    .venv/bin/python benchmarks/realtime.py one-second --mode poll [--minutes 20]

``full-chain``: ``OPCHAIN_FULL_CHAIN=true`` polling ``/quote`` at the default 30 s cadence for
``--minutes`` of market time ending at the close, against the fake Kite in this process (its
rate limit on: one quote call a second, counted as each request arrives). Reports the quote
calls, the 429s (there are no scripted faults: every 429 is opchain's own pacing) and the
shortest gap between two calls' arrivals.

``one-second``: a 1 s cadence for ``--minutes`` ending at the close, with Kite's ticker
(``ticks``), polling Kite (``poll``: the run says it cannot keep 1 s and what it keeps) or the
simulator (``sim``, which paces its calls like Kite, in-process). Reports the cycles recorded,
missed and lost, the lag from each cycle's time to its quotes (``received_at - ts`` of the raw
legs: median, 95th and 99th percentiles, maximum) and the run's own first lines and summary.

Both market clocks start at the same moment (``--start``, the fake's in this process and the
run's), a few seconds before the first cycle, so that the run is ready when it is due.
"""

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from opchain.brokers.kite.fake import FakeKite
from opchain.market import calendar
from opchain.market.clock import ScaledClock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import serve_in_thread  # a real server, as the tests run it

DAY = date(2026, 11, 20)
LEAD = 8.0  # seconds between the clocks' start and the first cycle: the run gets ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["full-chain", "one-second"])
    parser.add_argument("--mode", choices=["ticks", "poll", "sim"], default="ticks")
    parser.add_argument("--minutes", type=float, default=None)
    args = parser.parse_args()
    minutes = args.minutes or (10.0 if args.what == "full-chain" else 20.0)
    session = calendar.session("NSE", DAY)
    assert session is not None
    first = session.close - timedelta(minutes=minutes)
    start = first - timedelta(seconds=LEAD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPCHAIN_", "KITE_"))}
    env |= {"COLUMNS": "200", "OPCHAIN_FLUSH_SECONDS": "1"}
    if args.what == "full-chain":
        env |= {"OPCHAIN_FULL_CHAIN": "true", "OPCHAIN_CADENCE_SECONDS": "30"}
        mode = "poll"
    else:
        env |= {"OPCHAIN_CADENCE_SECONDS": "1"}
        mode = args.mode
    print(f"{args.what} ({mode}): {minutes:g} min of market time from {first:%H:%M:%S} IST, "
          f"real time", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="opchain-realtime-") as folder:
        data = Path(folder) / "data"
        if mode == "sim":
            out, took = _run(["--broker", "sim"], start, data, env)
            _summary(out, took, data)
            return
        clock = ScaledClock(start, 1.0)
        fake = FakeKite(clock, glitch_rate=0.001)  # the rate limit on, no scripted faults
        with serve_in_thread(fake.app()) as root:
            env |= {
                "KITE_API_KEY": fake.api_key,
                "KITE_ACCESS_TOKEN": fake.issue_access_token(),
                "OPCHAIN_KITE_ROOT": root,
            }
            broker = ["--broker", "kite", "--ticks" if mode == "ticks" else "--poll"]
            out, took = _run(broker, start, data, env)
        _summary(out, took, data)
        calls = [r for r in fake.requests if r.path == "/quote"]
        arrived = sorted(r.at for r in calls)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(arrived)]
        limited = sum(1 for r in calls if r.status == 429)
        print(f"/quote calls: {len(calls)}, answered 429: {limited}", flush=True)
        if gaps:
            print(f"shortest gap between two arrivals: {min(gaps):.3f} s", flush=True)
        upgrades = [r for r in fake.requests if r.method == "WS"]
        if upgrades:
            print(f"ticker connections: {len(upgrades)}", flush=True)


def _run(broker: list[str], start: datetime, data: Path, env: dict[str, str]) -> tuple[str, float]:
    command = [sys.executable, "-m", "opchain", "run", *broker, "--no-api", "--sessions", "1"]
    options = ["--speed", "1", "--start", start.strftime("%Y-%m-%dT%H:%M:%S"), "-d", str(data)]
    began = time.monotonic()
    done = subprocess.run([*command, *options], env=env, capture_output=True, text=True)
    took = time.monotonic() - began
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"opchain run failed with exit code {done.returncode}")
    return done.stdout + done.stderr, took


def _summary(out: str, took: float, data: Path) -> None:
    keep = ("Analytics", "cadence", "Session", "Lost", "Quotes in", "Kite:")
    for line in out.splitlines():
        if line.startswith(keep) or "cannot be kept" in line:
            print(f"  | {line}", flush=True)
    print(f"wall time: {took:.0f} s", flush=True)
    table = pq.read_table(data / "raw", partitioning="hive", columns=["ts", "received_at"])
    cycles = table.group_by("ts").aggregate([("received_at", "max")])
    lag = pc.subtract(cycles["received_at_max"], cycles["ts"]).to_pylist()
    seconds = sorted(d.total_seconds() for d in lag)
    if not seconds:
        print("no cycle recorded", flush=True)
        return
    ts = sorted(cycles["ts"].to_pylist())
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(ts)]
    gaps = [s for s in steps if s > min(steps) * 1.5] if steps else []

    def at(q: float) -> float:
        return seconds[min(len(seconds) - 1, int(q * len(seconds)))]

    print(
        f"cycles in the raw record: {len(seconds)}, {ts[0]:%H:%M:%S}-{ts[-1]:%H:%M:%S}; "
        f"gaps between them: {len(gaps)}; lag cycle time -> quotes: median {at(0.5):.3f} s, "
        f"p95 {at(0.95):.3f} s, p99 {at(0.99):.3f} s, max {seconds[-1]:.3f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
