"""The ``storage`` component: whether the collector can write its data directory.

A write the operating system refuses (a full disk, a read-only mount or folder, a quota, a
file-size limit) stops a collector's run, and its supervisor restarts it with backoff. While
that lasts the component is ``down`` with one line naming the file or folder (the
``component_down:storage`` alert); the first snapshot stored afterwards makes it ``ok`` again.
What is already on disk is kept: the append logs only ever add whole lines after what they
hold (a line half-written when the disk filled is cut when the file is opened again) and whole
files are replaced by a rename, so a refused write leaves the old file.
"""

import errno
from collections.abc import Callable
from pathlib import Path

from opchain.health import state
from opchain.market.clock import Clock
from opchain.merge.cycle import Cycle

COMPONENT = "storage"
# What a refused write looks like: the disk or a quota is full, the file would be too large,
# the folder is read-only, not ours, or not a folder, or the device failed.
WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES,
                          errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EIO})  # fmt: skip


class StorageDown(Exception):
    """The collector stopped because a write was refused; the message is the one line."""


def refusal(err: BaseException) -> OSError | None:
    """The refused write ``err`` is, or was raised from or while handling (closing the other
    files after the first failed), preferring one that names its file; None if none."""
    chain: list[OSError] = []
    seen: set[int] = set()
    found: BaseException | None = err
    while found is not None and id(found) not in seen:
        if isinstance(found, OSError) and found.errno in WRITE_ERRORS:
            chain.append(found)
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    named = [e for e in chain if e.filename is not None]
    return (named or chain)[0] if chain else None


def describe(err: OSError, data_dir: Path) -> str:
    """One line: the file and the reason (the data directory when the error names no file, as
    a buffered write that failed when it was flushed)."""
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename is not None:
        return f"cannot write {err.filename}: {reason}"
    return f"cannot write under {data_dir}: {reason}"


class StorageHealth:
    """Reports the ``storage`` component of one data directory: :meth:`check` the error that
    stopped a collector, :meth:`stored` after every stored snapshot (an ``OnCycle`` hook).
    ``say`` gets one line when writing comes back after a refusal."""

    def __init__(
        self, data_dir: Path, clock: Clock, say: Callable[[str], None] | None = None
    ) -> None:
        self.data_dir, self.clock, self.say = data_dir, clock, say
        self.ok: bool | None = None  # unknown until the first snapshot or refusal

    def check(self, err: BaseException) -> None:
        """Raise :class:`StorageDown` from ``err`` when it is a refused write, after reporting
        storage ``down``; any other error is left alone."""
        found = refusal(err)
        if found is None:
            return
        detail = describe(found, self.data_dir)
        state.report(self.data_dir, COMPONENT, "down", detail, self.clock.now())
        self.ok = False
        raise StorageDown(detail) from err

    def stored(self, _: Cycle | None = None) -> None:
        if self.ok is True:
            return
        again = self.ok is False
        detail = f"writing again under {self.data_dir}" if again else "writing"
        state.report(self.data_dir, COMPONENT, "ok", detail, self.clock.now())
        self.ok = True
        if again and self.say is not None:
            self.say(f"storage: {detail}")
