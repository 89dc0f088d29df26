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

    def __getitem__(self, path: Path) -> tuple[Profile, Ledger]:
        entry = self.loaded.get(path)
        if entry is None:
            entry = self.loaded[path] = ({}, {}) if self.fresh else load(path)
        return entry

    def touch(self, path: Path) -> None:
        self.changed.add(path)

    def save(self) -> int:
        """Write every changed profile; returns how many."""
        for path in sorted(self.changed):
            save(path, *self.loaded[path], durable=self.durable)
        count = len(self.changed)
        self.changed.clear()
        return count

    def __iter__(self) -> Iterator[Path]:
        return iter(self.loaded)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_line(text: str) -> str | None:
    first = text.split("\n", 1)[0]
    return first.removeprefix(_HASH).strip() if first.startswith(_HASH) else None
