"""The scale-out's moving parts as a user starts them: a throwaway redis-server (AOF on where a
test restarts it, on the same port and folder), and ``opchain collect`` / ``worker`` processes
whose lines are read as they come, so a test waits on what they say, never on time."""

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .servers_health import _until_line, free_port

OPCHAIN = [sys.executable, "-m", "opchain"]
WAIT = 300.0  # seconds: the longest any one thing may take here before the test fails


@contextmanager
def redis_at(
    folder: Path, port: int | None = None, options: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """redis-server on ``port`` (default: a free one) with its append-only file in ``folder``,
    every write synced (a SIGKILLed server restarted here has every acknowledged write), and
    ``options`` of its own (``--requirepass``, ...)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
               "--save", "", "--appendonly", "yes", "--appendfsync", "always",
               "--loglevel", "notice", *options]  # fmt: skip
    with _until_line(command, "Ready to accept connections", "stdout") as process:
        yield f"redis://127.0.0.1:{port}/0", process


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL, and reap."""
    if process.poll() is None:
        process.kill()
    process.wait()


Said = tuple[int, str | None]  # (the process's PID, a line; None when it has ended)


@dataclass
class Role:
    """An ``opchain`` process and what it says (stdout and stderr together)."""

    process: subprocess.Popen[str]
    said: "queue.Queue[Said]"
    seen: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def finish(self) -> int:
        """Wait for the end and every line; its exit code."""
        return self.process.wait(WAIT)


class Chorus:
    """Processes whose lines are heard together: a test waits for what any of them says."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.said: queue.Queue[Said] = queue.Queue()
        self.roles: dict[int, Role] = {}
        self.seen: list[str] = []

    def start(
        self, *args: str, env: Mapping[str, str] | None = None, program: Sequence[str] = OPCHAIN
    ) -> Role:
        """``program`` (the ``opchain`` command) with ``args``, in the chorus's environment
        and ``env`` (this process's own variables) on top."""
        variables = {**os.environ, "COLUMNS": "200", **self.env, **(env or {})}
        process = subprocess.Popen([*program, *args], env=variables, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        role = self.roles[process.pid] = Role(process, self.said)
        out = process.stdout
        assert out is not None

        def pump() -> None:
            for line in iter(out.readline, ""):
                role.seen.append(line)
                self.said.put((process.pid, line))
            self.said.put((process.pid, None))

        role.pump = threading.Thread(target=pump, daemon=True)
        role.pump.start()
        return role

    def wait_for(self, pattern: str, count: int = 1, alive: Role | None = None) -> list[str]:
        """Block until ``count`` lines heard so far match ``pattern``; those lines. Fails
        after WAIT seconds, or when ``alive`` (if given) ends first."""
        found = [line for line in self.seen if re.search(pattern, line)]
        while len(found) < count:
            try:
                pid, line = self.said.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} after {WAIT} s: {self.tail()}") from None
            if line is None:
                if alive is not None and pid == alive.process.pid:
                    raise AssertionError(f"ended before {pattern!r}: {self.tail()}")
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                found.append(line)
        return found

    def tail(self) -> str:
        return "".join(self.seen[-20:])

    def stop(self) -> None:
        """SIGTERM each process still running (a clean stop), SIGKILL after 30 s."""
        for role in self.roles.values():
            if role.process.poll() is None:
                role.process.terminate()
        for role in self.roles.values():
            try:
                role.process.wait(30)
            except subprocess.TimeoutExpired:
                kill(role.process)
            if role.pump is not None:
                role.pump.join(WAIT)
            if role.process.stdout is not None:
                role.process.stdout.close()


@contextmanager
def chorus(env: Mapping[str, str]) -> Iterator[Chorus]:
    together = Chorus(env)
    try:
        yield together
    finally:
        together.stop()


def group_read(url: str, stream: str) -> int:
    """How many entries of ``stream`` the workers' group has been given so far."""
    client = redis.Redis.from_url(url)
    try:
        for group in client.xinfo_groups(stream):
            return int(group.get("entries-read") or 0)
        return 0
    finally:
        client.close()


SKIP = ("health", "live", "spool", "bus")  # each process's own state, not the recorded data


def tree(root: Path, skip: tuple[str, ...] = SKIP) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, but those of the folders ``skip`` names."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }
