"""The disk spool: every point the writer accepted and InfluxDB has not taken yet, kept in
order across restarts (the writer is write-ahead: a point is here before ``put`` returns).

Segment files ``<number>.seg`` hold framed records: a 16-byte header (magic, payload length,
CRC-32 of the payload, points) and one gzip member (the lines of one ``put``). Records are only
appended; a reader's cursor walks the oldest segment, and a segment is deleted once every record
in it is written. :meth:`Spool.peek` hands out whole records from the head, as many as fit in a
batch, and :meth:`Spool.pop` moves past them once the server answered; their bodies,
concatenated, are one gzip stream of several members, sent as one request. A new spool on the
same folder (after a restart, a crash) finds what is there and hands it out first, oldest
segment first. Appends are handed to the OS (no fsync): they survive the process being killed,
not the machine losing power.

A process killed mid-append leaves a torn last record: opening the spool cuts a segment at its
first record that does not check out (short, wrong magic, wrong CRC) and logs it; it never
raises. What a cursor had already handed out before a restart is not remembered, so the
oldest segment's first records may be written twice, harmlessly: a point written again lands on
the same series and time (docs/influxdb.md, "Identity").

The spool is bounded (bytes on disk): an append that does not fit is refused, and the writer
counts its points as dropped.
"""

import contextlib
import logging
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MAGIC = b"OPSP"
HEADER = struct.Struct("<4sIII")  # magic, payload length, crc32(payload), points
SEGMENT_BYTES = 4 << 20  # a new segment after this many bytes (at most a quarter of the bound)


FOUND = float("-inf")  # the append time of a record found on disk: due at once


@dataclass(frozen=True)
class Record:
    body: bytes  # one gzip member: the lines of one put, each ending in a newline
    points: int


@dataclass
class _Segment:
    number: int
    size: int  # bytes in the file
    points: int = 0  # points not yet written
    # each record not yet written: when it was appended (time.monotonic) and its points
    records: deque[tuple[float, int]] = field(default_factory=deque)

    def name(self) -> str:
        return f"{self.number:012d}.seg"


class Spool:
    """Append-only, bounded, in-order storage of batches; safe to use from two threads."""

    def __init__(self, folder: Path, limit_bytes: int, label: str = "InfluxDB spool") -> None:
        self.folder = folder
        self.label = label  # how log lines name it (the bus spools its stream entries too)
        self.limit_bytes = limit_bytes
        self._segment_bytes = max(1, min(SEGMENT_BYTES, limit_bytes // 4))
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []  # oldest first
        self._cursor = 0  # offset of the next record in the oldest segment
        self._peeked: list[tuple[int, int, int, int]] = []  # segment, offset, size, points
        self._out: BinaryIO | None = None  # the open file of the newest segment
        self._closed = False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            paths = sorted(folder.glob("*.seg"))
        except OSError as err:
            log.warning("%s %s cannot be used: %s", label, folder, err)
            paths = []
        for path in paths:
            segment = _open_segment(path, label)
            if segment is not None:
                self._segments.append(segment)
        self._next_number = self._segments[-1].number + 1 if self._segments else 1
        if self._segments:
            log.info("%s %s: %d points to replay", label, folder, self.points)

    # Read without the lock (a copy of the list is one atomic step), so a reader never waits
    # on an append's disk write; a count can be a moment old.
    @property
    def disk_bytes(self) -> int:
        return sum(s.size for s in list(self._segments))

    @property
    def points(self) -> int:
        return sum(s.points for s in list(self._segments))

    def empty(self) -> bool:
        return not self._segments

    def oldest_at(self) -> float | None:
        """When the oldest record not yet written was appended (``time.monotonic``; minus
        infinity for one found on disk at opening); None when there is none."""
        segments = list(self._segments)
        for segment in segments:
            records = segment.records
            if records:
                return records[0][0]
        return None

    def append(self, body: bytes, points: int) -> bool:
        """Add a batch at the end; False when it does not fit (or the disk refused it)."""
        record = HEADER.pack(MAGIC, len(body), zlib.crc32(body), points) + body
        with self._lock:
            if self._closed or self.disk_bytes + len(record) > self.limit_bytes:
                return False
            newest = self._segments[-1] if self._segments else None
            if newest is None or newest.size >= self._segment_bytes or self._out is None:
                newest = _Segment(self._next_number, 0)
                fresh = True
            else:
                fresh = False
            path = self.folder / newest.name()
            try:
                if fresh:
                    self._close_out()
                    self._out = path.open("ab")
                assert self._out is not None
                self._out.write(record)
                self._out.flush()
            except OSError as err:
                log.warning("%s %s: a batch not written: %s", self.label, path, err)
                self._close_out()
                _cut(path, newest.size, self.label)  # no torn record before the next one
                return False
            if fresh:
                self._segments.append(newest)
                self._next_number += 1
            newest.size += len(record)
            newest.points += points
            newest.records.append((time.monotonic(), points))
            return True

    def peek(self, max_points: int = 1) -> list[Record]:
        """The oldest records not yet written, whole and in order: as many as fit in
        ``max_points``, at least one; [] when there is none. The same until :meth:`pop`."""
        with self._lock:
            self._peeked = []
            while self._segments and not self._closed:
                records = self._read_head(max_points)
                if records:
                    return records
            return []

    def pop(self) -> None:
        """The records :meth:`peek` gave are written: move past them (deleting each finished
        segment)."""
        with self._lock:
            peeked, self._peeked = self._peeked, []
            for number, offset, size, points in peeked:
                if not self._segments or self._closed:
                    return
                oldest = self._segments[0]
                if oldest.number != number or self._cursor != offset:
                    return  # the head changed under the peek (damage found): nothing to pop
                self._cursor += size
                oldest.points -= points
                if oldest.records:
                    oldest.records.popleft()
                if self._cursor >= oldest.size:
                    self._drop_oldest()

    def _read_head(self, max_points: int) -> list[Record]:
        """Records from the cursor on, across segments, up to ``max_points`` (at least one).
        A damaged head record drops the rest of its segment ([] then: look again); damage
        after the first record ends the list there, to be met at the head next time."""
        records: list[Record] = []
        total = 0
        for index, segment in enumerate(list(self._segments)):
            offset = self._cursor if index == 0 else 0
            if index == 0 and offset >= segment.size:
                self._drop_oldest()
                return []
            path = self.folder / segment.name()
            try:
                with path.open("rb") as f:
                    f.seek(offset)
                    while offset < segment.size:
                        header = f.read(HEADER.size)
                        magic, length, crc, points = HEADER.unpack(header)
                        if records and total + points > max_points:
                            return records
                        body = f.read(length)
                        if magic != MAGIC or len(body) != length or zlib.crc32(body) != crc:
                            raise ValueError("damaged record")
                        self._peeked.append((segment.number, offset, HEADER.size + length, points))
                        records.append(Record(body, points))
                        total += points
                        offset += HEADER.size + length
            except (OSError, struct.error, ValueError) as err:
                if records:
                    return records
                log.warning("%s %s: damaged or unreadable record at %d (%s), rest of the "
                            "segment skipped", self.label, path, offset, err)  # fmt: skip
                self._drop_oldest()
                return []
        return records

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._close_out()

    def _drop_oldest(self) -> None:
        oldest = self._segments.pop(0)
        self._cursor = 0
        if not self._segments:
            self._close_out()
        try:
            (self.folder / oldest.name()).unlink(missing_ok=True)
        except OSError as err:
            log.warning("%s segment %s not deleted: %s", self.label, oldest.name(), err)

    def _close_out(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except OSError as err:
                log.warning("%s segment not closed: %s", self.label, err)


def _open_segment(path: Path, label: str) -> _Segment | None:
    """A segment found on disk, cut at its first bad record; None when nothing is left."""
    try:
        number = int(path.stem)
        data = path.read_bytes()
    except (OSError, ValueError) as err:
        log.warning("%s: %s ignored: %s", label, path, err)
        return None
    offset = points = 0
    records: deque[tuple[float, int]] = deque()
    while offset < len(data):
        end = offset + HEADER.size
        if end > len(data):
            break
        magic, length, crc, n = HEADER.unpack_from(data, offset)
        body = data[end : end + length]
        if magic != MAGIC or len(body) != length or zlib.crc32(body) != crc:
            break
        offset, points = end + length, points + n
        records.append((FOUND, n))
    if offset < len(data):
        log.warning("%s %s: torn or damaged record at byte %d cut (%d bytes)",
                    label, path, offset, len(data) - offset)  # fmt: skip
        _cut(path, offset, label)
    if offset == 0:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    return _Segment(number, offset, points, records)


def _cut(path: Path, size: int, label: str) -> None:
    try:
        with path.open("r+b") as f:
            f.truncate(size)
    except OSError as err:
        log.warning("%s %s not cut at %d: %s", label, path, size, err)
