"""How long the ``opchain`` command takes to start: ``opchain version`` and ``opchain --help``
next to a bare ``python -c pass`` (the floor every command pays), each a fresh process, run
``--runs`` times in turn; and which heavy libraries each left in ``sys.modules``.

    .venv/bin/python benchmarks/cli_start.py [--runs 20] [--baseline SRC]

``--baseline SRC`` runs the same commands a second time with another checkout's ``src`` first
on PYTHONPATH (e.g. ``git archive 02407fe src | tar -x -C /tmp/base``, then ``--baseline
/tmp/base/src``), interleaved with this one's, so a busy moment costs both alike. The
interpreter is this one (the project's virtualenv) and the commands are ``python -m opchain
...`` exactly as the tests run them; the console script adds one small import.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

HEAVY = ("fastapi", "starlette", "uvicorn", "scipy", "numpy", "pyarrow", "duckdb", "redis",
         "httpx", "pydantic_settings", "websockets")  # fmt: skip
COMMANDS = {
    "opchain version": ["version"],
    "opchain --help": ["--help"],
    "opchain run --help": ["run", "--help"],
}
PROBE = """
import sys
from opchain.cli import app
try:
    app({args!r}, prog_name="opchain")
except SystemExit:
    pass
print(" ".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def loaded(args: list[str], env: dict[str, str]) -> str:
    code = PROBE.format(args=args, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    return done.stderr.strip() or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline", help="another checkout's src directory, to compare")
    options = parser.parse_args()
    here = dict(os.environ)
    variants = {"": here}
    if options.baseline:
        variants[" (baseline)"] = {**here, "PYTHONPATH": options.baseline}
    runs: dict[str, tuple[list[str], dict[str, str], list[str]]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], here, [])
    }
    for tag, env in variants.items():
        for name, args in COMMANDS.items():
            runs[name + tag] = ([sys.executable, "-m", "opchain", *args], env, args)
    for command, env, _ in runs.values():  # warm the file cache and the .pyc files
        wall(command, env)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(options.runs):  # interleaved
        for name, (command, env, _) in runs.items():
            times[name].append(wall(command, env))
    load = os.getloadavg()
    print(f"{options.runs} runs each, Python {sys.version.split()[0]}, load {load[0]:.1f}")
    print(f"{'command':<34}{'median':>9}{'min':>9}{'max':>9}  heavy modules loaded")
    for name, seconds in times.items():
        command, env, args = runs[name]
        heavy = loaded(args, env) if args else "-"
        print(f"{name:<34}{statistics.median(seconds) * 1000:>7.0f}ms"
              f"{min(seconds) * 1000:>7.0f}ms{max(seconds) * 1000:>7.0f}ms  {heavy}")  # fmt: skip


if __name__ == "__main__":
    main()
