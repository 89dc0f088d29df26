"""Append-only journals of Arrow record batches: data kept whole through a crash until it can
be written in its final form.

A journal is a file in Arrow's IPC streaming format without its end-of-stream marker: the
schema message, then one encapsulated record-batch message per :meth:`Journal.append`, each
handed to the operating system in one ``write`` as it is appended (so a killed process loses
nothing appended before it), and synced to disk by :meth:`Journal.sync` when writes are
durable. Any Arrow IPC stream reader reads it (``pyarrow.ipc.open_stream``).

A process killed in the middle of an append leaves at most one partial message at the end:
:func:`read_journal` returns the whole batches before it and says how many bytes trail them.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from opchain.store.appendlog import FileFormatError


class JournalError(FileFormatError):
    """A journal that does not even start with a schema; the message names the file."""


class Journal:
    """One journal open for appending (created with its schema message if new or empty)."""

    def __init__(self, path: Path, schema: pa.Schema, durable: bool = False) -> None:
        self.path, self.schema, self.durable = path, schema, durable
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd: int | None = os.open(path, flags, 0o644)
        size = os.fstat(self._fd).st_size
        if size:  # appending to a journal left by an earlier process: it must be whole
            found = read_journal(path)
            if not found.schema.equals(schema):
                self.close()
                raise JournalError(f"{path}: a journal of other columns: {found.schema.names}")
            if found.trailing:
                os.truncate(path, size - found.trailing)
        self._head = b"" if size else schema.serialize().to_pybytes()
        if durable:
            sync_dir(path.parent)

    def append(self, batch: pa.RecordBatch) -> None:
        """Hand one batch to the operating system, whole (with the schema, the first time)."""
        message = batch.serialize()
        if self._head:  # one write: a kill leaves the schema whole, or nothing of the file
            head, self._head = self._head, b""
            write_all(self._fileno(), memoryview(head + message.to_pybytes()))
        else:
            write_all(self._fileno(), memoryview(message))

    def sync(self) -> None:
        if self.durable and self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None

    def _fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: journal is closed")
        return self._fd


@dataclass(frozen=True)
class Found:
    schema: pa.Schema
    batches: list[pa.RecordBatch]
    trailing: int  # bytes after the last whole message: a torn append


def read_journal(path: Path) -> Found:
    """The whole batches of a journal (memory-mapped: they cost no copy) and how many bytes of
    a torn last append trail them. Raises :class:`JournalError` when the file does not start
    with a schema message."""
    if path.stat().st_size == 0:
        raise JournalError(f"{path}: empty")
    source = pa.memory_map(str(path))
    size = source.size()
    try:
        reader = pa.ipc.MessageReader.open_stream(source)
        first = reader.read_next_message()
        if first.type != "schema":
            raise JournalError(f"{path}: starts with a {first.type} message, not a schema")
        schema = pa.ipc.read_schema(first)
    except StopIteration:
        raise JournalError(f"{path}: empty") from None
    except (pa.ArrowException, OSError) as err:
        raise JournalError(f"{path}: not an Arrow IPC stream: {_first_line(err)}") from None
    batches, whole = [], source.tell()
    while True:
        try:
            message = reader.read_next_message()
            batch = pa.ipc.read_record_batch(message, schema)
            batch.validate()
        except StopIteration:
            break
        except (pa.ArrowException, OSError):
            break  # a torn or garbled tail: everything from here on is cut
        batches.append(batch)
        whole = source.tell()
    return Found(schema, batches, size - whole)


def write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def sync_dir(folder: Path) -> None:
    """Make a directory's entries (a created, renamed or removed file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]
