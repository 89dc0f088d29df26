"""What one cycle costs on the bus: the bytes of its ``snap`` field and the time to encode and
decode it (``opchain.bus.codec``), for a cycle of the band of watched offsets and one of the
whole chain, of the simulator's NIFTY, BANKNIFTY and SENSEX (every bucket), at 10:00 IST.
For scale, ``pickle+zlib`` is the snapshot pickled (instruments and all) and compressed alike.
Times are the best of ``--repeat`` runs; decoding includes building every Quote and Leg.

    .venv/bin/python benchmarks/bus_codec.py [--repeat 20]
"""

import argparse
import asyncio
import pickle
import time
import zlib
from datetime import datetime, timedelta

from opchain.brokers.sim import SimBroker
from opchain.bus.codec import decode_snapshot, encode_snapshot
from opchain.collect.cycle import Collector
from opchain.collect.watch import plan_watches
from opchain.market.clock import VirtualClock
from opchain.model import Instrument, Snapshot
from opchain.settings import Settings

AT = datetime.fromisoformat("2026-11-20T10:00:00+05:30")


async def cycle(full_chain: bool) -> tuple[Snapshot, dict[int, Instrument]]:
    settings = Settings()
    clock = VirtualClock(AT)
    broker = SimBroker(clock, settings.sim_seed, 0.0)
    dump = await broker.instruments()
    watches, _ = plan_watches(dump, ("NIFTY", "BANKNIFTY", "SENSEX"), clock.now())
    collector = Collector(broker, clock, watches, settings.strike_offsets, full_chain=full_chain)
    await collector.snapshot(clock.now())
    ts = clock.now() + timedelta(seconds=30)
    await clock.sleep_until(ts)
    return await collector.snapshot(ts), {i.instrument_token: i for i in dump}


def best_ms(run: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'cycle':<11}{'legs':>6}{'quotes':>8}{'bytes':>9}{'pickle+zlib':>13}"
          f"{'encode ms':>11}{'decode ms':>11}   (best of {args.repeat})")  # fmt: skip
    for full in (False, True):
        snapshot, contracts = asyncio.run(cycle(full))
        data = encode_snapshot(snapshot)
        assert decode_snapshot(data, contracts) == snapshot
        legs = sum(len(c.legs) for c in snapshot.chains)
        quotes = legs + len(snapshot.indices)
        baseline = len(zlib.compress(pickle.dumps(snapshot), 1))
        enc = best_ms(lambda s=snapshot: encode_snapshot(s), args.repeat)
        dec = best_ms(lambda d=data, c=contracts: decode_snapshot(d, c), args.repeat)
        name = "full chain" if full else "band"
        print(f"{name:<11}{legs:>6}{quotes:>8}{len(data):>9}{baseline:>13}{enc:>11.2f}{dec:>11.2f}")


if __name__ == "__main__":
    main()
