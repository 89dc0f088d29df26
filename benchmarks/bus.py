"""The scale-out on Redis Streams against the embedded pipeline: a simulated day of all six
indices, end to end, side by side in one invocation.

Modes, each as a user runs it (subprocesses, ``opchain`` on the same virtualenv):

- embedded: ``opchain demo -d DIR --date D`` (one process, virtual clock, as fast as it goes),
  timed from its start to its exit;
- bus, N workers (N = 1, 2): N ``opchain worker`` processes are started and left to settle
  (each holds its share of the six partitions), then ``opchain collect --date D`` (virtual
  clock: it publishes as fast as it goes); timed from the collector's start until the workers
  said "day closed" for every index. Every file is then compared with the embedded run's.

A throwaway redis-server on a random loopback port, no persistence (``--save ''
--appendonly no``), emptied (FLUSHALL, CONFIG RESETSTAT) before each bus run. While a bus run
goes, every 0.5 s: each process's RSS (``VmRSS``) and CPU time (``/proc/<pid>/stat``), and
the entries the workers' group has read of each stream (``XINFO GROUPS``). Redis's own time
per command comes from ``INFO commandstats``.

Where the time goes, in this process on the same simulated cycles (the first
``--stage-minutes`` of the day at the same cadence): the collector's quote (the simulator),
cutting the snapshot per index and encoding it, the six XADDs to the same redis-server (one
round trip each, as the collector's Publisher does); the worker's XREADGROUP and XACK of them,
decoding, merging (IVs, analytics) and the outputs' write per partition, each partition's
outputs opened by the worker's own code (``Worker._open``).

``--stages-only`` runs only that last part; ``--no-live`` leaves the live messages to Redis out
of it (the worker sends them, on a thread, whenever the bus is configured; ``opchain demo``
has no Redis and writes its live files at most once a second of wall time).

    .venv/bin/python benchmarks/bus.py --chain band --cadence 5
    .venv/bin/python benchmarks/bus.py --chain full --cadence 60
"""

import argparse
import asyncio
import faulthandler
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import redis

from opchain.brokers.sim import SimBroker
from opchain.bus.codec import decode_loop, decode_snapshot, encode_loop, encode_snapshot
from opchain.bus.collector import part
from opchain.bus.worker import Partition, Worker
from opchain.market.clock import VirtualClock
from opchain.market.instruments import format_dump
from opchain.merge.rows import merge_cycle
from opchain.merge.stats import History
from opchain.pipeline import plan_session, quiet_gc, take_cycles
from opchain.settings import Settings

sys.path[:0] = [str(Path(__file__).parents[1])]
from tests.servers_bus import Chorus, chorus, tree  # noqa: E402
from tests.servers_health import _until_line, free_port  # noqa: E402

DAY = "2026-11-20"
INDICES = ("NIFTY", "BANKNIFTY", "SENSEX", "FINNIFTY", "MIDCPNIFTY", "BANKEX")
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE = 0.5  # seconds between samples
OURS = ("xinfo|groups", "info", "config|resetstat", "flushall")  # the benchmark's own commands


@dataclass
class Sample:
    at: float  # seconds since the run's start
    rss: dict[str, float]  # MB, by role
    cpu: dict[str, float]  # seconds, by role
    read: int  # entries the workers' group has read, all streams


@dataclass
class Result:
    mode: str
    seconds: float
    cycles: int
    identical: str = ""
    collector_done: float = 0.0  # seconds to the collector's exit
    samples: list[Sample] = field(default_factory=list)
    commands: dict[str, tuple[int, float]] = field(default_factory=dict)  # calls, usec/call


def proc(pid: int) -> tuple[float, float] | None:
    """RSS in MB and CPU seconds (user + system) of a live process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS")), 0)
    if not rss:  # a zombie: ended, not yet reaped
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return rss / 1024, (int(fields[11]) + int(fields[12])) / TICK


class Sampler(threading.Thread):
    """Samples the roles' processes and the group's progress until stopped."""

    def __init__(self, pids: dict[str, int], url: str | None, start: float) -> None:
        super().__init__(daemon=True)
        self.pids, self.start_at, self.halt = pids, start, threading.Event()
        self.client = redis.Redis.from_url(url) if url else None
        self.samples: list[Sample] = []
        self.last: dict[str, tuple[float, float]] = {}  # last seen per role

    def run(self) -> None:
        while not self.halt.is_set():
            self.take()
            self.halt.wait(SAMPLE)
        self.take()

    def take(self) -> None:
        rss, cpu = {}, {}
        for role, pid in self.pids.items():
            got = proc(pid)
            if got is not None:
                self.last[role] = got
                rss[role], cpu[role] = got
        read = 0
        if self.client is not None:
            for index in INDICES:
                try:
                    for group in self.client.xinfo_groups(f"opchain:cycles:{index}"):
                        read += int(group.get("entries-read") or 0)
                except redis.ResponseError:
                    pass
        self.samples.append(Sample(time.perf_counter() - self.start_at, rss, cpu, read))


def embedded(env: dict[str, str], data: Path) -> Result:
    with chorus(env) as run:
        start = time.perf_counter()
        demo = run.start("demo", "-d", str(data), "--date", DAY)
        sampler = Sampler({"demo": demo.process.pid}, None, start)
        sampler.start()
        assert demo.finish() == 0, "".join(demo.seen[-20:])
        seconds = time.perf_counter() - start
        sampler.halt.set()
        sampler.join()
    result = Result("embedded", seconds, 0, samples=sampler.samples)
    result.identical = "the reference"
    return result


def _settle(bus: Chorus, workers: list[Any]) -> None:
    """Wait until each worker holds its fair share of the partitions."""
    share = -(-len(INDICES) // len(workers))
    k = 0
    while True:
        k += 1
        bus.wait_for(r"taken \(token|given back", count=k)
        held = [
            sum("taken (token" in line for line in w.seen)
            - sum("given back" in line for line in w.seen)
            for w in workers
        ]
        if all(h == share for h in held) or (len(workers) == 1 and held[0] == len(INDICES)):
            return


def bus_run(env: dict[str, str], url: str, n: int, data: Path, folder: Path) -> Result:
    client = redis.Redis.from_url(url)
    client.flushall()
    with chorus(env) as bus:
        workers = [
            bus.start("worker", "--bus", url, "-d", str(data), "--name", f"w{k}") for k in range(n)
        ]
        _settle(bus, workers)
        client.config_resetstat()
        start = time.perf_counter()
        collector = bus.start("collect", "--bus", url, "-d", str(folder), "--date", DAY)
        pids = {"collector": collector.process.pid, "redis": _redis_pid(client)}
        pids |= {f"worker {k + 1}": w.process.pid for k, w in enumerate(workers)}
        sampler = Sampler(pids, url, start)
        sampler.start()
        exited: list[float] = []
        watcher = threading.Thread(
            target=lambda: (collector.process.wait(), exited.append(time.perf_counter() - start))
        )
        watcher.start()
        bus.wait_for(r"day closed", count=len(INDICES))
        seconds = time.perf_counter() - start
        sampler.halt.set()
        sampler.join()
        watcher.join()
        assert collector.finish() == 0, "".join(collector.seen[-20:])
        stats = client.info("commandstats")
    result = Result(f"bus, {n} worker{'s' * (n > 1)}", seconds, 0, samples=sampler.samples)
    result.collector_done = exited[0]
    for name, row in stats.items():
        command = name.removeprefix("cmdstat_")
        if command not in OURS:
            result.commands[command] = (int(row["calls"]), float(row["usec_per_call"]))
    print("".join(line for line in collector.seen if "cycles published" in line), end="")
    return result


def _ends(env: dict[str, str], root: Path, url: str, workers: str, results: list[Result]) -> int:
    """The end-to-end runs, embedded first; the cycles of the day."""
    ref = embedded(env, root / "embedded")
    print(f"embedded: {ref.seconds:.1f} s", flush=True)
    reference = tree(root / "embedded")
    cycles = _cycles(root / "embedded")
    ref.cycles = cycles
    results.append(ref)
    for n in (int(k) for k in workers.split(",")):
        data = root / f"bus{n}"
        got = bus_run(env, url, n, data, root / f"collector{n}")
        got.cycles = cycles
        found = tree(data)
        differ = [k for k in reference if found.get(k) != reference[k]]
        extra = sorted(set(found) - set(reference))
        got.identical = (
            f"{len(reference)} files byte-identical to embedded"
            if not differ and not extra
            else f"DIFFER: {len(differ)} files differ, {len(extra)} extra: {(differ + extra)[:5]}"
        )
        print(f"{got.mode}: {got.seconds:.1f} s; {got.identical}", flush=True)
        results.append(got)
    return cycles


def _redis_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


# Where the time goes, in this process.

STAGES = ("quote", "cut + encode", "XADD x6", "XREADGROUP + XACK", "decode", "merge", "write")
EMBEDDED_MERGE = "(embedded: one merge of the six-index snapshot)"


async def stages(settings: Settings, url: str, minutes: int) -> tuple[int, dict[str, float]]:
    """Seconds spent in each stage over the first ``minutes`` of the day; the cycles."""
    day = date.fromisoformat(DAY)
    session_open = _open_of(settings, day)
    clock = VirtualClock(session_open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate, indices=settings.indices)
    report, plan = await plan_session(settings, broker, clock, day)
    assert plan is not None
    client = redis.Redis.from_url(url)
    client.flushall()
    worker = Worker(settings, client, "stage")  # type: ignore[arg-type]  # only _open is used
    dump = format_dump(plan.dump).encode()
    start_fields = {
        b"day": DAY.encode(),
        b"planned": plan.planned.isoformat().encode(),
        b"dump": zlib.compress(dump, 1),
    }
    parts = {i: Partition(i, None) for i in settings.indices}  # type: ignore[arg-type]
    recs = {i: worker._open(parts[i], start_fields) for i in settings.indices}
    streams = {f"stage:{i}": i for i in settings.indices}
    for stream in streams:
        client.xgroup_create(stream, "g", id="0", mkstream=True)
    spent = dict.fromkeys((*STAGES, EMBEDDED_MERGE), 0.0)
    alone = History()  # the embedded merge's own
    cycles = 0
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    until = session_open + timedelta(minutes=minutes)
    with quiet_gc():
        async for taken in take_cycles(broker, clock, plan, report, None, until):
            spent["quote"] += taken.loop.collect_ms / 1000
            e = time.perf_counter()
            whole = merge_cycle(taken.snapshot, settings.rate, settings.strike_offsets, alone)
            alone.remember(whole.stats)
            spent[EMBEDDED_MERGE] += time.perf_counter() - e
            t0 = time.perf_counter()
            loop = encode_loop(taken.loop._asdict())
            cut = {s: encode_snapshot(part(taken.snapshot, i)) for s, i in streams.items()}
            t1 = time.perf_counter()
            for stream, snap in cut.items():
                client.xadd(stream, {"kind": b"cycle", "snap": snap, "loop": loop})
            t2 = time.perf_counter()
            answer: Any = client.xreadgroup("g", "stage", dict.fromkeys(streams, ">"), 10)
            for stream, entries in answer:
                client.xack(stream, "g", *[e for e, _ in entries])
            t3 = time.perf_counter()
            spent["cut + encode"] += t1 - t0
            spent["XADD x6"] += t2 - t1
            spent["XREADGROUP + XACK"] += t3 - t2
            for stream, entries in answer:
                rec = recs[streams[stream.decode()]]
                for _, fields in entries:
                    a = time.perf_counter()
                    snapshot = decode_snapshot(fields[b"snap"], rec.contracts)
                    decode_loop(fields[b"loop"])
                    b = time.perf_counter()
                    cycle = merge_cycle(snapshot, settings.rate, settings.strike_offsets,
                                        rec.history)  # fmt: skip
                    rec.history.remember(cycle.stats)
                    c = time.perf_counter()
                    rec.outlets.write(cycle)
                    rec.outlets.settle()
                    d = time.perf_counter()
                    spent["decode"] += b - a
                    spent["merge"] += c - b
                    spent["write"] += d - c
            cycles += 1
    spent["(process CPU, all threads)"] = time.process_time() - cpu_start - spent[EMBEDDED_MERGE]
    spent["(wall)"] = time.perf_counter() - wall_start - spent[EMBEDDED_MERGE]
    for rec in recs.values():
        rec.closing.close()
    client.close()
    return cycles, spent


def _open_of(settings: Settings, day: date) -> Any:
    from opchain.market import calendar

    session = calendar.session("NSE", day)
    assert session is not None
    return session.open


# Report.


def per_cycle(result: Result) -> str:
    return f"{result.seconds / result.cycles * 1000:.1f} ms"


def memory(result: Result, role: str) -> str:
    series = [(s.read, s.rss[role]) for s in result.samples if role in s.rss]
    if not series:
        return "-"
    rss = [mb for _, mb in series]
    mid = series[len(series) // 2]
    said = (f"start {rss[0]:.0f}, middle {mid[1]:.0f}, end {rss[-1]:.0f}, max {max(rss):.0f} MB "
            f"({len(series)} samples)")  # fmt: skip
    most = max(read for read, _ in series)
    if role.startswith("worker") and most:
        by = [next(mb for read, mb in series if read >= most * k / 10) for k in range(11)]
        said += "; by tenths of the entries read: " + " ".join(f"{mb:.0f}" for mb in by)
    return said


def cpu(result: Result, role: str) -> float:
    seen = [s.cpu[role] for s in result.samples if role in s.cpu]
    return seen[-1] - seen[0] if seen else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", choices=("band", "full"), default="band")
    parser.add_argument("--cadence", type=float, default=5.0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--stage-minutes", type=int, default=60)
    parser.add_argument("--stages-only", action="store_true", help="skip the end-to-end runs")
    parser.add_argument("--no-live", action="store_true", help="stages: no live messages to Redis")
    args = parser.parse_args()
    if os.environ.get("BUS_BENCH_TRACE"):
        faulthandler.dump_traceback_later(60, exit=True)
    env = {
        "OPCHAIN_INDICES": ",".join(INDICES),
        "OPCHAIN_FULL_CHAIN": "true" if args.chain == "full" else "false",
        "OPCHAIN_CADENCE_SECONDS": f"{args.cadence:g}",
        "OPCHAIN_API_PORT": "0",
    }
    os.environ.update(env)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()  # fmt: skip
    print(f"commit {head}, {os.cpu_count()} CPUs, {args.chain}, cadence {args.cadence:g} s, "
          f"{DAY}, indices {','.join(INDICES)}", flush=True)  # fmt: skip
    port = free_port()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                   "--save", "", "--appendonly", "no", "--loglevel", "notice"]  # fmt: skip
        with _until_line(command, "Ready to accept connections", "stdout"):
            url = f"redis://127.0.0.1:{port}/0"
            if args.stages_only:
                args.workers = ""
                results = [Result("embedded", 1.0, 1)]
                cycles = 1
            else:
                cycles = _ends(env, root, url, args.workers, results)
            settings = Settings(
                data_dir=root / "stages",
                indices=INDICES,
                full_chain=args.chain == "full",
                cadence_seconds=args.cadence,
                redis_url=None if args.no_live else url,  # the worker's live messages
            )
            staged, spent = asyncio.run(stages(settings, url, args.stage_minutes))
    _print(args, results, cycles, staged, spent)


def _cycles(data: Path) -> int:
    """Cycles on disk: rows of NIFTY's overview (one a cycle, under a header)."""
    with (data / "overview" / "NIFTY" / f"{DAY}.csv").open() as rows:
        return sum(1 for _ in rows) - 1


def _print(args: Any, results: list[Result], cycles: int, staged: int, spent: dict) -> None:
    print()
    if args.stages_only:
        _stages(args, staged, spent)
        return
    print(f"## {args.chain}, cadence {args.cadence:g} s: {cycles:,} cycles of six indices")
    print("| mode | seconds | cycles/s | ms a cycle | x of 1 s cadence | collector done | files |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        done = f"{r.collector_done:.1f} s" if r.collector_done else "-"
        ms = r.seconds / cycles * 1000
        print(f"| {r.mode} | {r.seconds:.1f} | {cycles / r.seconds:.1f} | {ms:.1f} | "
              f"{1000 / ms:.1f} | {done} | {r.identical} |")  # fmt: skip
    print()
    print("CPU seconds over the run (from /proc, last sample before exit), ms a cycle:")
    for r in results:
        roles = sorted({k for s in r.samples for k in s.cpu})
        said = ", ".join(f"{k} {cpu(r, k):.1f} s = {cpu(r, k) / cycles * 1000:.1f} ms"
                         for k in roles)  # fmt: skip
        print(f"  {r.mode}: {said}")
    print()
    print("RSS (MB):")
    for r in results:
        for role in sorted({k for s in r.samples for k in s.rss}):
            print(f"  {r.mode}, {role}: {memory(r, role)}")
    print()
    print("Redis, server side (INFO commandstats):")
    for r in results[1:]:
        said = ", ".join(f"{c} {n:,} x {us:.1f} us" for c, (n, us) in sorted(r.commands.items())
                         if n >= cycles)  # fmt: skip
        total = sum(n * us for n, us in r.commands.values()) / 1000
        print(f"  {r.mode}: {said}; {total / cycles:.2f} ms a cycle")
    print()
    _stages(args, staged, spent)


def _stages(args: Any, staged: int, spent: dict) -> None:
    print(f"Stages in-process, first {args.stage_minutes} min ({staged:,} cycles), ms a cycle:")
    for stage in STAGES:
        print(f"  {stage:<20}{spent[stage] / staged * 1000:8.2f}")
    total = sum(spent[stage] for stage in STAGES)
    print(f"  {'total':<20}{total / staged * 1000:8.2f}")
    for extra in ("(process CPU, all threads)", "(wall)", EMBEDDED_MERGE):
        print(f"  {extra:<20}{spent[extra] / staged * 1000:8.2f}")


if __name__ == "__main__":
    main()
