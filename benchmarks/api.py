"""The API under load on loopback: ``/option-chain`` latency at a fixed request rate, and the
WebSocket fan-out of one new snapshot to many clients.

The server is a real uvicorn in its own process (this script with ``serve``: the app over a
recorded data directory, keys on, limits out of the way). The load generator is this process:
httpx over asyncio with an OPEN-LOOP schedule, request i is due at start + i/rate whatever
happened to the ones before, and its latency is counted from when it was due, so a stall of
the server shows in the percentiles instead of quietly slowing the generator down.

Fan-out: N clients hold ``/ws/live/NIFTY``; the server is told (a line on its stdin) to take up
a changed live file, notes the monotonic time it published, and each client notes when the
new message arrived. CLOCK_MONOTONIC is one clock for every process on the machine.

    .venv/bin/python benchmarks/api.py [--rate 500] [--seconds 20] [--clients 200]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
from websockets.asyncio.client import connect

from opchain.api.app import create_app
from opchain.api.live import Hub
from opchain.api.server import address, listen, server
from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store.live import MAX_SHARE, LiveFiles, encode, live_path, read_live, write_live

DAY = "2026-11-20"
KEY = "bench-key"


def record(folder: Path, minutes: int) -> None:
    """The first ``minutes`` of the simulated session: what the server serves."""
    day = date.fromisoformat(DAY)
    settings = Settings(data_dir=folder)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    until = session.open + timedelta(minutes=minutes)
    asyncio.run(record_session(settings, broker, clock, day, until=until))


def live_file_cost(minutes: int = 25, rounds: int = 50) -> None:
    """What the collector pays for the live files: one write (every index's message built,
    encoded and replaced), timed alone, and what that is per cycle at the session benchmark's
    pace, where the writes happen once a second of wall time."""
    day = date.fromisoformat(DAY)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    kept: list[object] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
        until = session.open + timedelta(minutes=minutes)
        asyncio.run(record_session(settings, broker, clock, day, until=until, on_cycle=kept.append))
        files = LiveFiles(Path(tmp))
        times = []
        for cycle in kept[-rounds:]:
            files._pending = cycle  # type: ignore[assignment]
            start = time.perf_counter()
            files.flush()
            times.append(time.perf_counter() - start)
    each = float(np.median(times))
    pace = 22_500 / 166.3  # cycles per wall second in BENCHMARKS.md's full session
    interval = max(files.every, each / MAX_SHARE)
    print(f"live files: one write of all indices {each * 1000:.2f} ms (median of {len(times)}); "
          f"one every {interval:.2f} s at {pace:.0f} cycles/s = "
          f"{each * 1000 / (interval * pace):.3f} ms per cycle")  # fmt: skip


def serve(folder: Path) -> None:
    """The server process: prints its address, then for each line on stdin takes up the live
    files and prints the monotonic time it published them."""
    settings = Settings(data_dir=folder, api_keys=KEY, api_rate=1e9, api_burst=10**9)  # type: ignore[arg-type]
    hub = Hub(folder)
    hub.poll()
    sock = listen("127.0.0.1", 0)
    api = server(create_app(settings, hub))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def publish_on_request() -> None:
            while await reader.readline():
                published = time.monotonic()
                hub.poll()
                print(f"published {published}", flush=True)

        task = asyncio.create_task(publish_on_request())
        await api.serve(sockets=[sock])
        task.cancel()

    print(f"API at {address(sock)}", flush=True)
    asyncio.run(main())


async def load(
    url: str, rate: float, seconds: float, connections: int = 16
) -> tuple[np.ndarray, np.ndarray, int]:
    """Open-loop GETs of /option-chain/NIFTY over ``connections`` keep-alive connections;
    latencies from each request's due time and from when it was written.

    The client is plain HTTP/1.1 over asyncio streams: a general client (httpx) spends more
    CPU per request than the server does, and past a few hundred requests a second its pool
    becomes the thing measured.
    """
    count = int(rate * seconds)
    due_latency = np.full(count, np.nan)
    send_latency = np.full(count, np.nan)
    errors = 0
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"GET /option-chain/NIFTY HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n\r\n"
    ).encode()
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return head.startswith(b"HTTP/1.1 200")

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(20):  # warm up
            await get(reader, writer)
        ready.release()
        while (i := await queue.get()) is not None:
            sent = time.perf_counter()
            ok = await get(reader, writer)
            done = time.perf_counter()
            errors += not ok
            due_latency[i], send_latency[i] = done - (start + i / rate), done - sent
        writer.close()

    ready = asyncio.Semaphore(0)
    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    for _ in workers:
        await ready.acquire()
    start = time.perf_counter() + 0.05
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return due_latency, send_latency, errors


async def fan_out(
    url: str, folder: Path, server: subprocess.Popen[str], clients: int, rounds: int
) -> list[tuple[float, float]]:
    """(publish → first client, publish → last client) per round, in seconds."""
    ws = url.replace("http://", "ws://") + f"/ws/live/NIFTY?key={KEY}"
    sockets = [await connect(ws, max_size=None) for _ in range(clients)]
    for s in sockets:
        await s.recv()  # the current message
    assert server.stdin is not None and server.stdout is not None
    message = read_live(live_path(folder, "NIFTY"))
    assert message is not None
    results = []
    for n in range(rounds):
        write_live(folder, "NIFTY", encode(dict(message, ts=f"{DAY}T15:{n % 60:02d}:00+05:30")))

        async def receive(s: object) -> float:
            await s.recv()  # type: ignore[attr-defined]
            return time.monotonic()

        waiting = [asyncio.create_task(receive(s)) for s in sockets]
        server.stdin.write("go\n")
        server.stdin.flush()
        line = await asyncio.to_thread(server.stdout.readline)
        published = float(line.split()[1])
        arrived = await asyncio.gather(*waiting)
        results.append((min(arrived) - published, max(arrived) - published))
    for s in sockets:
        await s.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--minutes", type=int, default=30, help="session minutes to record")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.folder)
        return
    live_file_cost()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        record(folder, args.minutes)
        command = [sys.executable, __file__, "serve", str(folder)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        ) as process:
            try:
                assert process.stdout is not None
                url = process.stdout.readline().split()[-1]
                size = len(
                    httpx.get(f"{url}/option-chain/NIFTY", headers={"X-API-Key": KEY}).content
                )
                due, sent, errors = asyncio.run(load(url, args.rate, args.seconds))
                print(f"/option-chain/NIFTY ({size:,} bytes) at {args.rate:g} req/s for "
                      f"{args.seconds:g} s: {len(due):,} requests, {errors} errors")  # fmt: skip
                for name, values in (("from due time", due), ("from send time", sent)):
                    p50, p99, p999 = np.nanpercentile(values, [50, 99, 99.9]) * 1000
                    worst = np.nanmax(values) * 1000
                    print(f"  latency {name}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
                          f"p99.9 {p999:.2f} ms  max {worst:.2f} ms")  # fmt: skip
                rounds = asyncio.run(fan_out(url, folder, process, args.clients, args.rounds))
                first = np.array([r[0] for r in rounds]) * 1000
                last = np.array([r[1] for r in rounds]) * 1000
                print(f"fan-out of one snapshot to {args.clients} WebSocket clients, "
                      f"{args.rounds} rounds: publish -> first client median "
                      f"{np.median(first):.1f} ms; publish -> last client median "
                      f"{np.median(last):.1f} ms, worst {last.max():.1f} ms")  # fmt: skip
            finally:
                process.kill()


if __name__ == "__main__":
    main()
