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

During a session a profile holds today's finished minutes, but today must be compared with the
days before it. Means could be un-added, lows and highs cannot; so when a save first adds a day
newer than every day the profile held, the profile as it was is kept, with its ledger, at
:func:`earlier_path` (``<adv>/earlier_days/<INDEX>/<bucket>/<offset>/<name>``, outside the
masters' folders so nothing takes it for a master). ``store.query`` reads it back.
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from opchain.profiles.master import (
    Ledger,
    Profile,
    format_ledger,
    format_profile,
    parse_ledger,
    parse_profile,
)
from opchain.store.appendlog import write_atomic
from opchain.store.opmasters import WEEKDAYS

_HASH = "# sha256 "


def weekday_path(adv_root: Path, index: str, bucket: str, offset: str, day: date) -> Path:
    return adv_root / "weekday_masters" / index / bucket / offset / f"{WEEKDAYS[day.weekday()]}.csv"


def dte_path(adv_root: Path, index: str, bucket: str, offset: str, dte: int) -> Path:
    return adv_root / "dte_profiles" / index / bucket / offset / f"dte{dte:02d}.csv"


def ledger_path(path: Path) -> Path:
    return path.with_name(path.name + ".ledger")


def earlier_path(path: Path) -> Path | None:
    """Where the profile at ``path`` is kept as it was before its newest day (module
    docstring); None for a path outside ``<adv>/{weekday_masters,dte_profiles}/I/B/O/``."""
    if len(path.parents) < 5 or path.parents[3].name not in ("weekday_masters", "dte_profiles"):
        return None
    return path.parents[4] / "earlier_days" / path.relative_to(path.parents[3])


def load(path: Path) -> tuple[Profile, Ledger]:
    """A profile and its ledger as the last whole save left them (empty when none)."""
    ledger_file, pending = ledger_path(path), ledger_path(path).with_suffix(".ledger.tmp")
    data = path.read_bytes() if path.exists() else b""
    if pending.exists():
        if data and _hash_line(pending.read_text(encoding="utf-8")) == _digest(data):
            pending.replace(ledger_file)  # the profile was replaced; finish the save
        else:
            pending.unlink()  # the save never reached the profile
    if not data:
        return {}, {}
    profile = parse_profile(data.decode("utf-8"), str(path))
    text = ledger_file.read_text(encoding="utf-8") if ledger_file.exists() else ""
    recorded = _hash_line(text)
    if recorded is not None and recorded != _digest(data):
        raise ValueError(
            f"{path}: the profile does not match its ledger {ledger_file.name}; "
            "run `opchain rebuild-masters` to rebuild it from the split files"
        )
    return profile, parse_ledger(text, str(ledger_file))


def peek(path: Path) -> tuple[Profile, Ledger] | None:
    """A profile and its ledger as the last whole save left them (as :func:`load` finds
    them) but changing nothing on disk: for a reader beside a running writer. None when there
    is no profile, or when it was caught between the steps of a save."""
    ledger_file, pending = ledger_path(path), ledger_path(path).with_suffix(".ledger.tmp")
    try:
        data = path.read_bytes()
        text = pending.read_text(encoding="utf-8") if pending.exists() else ""
        if _hash_line(text) != _digest(data):  # no save under way for this profile
            text = ledger_file.read_text(encoding="utf-8") if ledger_file.exists() else ""
            if _hash_line(text) not in (None, _digest(data)):
                return None
    except FileNotFoundError:  # removed while being read, by a save's rename
        return None
    return parse_profile(data.decode("utf-8"), str(path)), parse_ledger(text, str(ledger_file))


def save(path: Path, profile: Profile, ledger: Ledger, durable: bool = True) -> None:
    """Replace a profile and its ledger together (module docstring)."""
    data = format_profile(profile).encode("utf-8")
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


@dataclass
class ProfileBook:
    """The profiles a job touches, loaded on first use, saved when changed."""

    durable: bool = True
    loaded: dict[Path, tuple[Profile, Ledger]] = field(default_factory=dict)
    changed: set[Path] = field(default_factory=set)
    fresh: bool = False  # start every profile empty instead of loading it (a rebuild)
    # What each loaded profile held on disk, until its first save (module docstring)
    on_disk: dict[Path, tuple[Profile, Ledger]] = field(default_factory=dict)

    def __getitem__(self, path: Path) -> tuple[Profile, Ledger]:
        entry = self.loaded.get(path)
        if entry is None:
            entry = self.loaded[path] = ({}, {}) if self.fresh else load(path)
            if entry[1]:
                self.on_disk[path] = (dict(entry[0]), dict(entry[1]))
        return entry

    def touch(self, path: Path) -> None:
        self.changed.add(path)

    def save(self) -> int:
        """Write every changed profile; returns how many."""
        for path in sorted(self.changed):
            profile, ledger = self.loaded[path]
            before = self.on_disk.pop(path, None)
            earlier = earlier_path(path)
            if before and earlier and _one_newer_day(before[1], ledger):
                save(earlier, *before, durable=self.durable)
            save(path, profile, ledger, durable=self.durable)
        count = len(self.changed)
        self.changed.clear()
        return count

    def __iter__(self) -> Iterator[Path]:
        return iter(self.loaded)


def _one_newer_day(before: Ledger, after: Ledger) -> bool:
    """``after`` adds one day to ``before``, later than all of ``before``'s."""
    new = after.keys() - before.keys()
    return len(new) == 1 and min(new) > max(before)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_line(text: str) -> str | None:
    first = text.split("\n", 1)[0]
    return first.removeprefix(_HASH).strip() if first.startswith(_HASH) else None
