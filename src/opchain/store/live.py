"""The latest ``Live`` message per index as a file, ``<data_dir>/live/<INDEX>.json``.

How an API in another process (``opchain serve``) follows a running collector: the collector
replaces each file whole (a temporary file and a rename) at most once a second of wall time,
and at the end of the session; the server watches the files' modification times. Building the
messages costs a few milliseconds, so at a 1-second cadence live it is done every snapshot,
but replaying a day at a hundred times real time only once per hundred snapshots. On a machine
so busy that a write takes longer than MAX_SHARE of the interval, the writes space out so they
never take more than that share of the collector's time.
"""

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opchain.merge.cycle import Cycle
from opchain.merge.view import live_messages
from opchain.store import layout
from opchain.store.appendlog import write_atomic
from opchain.store.regular import read_regular

MAX_SHARE = 0.005  # of wall time spent writing live files, at most


def live_path(data_dir: Path, index: str) -> Path:
    return layout.live_path(data_dir, index)


def encode(message: Mapping[str, Any]) -> bytes:
    """Compact JSON; NaN is refused (the views hold None instead)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


def write_live(data_dir: Path, index: str, data: bytes) -> None:
    write_atomic(live_path(data_dir, index), data, durable=False)


def read_live(path: Path) -> dict[str, Any] | None:
    """A live file's message, or None when it is missing or not a message (a file being
    replaced is never half-written; one from elsewhere may be anything, a FIFO too: only a
    regular file is read)."""
    try:
        message = json.loads(read_regular(path, path.parent))
    except (OSError, ValueError):
        return None
    return message if isinstance(message, dict) and message.get("type") == "snapshot" else None


class LiveFiles:
    """Keeps the newest snapshot and writes its messages when ``every`` seconds of wall time
    (or more, module docstring) have passed since the last write; :meth:`flush` writes what is
    pending now."""

    def __init__(
        self,
        data_dir: Path,
        rate: float = 0.0,
        every: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_dir, self.rate, self.every, self.now = data_dir, rate, every, now
        self._pending: Cycle | None = None
        self._next = -float("inf")  # when the next write is due
        self.writes = 0

    def offer(self, cycle: Cycle) -> None:
        """Called every cycle: remember it, write only when it is time."""
        self._pending = cycle
        if self.now() >= self._next:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        cycle, self._pending = self._pending, None
        start = self.now()
        for index, message in live_messages(cycle, self.rate).items():
            write_live(self.data_dir, index, encode(message))
        done = self.now()
        self._next = done + max(self.every, (done - start) / MAX_SHARE)
        self.writes += 1
