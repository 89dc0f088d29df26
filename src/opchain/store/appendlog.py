"""Crash-safe append-only CSV files with a timestamp first column.

One writer per file. Opening a file repairs a torn last line (a process killed mid-write leaves
at most one), checks the header (:class:`AppendLog`: a file of an earlier or later version of
the format goes on in its own columns), and remembers the timestamp of the last line that is a
good row: rows at or before it are skipped, so replaying a stretch of the session after a crash
adds nothing twice, and a damaged line at the end (:mod:`opchain.store.csvrows`) neither stops
the writer nor makes it write the day again. Rows are written as whole lines;
:class:`FlushSchedule` decides when they leave the process.
"""

import logging
import os
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Generic, Protocol, TypeVar

from opchain.store.csvrows import last_stamp, read_header, show

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class FileFormatError(ValueError):
    """A file on disk that is not what it should be; the message names the file."""


class LogBook(Generic[K]):
    """The append logs of one store, by key: each opened on first use at ``path_of(key)``, all
    closed together."""

    def __init__(
        self, path_of: Callable[[K], Path], header: Sequence[str], durable: bool = False
    ) -> None:
        self.path_of, self.header, self.durable = path_of, tuple(header), durable
        self.logs: dict[K, AppendLog] = {}

    def __getitem__(self, key: K) -> "AppendLog":
        log = self.logs.get(key)
        if log is None:
            log = self.logs[key] = AppendLog(self.path_of(key), self.header, self.durable)
        return log

    def cursor(self, keys: Iterable[K]) -> datetime | None:
        """The latest time every one of these files has reached (None: one has nothing)."""
        stamps = [self[k].last_ts for k in keys]
        if not stamps or any(s is None for s in stamps):
            return None
        return min(s for s in stamps if s is not None)

    def close(self) -> None:
        for log in self.logs.values():
            log.close()
        self.logs.clear()


class AppendLog:
    """One file's writer; see the module docstring. ``header`` is the format's columns today.

    A file already there goes on in its own columns when its header is a version of the
    format: an earlier version's (a prefix of ``header``: the newest columns are missing) gets
    each row cut to its columns, a later version's (``header`` is a prefix of it) gets empty
    cells for the columns this version does not know. Either way the file keeps one header and
    rows of one width, and readers find columns by name. A file whose header is no version of
    the format at all is not this writer's to append to and not its to delete either: it is
    renamed ``<name>.set-aside`` (``.set-aside-2``, ...) beside a new file, with a warning
    naming both. Damaged lines (:mod:`opchain.store.csvrows`) stay where they are; the writer
    appends after them and resumes from the last line that is a good row.
    """

    def __init__(self, path: Path, header: Sequence[str], durable: bool = False) -> None:
        self.path, self.durable = path, durable
        self.header = list(header)
        self.header_line = ",".join(header) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = repair_torn_tail(path)
        if self.repaired_bytes:
            log.info("%s: cut a torn last line of %d bytes", path, self.repaired_bytes)
        self.set_aside: Path | None = None
        self.width = self._check_header()
        self.last_ts = self._read_last_ts()
        self._file: IO[str] = path.open("a", encoding="utf-8", newline="")
        if self.last_ts is None and path.stat().st_size == 0:
            self._file.write(self.header_line)
        self.rows_written = 0

    def append(self, ts: datetime, line: str) -> bool:
        """Append one line (without newline) stamped ``ts``; False if ``ts`` is not new."""
        if self.last_ts is not None and ts <= self.last_ts:
            return False
        if self.width != len(self.header):  # a file of another version: its own columns
            line = fit(line, self.width, len(self.header))
        self._file.write(line + "\n")
        self.last_ts = ts
        self.rows_written += 1
        return True

    def flush(self) -> None:
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()

    def _check_header(self) -> int:
        """The width of the file's rows: its header's, when that is a version of the format
        (a missing or empty file gets today's); else the file is set aside."""
        first = read_header(self.path)
        if first is None:
            return len(self.header)
        if isinstance(first, list):
            shorter, longer = sorted((first, self.header), key=len)
            if longer[: len(shorter)] == shorter:
                return len(first)
        self.set_aside = aside = _free_name(self.path)
        self.path.rename(aside)
        shown = first if isinstance(first, str) else f"header {show(','.join(first))}"
        log.warning(
            "%s:1: %s is not a version of this file's format (%s, ...); the file was "
            "renamed %s, its rows kept there, and a new file started",
            self.path, shown, ",".join(self.header[:3]), aside.name,
        )  # fmt: skip
        return len(self.header)

    def _read_last_ts(self) -> datetime | None:
        return last_stamp(self.path)


def fit(line: str, width: int, cells: int) -> str:
    """A line of ``cells`` cells cut or padded (empty cells) to ``width``."""
    if width > cells:
        return line + "," * (width - cells)
    return ",".join(line.split(",", width)[:width])


def _free_name(path: Path) -> Path:
    """``<name>.set-aside``, or the first ``<name>.set-aside-<n>`` not taken."""
    candidate, n = path.with_name(path.name + ".set-aside"), 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.set-aside-{n}")
    return candidate


class Flushable(Protocol):
    def flush(self) -> None: ...


class FlushSchedule:
    """When appended rows are handed to the operating system: on every :meth:`tick` when
    ``every`` is 0, else once ``every`` seconds of wall time have passed since the last flush.

    A process killed between flushes loses at most that much wall time of rows (the rows of
    one cycle, live at a 1-second cadence), and whatever it lost is written again after a
    restart if the broker can still give it. Replaying a session at a hundred times real time,
    the store writes each file once a second instead of a hundred times.

    Whatever is flushed is flushed in the order it was first written since the last flush (the
    raw journals, written first in a cycle, are synced before the split files).
    """

    def __init__(self, every: float = 0.0, now: Callable[[], float] = time.monotonic) -> None:
        self.every, self.now = every, now
        self._dirty: dict[Flushable, None] = {}  # insertion-ordered
        self._last = now()
        self.count = 0  # flushes so far: what was written before the last one is with the OS

    def wrote(self, log: Flushable) -> None:
        self._dirty.setdefault(log)

    def tick(self) -> None:
        if self.every <= 0 or self.now() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        for log in self._dirty:
            log.flush()
        self._dirty.clear()
        self._last = self.now()
        self.count += 1


def repair_torn_tail(path: Path) -> int:
    """Cut a partial last line (no trailing newline); return how many bytes were cut."""
    if not path.exists():
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        keep = _last_newline(f, size) + 1
        f.truncate(keep)
        return size - keep


def _last_newline(f: IO[bytes], end: int) -> int:
    """Position of the last ``\\n`` before ``end``, or -1."""
    chunk = 4096
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        f.seek(start)
        found = f.read(pos - start).rfind(b"\n")
        if found >= 0:
            return start + found
        pos = start
    return -1


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a whole file so that readers see the old one or the new one, never half.

    ``durable`` syncs the data to disk before the rename, so a power cut cannot leave an empty
    file behind it either; without it a killed process still cannot. A write that fails (a
    full disk) removes its temporary file and raises; the old file is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:  # a full disk, a kill signal's exception: no half file left behind
        tmp.unlink(missing_ok=True)
        raise
