"""Weekday masters and DTE profiles on disk, each with its ledger, written crash-safe.

``<adv>/weekday_masters/<INDEX>/<bucket>/<offset>/<mon..fri>.csv`` (OP's layout and columns)
and ``<adv>/dte_profiles/<INDEX>/<bucket>/<offset>/dte<NN>.csv`` (NN = calendar days to
expiry), each beside ``<file>.ledger``.

A profile and its ledger are two files that must change together. Each save writes the new
ledger to ``<file>.ledger.tmp`` first, with the SHA-256 of the profile it belongs to, then
replaces the profile, then renames the ledger into place. Loading finds out where a crash
struck: a leftover ``.ledger.tmp`` whose hash matches the profile on disk means the profile was
replaced and its ledger was not yet; it is renamed now. Any other leftover is from a save that
never replaced the profile and is dropped. So the pair on disk is always one save or the other.

A pair that is not one save is refused, never guessed at: a profile without its ledger (which
days it holds is unknown, so adding one could count it twice), a ledger listing days whose
profile is gone, a profile that no longer matches its ledger's hash, or a file that does not
parse. :class:`ProfileBook` then leaves that profile as it is, says so once (``<path>:
<reason>``), and goes on with the others; ``opchain rebuild-masters`` rebuilds it.

During a session a profile holds today's finished minutes, but today must be compared with the
days before it. Means could be un-added, lows and highs cannot; so when a save first adds a day
newer than every day the profile held, the profile as it was is kept, with its ledger, at
:func:`earlier_path` (``<adv>/earlier_days/<INDEX>/<bucket>/<offset>/<name>``, outside the
masters' folders so nothing takes it for a master). ``store.query`` reads it back.
"""

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

from opchain.profiles.master import (
    Formatted,
    Ledger,
    Profile,
    format_ledger,
    format_profile,
    parse_ledger,
    parse_profile,
)
from opchain.store.appendlog import write_atomic
from opchain.store.csvrows import Problem, describe, report
from opchain.store.opmasters import WEEKDAYS
from opchain.store.regular import open_regular

_HASH = "# sha256 "
_MAX_BYTES = 16 << 20  # far more than a profile (375 rows) or a ledger of decades holds


def weekday_path(adv_root: Path, index: str, bucket: str, offset: str, day: date) -> Path:
    return adv_root / "weekday_masters" / index / bucket / offset / f"{WEEKDAYS[day.weekday()]}.csv"


def dte_path(adv_root: Path, index: str, bucket: str, offset: str, dte: int) -> Path:
    return adv_root / "dte_profiles" / index / bucket / offset / f"dte{dte:02d}.csv"


def op_master_path(path: Path) -> Path | None:
    """Where an import keeps the part of the weekday master at ``path`` that only OP's old
    masters held (their days have no split files): ``<adv>/op_masters/<INDEX>/<bucket>/
    <offset>/<mon..fri>.csv`` with its ledger, so a rebuild can pool it in again. None for a
    path that is not a weekday master's."""
    if len(path.parents) < 5 or path.parents[3].name != "weekday_masters":
        return None
    return path.parents[4] / "op_masters" / path.relative_to(path.parents[3])


def stored_profiles(adv_root: Path) -> list[Path]:
    """Every weekday master and DTE profile under ``adv_root``."""
    found = [
        *adv_root.glob("weekday_masters/*/*/*/*.csv"),
        *adv_root.glob("dte_profiles/*/*/*/*.csv"),
    ]
    return sorted(found)


def ledger_path(path: Path) -> Path:
    return path.with_name(path.name + ".ledger")


def earlier_path(path: Path) -> Path | None:
    """Where the profile at ``path`` is kept as it was before its newest day (module
    docstring); None for a path outside ``<adv>/{weekday_masters,dte_profiles}/I/B/O/``."""
    if len(path.parents) < 5 or path.parents[3].name not in ("weekday_masters", "dte_profiles"):
        return None
    return path.parents[4] / "earlier_days" / path.relative_to(path.parents[3])


class Damaged(ValueError):
    """A profile and its ledger that are not one save (module docstring): ``problem`` says
    which file (and line) and why; the message is ``<path>[:<line>]: <reason>``."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        self.problem = Problem(path, line, f"{reason}; {_REBUILD}")
        super().__init__(describe(self.problem))


_REBUILD = "run `opchain rebuild-masters` to rebuild it from the split files"


def load(path: Path) -> tuple[Profile, Ledger]:
    """A profile and its ledger as the last whole save left them (empty when none); raises
    :class:`Damaged` for a pair that is not one save."""
    ledger_file, pending = ledger_path(path), ledger_path(path).with_suffix(".ledger.tmp")
    data = _read(path)
    if pending.exists():
        if data and _pending_hash(pending) == _digest(data):
            pending.replace(ledger_file)  # the profile was replaced; finish the save
        else:
            pending.unlink()  # the save never reached the profile (or is not one)
    text = _text(ledger_file)
    ledger = _parsed(parse_ledger, text, ledger_file)
    if not data:
        if ledger:
            raise Damaged(ledger_file, f"lists {len(ledger)} days but the profile {path.name} "
                          "is missing or empty")  # fmt: skip
        return {}, {}
    if not text:
        raise Damaged(path, f"no ledger {ledger_file.name}, so which days it holds is unknown "
                      "(adding one could count it twice)")  # fmt: skip
    recorded = _hash_line(text)
    if recorded is not None and recorded != _digest(data):
        raise Damaged(path, f"the profile does not match its ledger {ledger_file.name}")
    return _parsed(parse_profile, data, path), ledger


def _pending_hash(pending: Path) -> str | None:
    return _hash_line(_pending_text(pending))


def _pending_text(pending: Path) -> str:
    """A save's pending ledger ("" when there is none, or it is junk a crash left)."""
    try:
        return _text(pending)
    except Damaged:
        return ""


def _read(path: Path) -> bytes:
    """A profile's or a ledger's bytes (b"" when missing), from a regular file only."""
    try:
        with open_regular(path) as f:
            return f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        if path.is_symlink() or path.exists():
            raise Damaged(path, "not a regular file; not read") from None
        return b""


def _text(path: Path) -> str:
    data = _read(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Damaged(path, "not UTF-8 text", data.count(b"\n", 0, err.start) + 1) from None


T = TypeVar("T")


def _parsed(parse: Callable[[str, str], T], data: bytes | str, path: Path) -> T:
    try:
        if len(data) > _MAX_BYTES:
            raise ValueError(f"{path}: larger than {_MAX_BYTES} bytes, not a profile")
        return parse(data if isinstance(data, str) else data.decode("utf-8"), str(path))
    except ValueError as err:  # UnicodeDecodeError is one
        reason = str(err).removeprefix(f"{path}: ")
        number, _, rest = reason.removeprefix("line ").partition(": ")
        if reason.startswith("line ") and number.isdigit():
            raise Damaged(path, rest, int(number)) from None
        raise Damaged(path, reason) from None


def peek(path: Path) -> tuple[Profile, Ledger] | None:
    """A profile and its ledger as the last whole save left them (as :func:`load` finds
    them) but changing nothing on disk: for a reader beside a running writer. None when there
    is no profile, or when it was caught between the steps of a save. Only regular files are
    read (a FIFO would block); a pair that is not one save raises :class:`Damaged`."""
    ledger_file, pending = ledger_path(path), ledger_path(path).with_suffix(".ledger.tmp")
    data = _read(path)
    if not data:  # none, or removed while being read, by a save's rename
        return None
    text = _pending_text(pending)
    if _hash_line(text) != _digest(data):  # no save under way for this profile
        text = _text(ledger_file)
        if _hash_line(text) not in (None, _digest(data)):
            return None
    return _parsed(parse_profile, data, path), _parsed(parse_ledger, text, ledger_file)


def save(
    path: Path,
    profile: Profile,
    ledger: Ledger,
    durable: bool = True,
    formatted: Formatted | None = None,
) -> str:
    """Replace a profile and its ledger together (module docstring); ``formatted`` keeps
    the profile's lines between saves (:func:`~opchain.profiles.master.format_profile`).
    Returns the SHA-256 of the profile written."""
    data = format_profile(profile, formatted).encode("utf-8")
    pending = ledger_path(path).with_suffix(".ledger.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"{_HASH}{_digest(data)}\n{format_ledger(ledger)}"
    with pending.open("w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    write_atomic(path, data, durable)
    pending.replace(ledger_path(path))
    return _digest(data)


def disk_digest(path: Path) -> str | None:
    """The SHA-256 of the profile at ``path`` as it is on disk (None: none there)."""
    try:
        data = _read(path)
    except Damaged:
        return "not a regular file"
    return _digest(data) if data else None


@dataclass
class ProfileBook:
    """The profiles a job touches, loaded on first use, saved when changed."""

    durable: bool = True
    loaded: dict[Path, tuple[Profile, Ledger]] = field(default_factory=dict)
    changed: set[Path] = field(default_factory=set)
    fresh: bool = False  # start every profile empty instead of loading it (a rebuild)
    # What each loaded profile held on disk, until its first save (module docstring)
    on_disk: dict[Path, tuple[Profile, Ledger]] = field(default_factory=dict)

    # Profiles on disk that are not one save (module docstring): left as they are, with why
    blocked: dict[Path, Problem] = field(default_factory=dict)
    warn: bool = True  # log each blocked profile (once); else the caller reports ``blocked``
    formatted: dict[Path, Formatted] = field(default_factory=dict)  # lines kept between saves
    # What each profile held on disk when it was loaded or last saved here: a profile found
    # changed since (another process saved it: a rebuild, an eod) is not overwritten but put
    # in ``stale``, for its owner to read again (``store.masters``)
    digests: dict[Path, str | None] = field(default_factory=dict)
    stale: set[Path] = field(default_factory=set)

    def __getitem__(self, path: Path) -> tuple[Profile, Ledger]:
        entry = self.loaded.get(path)
        if entry is None:
            try:
                entry = ({}, {}) if self.fresh else load(path)
            except (Damaged, OSError) as err:
                problem = err.problem if isinstance(err, Damaged) else _unreadable(path, err)
                self.blocked[path] = problem
                if self.warn:
                    report([problem])
                entry = ({}, {})  # added to, never saved
            self.loaded[path] = entry
            if entry[1]:
                self.on_disk[path] = (dict(entry[0]), dict(entry[1]))
            if not self.fresh and path not in self.blocked:
                self.digests[path] = disk_digest(path)
        return entry

    def forget(self, path: Path) -> None:
        """Drop what is held of ``path`` (loaded again from disk on next use)."""
        for held in (self.loaded, self.on_disk, self.formatted, self.digests):
            held.pop(path, None)
        self.changed.discard(path)

    def touch(self, path: Path) -> None:
        if path not in self.blocked:
            self.changed.add(path)

    def save(
        self, only: Callable[[Path], bool] | None = None, failed: list[Problem] | None = None
    ) -> int:
        """Write every changed profile (``only`` those it accepts); returns how many. A write
        the system refuses raises, or with ``failed`` is added to it and the others go on (the
        profile stays changed, to be saved the next time)."""
        chosen = sorted(p for p in self.changed if only is None or only(p))
        for path in chosen:
            profile, ledger = self.loaded[path]
            before = self.on_disk.get(path)
            earlier = earlier_path(path)
            try:
                if path in self.digests and disk_digest(path) != self.digests[path]:
                    self.stale.add(path)
                    continue
                if before and earlier and _one_newer_day(before[1], ledger):
                    save(earlier, *before, durable=self.durable)
                formatted = self.formatted.setdefault(path, {})
                saved = save(path, profile, ledger, durable=self.durable, formatted=formatted)
                if path in self.digests:
                    self.digests[path] = saved
            except OSError as err:
                if failed is None:
                    raise
                failed.append(Problem(path, None, f"not saved ({err.strerror or err}); kept "
                                      "in memory and tried again"))  # fmt: skip
                continue
            self.on_disk.pop(path, None)
            self.changed.discard(path)
        return len(chosen)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.loaded)


def _unreadable(path: Path, err: OSError) -> Problem:
    where = Path(err.filename) if err.filename else path
    return Problem(where, None, f"cannot be read ({err.strerror or err})")


def _one_newer_day(before: Ledger, after: Ledger) -> bool:
    """``after`` adds one day to ``before``, later than all of ``before``'s."""
    new = after.keys() - before.keys()
    return len(new) == 1 and min(new) > max(before)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_line(text: str) -> str | None:
    first = text.split("\n", 1)[0]
    return first.removeprefix(_HASH).strip() if first.startswith(_HASH) else None
