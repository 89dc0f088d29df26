"""A set of files replaced as one: every new file made beside the old ones first, then all of
them put in place, so that a process killed at any moment leaves the old set or the new one.

A swap is a folder (``layout.swap_root``) holding the new files under ``staged/`` and, once they
are all there, a manifest: the commit point. Written whole (``write_atomic``), it lists each
staged file with the place it goes and the old files that go away. Putting the set in place is
a rename per file (a copy beside it then a rename when the place is on another file system),
each a no-op once done, so it can be repeated from the start after a kill:
:func:`finish` does that for any swap whose manifest is there, and throws away a staging folder
without one (a swap killed before its commit point: the old set stands). Every command that
opens a data directory to read or write its day files calls :func:`finish` first, so nobody
reads a half-swapped set for longer than the gap between a kill and the next command. A swap
being staged holds a lock on its folder (``flock``), and :func:`finish` passes over a locked
folder: another process's swap in progress is neither finished nor thrown away.
"""

import errno
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from opchain.store.appendlog import write_atomic
from opchain.store.journal import sync_dir

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STAGED = "staged"
LOCK = "lock"


@dataclass
class Swap:
    """One set of files to replace: ``folder`` (a fresh folder of its own) holds what is staged."""

    folder: Path
    moves: list[tuple[Path, Path]] = field(default_factory=list)  # (staged file, its place)
    removals: list[Path] = field(default_factory=list)  # old files the new set has not
    lock: int = -1  # the open lock file's descriptor while the swap is staged

    @property
    def staged(self) -> Path:
        return self.folder / STAGED

    def place(self, staged: Path, target: Path) -> None:
        self.moves.append((staged, target))

    def remove(self, target: Path) -> None:
        self.removals.append(target)

    def commit(self, durable: bool = True) -> int:
        """Write the manifest (from here the new set wins) and put the set in place; the files
        moved."""
        entries = {
            "moves": [[str(a.relative_to(self.folder)), str(b)] for a, b in self.moves],
            "removals": [str(p) for p in self.removals],
        }
        if durable:
            for staged, _ in self.moves:
                _sync_file(staged)
        write_atomic(self.folder / MANIFEST, json.dumps(entries, indent=1).encode(), durable)
        try:
            return _apply(self.folder, durable)
        finally:
            self.release()

    def abandon(self) -> None:
        """Throw the staged files away (nothing was committed): the old set stands."""
        if not (self.folder / MANIFEST).exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        self.release()

    def release(self) -> None:
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1


def begin(folder: Path) -> Swap:
    """A new swap in ``folder``, which must not hold one (:func:`finish` first)."""
    if folder.exists():
        raise FileExistsError(errno.EEXIST, "a swap is already staged there", str(folder))
    (folder / STAGED).mkdir(parents=True)
    lock = _lock(folder)
    assert lock is not None  # a folder just made is nobody else's
    return Swap(folder, lock=lock)


def finish(root: Path, durable: bool = True) -> list[str]:
    """Complete every swap under ``root`` whose manifest was written, and throw away the staging
    folders of those that never reached it; what was done, a line each (nothing: none)."""
    done: list[str] = []
    if not root.is_dir():
        return done
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        lock = _lock(folder)
        if lock is None:
            continue  # being staged or put in place by another process right now
        try:
            if (folder / MANIFEST).is_file():
                moved = _apply(folder, durable)
                done.append(f"finished an interrupted swap of {folder.name} ({moved} files)")
            else:
                shutil.rmtree(folder)
                done.append(f"threw away an unfinished swap of {folder.name} (the old files stand)")
        finally:
            os.close(lock)
    for line in done:
        log.warning("%s", line)
    return done


def _apply(folder: Path, durable: bool) -> int:
    entries = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    moved = 0
    touched: set[Path] = set()
    for relative, target in entries["moves"]:
        staged, place = folder / relative, Path(target)
        if not staged.exists():
            continue  # put in place by an earlier, interrupted run
        place.parent.mkdir(parents=True, exist_ok=True)
        _move(staged, place, durable)
        touched.add(place.parent)
        moved += 1
    for target in map(Path, entries["removals"]):
        target.unlink(missing_ok=True)
        touched.add(target.parent)
    if durable:
        for parent in touched:
            if parent.is_dir():
                sync_dir(parent)
    (folder / MANIFEST).unlink()  # done: a kill from here leaves a staging folder to throw away
    shutil.rmtree(folder)
    return moved


def _lock(folder: Path) -> int | None:
    """An exclusive lock on a swap's folder (its descriptor), None when another process holds
    it. The lock goes with the process: a killed swap's folder is free at once."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _move(staged: Path, place: Path, durable: bool) -> None:
    try:
        staged.replace(place)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        # Another file system: copied beside the place, then renamed over it (one step a
        # reader can see); the staged file goes last, so a repeat copies it again.
        tmp = place.with_name(f".{place.name}.swap")
        shutil.copyfile(staged, tmp)
        if durable:
            _sync_file(tmp)
        tmp.replace(place)
        staged.unlink()


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
