"""The corruption matrix for the profiles' own files (issue 13, cases 5 and 6): each kind of
damage to a weekday master or to its ledger, then the rest of the session, `eod` and a
rebuild. Recording goes on, the damaged profile is left exactly as it was (never added to
again: it could count a day twice) with one warning naming it, eod closes every other profile
and names this one, and a rebuild makes it whole again, equal to an undamaged rebuild."""

import logging
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from opchain.profiles.master import HEADER, parse_ledger
from opchain.store import eod, profiles
from opchain.store.opdata import find_splits
from opchain.store.rebuild import rebuild

from .sessions import DAY, record, tree_bytes

SERIES = ("NIFTY", "this_week", "atm")
KINDS = ("zero", "torn", "garbage", "columns", "nul", "nonutf8", "header", "missing")
END = datetime.fromisoformat(f"{DAY}T10:30:00+05:30")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recorded")
    record(root, until=datetime.fromisoformat(f"{DAY}T10:15:00+05:30"), cadence_seconds=60)
    return root


@pytest.fixture(scope="module")
def whole(recorded: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The profiles of an undamaged run to 10:30, closed by eod and then rebuilt."""
    root = tmp_path_factory.mktemp("whole")
    shutil.copytree(recorded, root, dirs_exist_ok=True)
    record(root, until=END, cadence_seconds=60)
    rebuild(root / "data_adv", find_splits(root / "csv_data")[0])
    return tree_bytes(root / "data_adv", "*.csv*")


def damage(path: Path, kind: str) -> None:
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    extra = {
        "garbage": b"@@@ not a row @@@\n",
        "columns": b"10:14,1,2\n" if path.suffix == ".csv" else b"2026-11-19 x y\n",
        "nul": b"\x00" * 40 + b"\n",
        "nonutf8": b"\xff\xfe caf\xe9\n",
        "header": (HEADER + "\n").encode() if path.suffix == ".csv" else lines[0],
    }
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "torn":
        path.write_bytes(data[:-4])
    elif kind == "missing":
        path.unlink()
    else:
        path.write_bytes(data + extra[kind])


@pytest.mark.parametrize("which", ["master", "ledger"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_profile_costs_only_itself_until_a_rebuild(
    kind: str,
    which: str,
    recorded: Path,
    whole: dict[str, bytes],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "d"
    shutil.copytree(recorded, root)
    adv = root / "data_adv"
    master = profiles.weekday_path(adv, *SERIES, DAY)
    path = master if which == "master" else profiles.ledger_path(master)
    damage(path, kind)
    left = {p: p.read_bytes() for p in (master, profiles.ledger_path(master)) if p.exists()}
    caplog.set_level(logging.WARNING)

    report = record(root, until=END, cadence_seconds=60)

    assert report.cycles == 15
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].startswith(str(master)), said
    assert {p: p.read_bytes() for p in left} == left  # not touched
    done = eod.reconcile(root / "csv_data", adv, DAY)
    assert [str(p.path).removesuffix(".ledger") for p in done.blocked] == [str(master)]
    other = profiles.weekday_path(adv, "NIFTY", "this_week", "atm_p1", DAY)
    assert parse_ledger(profiles.ledger_path(other).read_text()) == {DAY: "closed"}
    assert {p: p.read_bytes() for p in left} == left

    rebuilt = rebuild(adv, find_splits(root / "csv_data")[0])
    assert rebuilt.problems == []
    assert tree_bytes(adv, "*.csv*") == whole


@pytest.mark.parametrize("junk", [b"\xff\xfe\n", b"\x00" * 30, b"# sha256 0000\n2026-11-20\n"])
def test_a_junk_pending_ledger_is_dropped(junk: bytes, recorded: Path, tmp_path: Path) -> None:
    """A ``.ledger.tmp`` that is no save of this profile is what a crash left: dropped."""
    root = tmp_path / "d"
    shutil.copytree(recorded, root)
    master = profiles.weekday_path(root / "data_adv", *SERIES, DAY)
    pending = profiles.ledger_path(master).with_suffix(".ledger.tmp")
    pending.write_bytes(junk)
    before = profiles.load(master)
    assert not pending.exists()
    assert before[1] == {DAY: "10:13"}
