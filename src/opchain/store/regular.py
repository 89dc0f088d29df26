"""Reading a data file only when it is one: a regular file that resolves inside its root.

Whoever can write into the data directory can leave a symlink, a FIFO or a device where a data
file belongs. Served as it is, a symlink to ``/etc/passwd`` hands that file out, a FIFO blocks
its reader forever and ``/dev/zero`` fills memory. A path is read here only when, with every
symlink followed, it is a regular file inside the root it belongs to (the root resolved too, so
a data directory that is itself a symlink still works); the descriptor is opened without
following a last symlink and without blocking, and checked again, so a file swapped after the
check cannot slip through either.
"""

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


def regular_file(path: Path, root: Path | None) -> Path | None:
    """``path`` resolved, if it is a regular file inside ``root`` (anywhere when ``root`` is
    None); None otherwise (missing, a folder, a FIFO, a device, a socket, a symlink loop or
    one that leads out of ``root``)."""
    try:
        real = path.resolve(strict=True)
        if root is not None and not real.is_relative_to(root.resolve(strict=True)):
            return None
        return real if stat.S_ISREG(real.stat().st_mode) else None
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None


def open_regular(path: Path, root: Path | None = None) -> BinaryIO:
    """``path`` opened for reading in binary, if :func:`regular_file` accepts it; else
    FileNotFoundError naming it (by its name alone: the message may reach a client). Every
    reader of a file someone else may have put there opens it through here."""
    real = regular_file(path, root)
    if real is None:
        raise _not_there(path)
    try:
        return open_file(real, os.O_NOFOLLOW)
    except NotRegularFile:
        raise _not_there(path) from None


class NotRegularFile(OSError):
    """Something other than a regular file where one was to be read."""


def open_file(path: Path, flags: int = 0) -> BinaryIO:
    """``path`` opened for reading in binary if it is a regular file (symlinks followed unless
    ``flags`` has ``os.O_NOFOLLOW``), else :class:`NotRegularFile`. Opened without blocking
    and checked on the descriptor: opening a FIFO to read would wait for a writer, and a file
    swapped after a check by name cannot slip through."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, root: Path | None = None) -> bytes:
    """The bytes of ``path`` (see :func:`open_regular`)."""
    with open_regular(path, root) as f:
        return f.read()


def _not_there(path: Path) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "not a regular file inside its folder", path.name)
