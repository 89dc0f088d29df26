"""Profiles over damaged and missing files, as a user meets them through the commands (issue
13, cases 5, 6 and 18): a day never counts twice, a bad line costs that line and is named on
its own line, a profile that is not one save is left as it is and named, and no command ends
in a traceback."""

import logging
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from opchain.profiles.master import parse_ledger, parse_profile
from opchain.store import profiles

from .sessions import DAY, record, tree_bytes

OPCHAIN = [sys.executable, "-m", "opchain"]
SERIES = ("NIFTY", "this_week", "atm")


def opchain(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    # The timeout only ends a hang (on main, eod waited forever on a FIFO); it measures nothing.
    command = [*OPCHAIN, *args]
    return subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session recorded to 10:15 with its live profiles (the day not closed yet)."""
    root = tmp_path_factory.mktemp("recorded")
    record(root, until=datetime.fromisoformat(f"{DAY}T10:15:00+05:30"), cadence_seconds=60)
    return root


def copy(recorded: Path, target: Path) -> Path:
    shutil.copytree(recorded, target)
    return target


def eod(root: Path) -> subprocess.CompletedProcess[str]:
    return opchain("eod", "-d", str(root), "--date", DAY.isoformat())


def master(root: Path) -> Path:
    return profiles.weekday_path(root / "data_adv", *SERIES, DAY)


def test_eod_after_a_lost_ledger_does_not_count_the_day_again(
    recorded: Path, tmp_path: Path
) -> None:
    """On main the day was added a second time (``n_tot`` 2 for one day), without a word."""
    root = copy(recorded, tmp_path / "d")
    path = master(root)
    profiles.ledger_path(path).unlink()
    before = path.read_bytes()
    done = eod(root)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert f"  {path}: no ledger fri.csv.ledger, so which days it holds is unknown" in "\n".join(
        lines
    )
    assert lines[-1].startswith("error: 1 profiles not updated (named above)")
    assert "Traceback" not in done.stderr
    assert path.read_bytes() == before  # left as it was: every minute still counts one day
    assert {c.n for c in parse_profile(before.decode()).values()} == {1}
    other = profiles.weekday_path(root / "data_adv", "NIFTY", "this_week", "atm_p1", DAY)
    assert parse_ledger(profiles.ledger_path(other).read_text()) == {DAY: "closed"}


@pytest.mark.parametrize("damage", [b"\xff\xfe caf\xe9\n", b"09:15,junk\n"])
def test_eod_on_a_damaged_profile_is_one_line_not_a_traceback(
    damage: bytes, recorded: Path, tmp_path: Path
) -> None:
    """On main: a traceback (UnicodeDecodeError, or a ValueError)."""
    root = copy(recorded, tmp_path / "d")
    path = master(root)
    with path.open("ab") as f:
        f.write(damage)
    before = path.read_bytes()
    done = eod(root)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"  {path}: the profile does not match its ledger fri.csv.ledger" in done.stderr
    assert path.read_bytes() == before


def test_eod_on_a_damaged_ledger_names_its_line(recorded: Path, tmp_path: Path) -> None:
    root = copy(recorded, tmp_path / "d")
    ledger = profiles.ledger_path(master(root))
    with ledger.open("a") as f:
        f.write("garbage\n")
    done = eod(root)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"  {ledger}:3: not a date: 'garbage'" in done.stderr


BAD_LINES = {
    "garbage": b"@@@ not a row @@@\n",
    "nul": b"\x00" * 40 + b"\n",
    "nonutf8": b"\xff\xfe caf\xe9\n",
    "columns": b"2026-11-20T09:40:00+05:30,NIFTY,this_week\n",
}
REASONS = {
    "garbage": "1 cells where the header has",
    "nul": "a NUL byte",
    "nonutf8": "not UTF-8 text",
    "columns": "3 cells where the header has",
}


def test_eod_over_bad_split_lines_names_each_and_closes_the_day(
    recorded: Path, tmp_path: Path
) -> None:
    """Each kind of bad line in a split file: eod closes the day as if the line were not
    there, and says one line per bad line, ``<path>:<line>: <reason>``."""
    clean = copy(recorded, tmp_path / "clean")
    assert eod(clean).returncode == 0
    root = copy(recorded, tmp_path / "d")
    split = root / "csv_data" / Path(*SERIES) / f"{DAY}.csv"
    lines = split.read_bytes().splitlines(keepends=True)
    damaged = lines[:10] + list(BAD_LINES.values()) + lines[10:]
    split.write_bytes(b"".join(damaged))
    done = eod(root)
    assert done.returncode == 0, done.stderr
    for number, kind in enumerate(BAD_LINES, start=11):
        said = [line for line in done.stderr.splitlines() if f"{split}:{number}: " in line]
        assert len(said) == 1 and REASONS[kind] in said[0], (kind, done.stderr)
    assert "Traceback" not in done.stderr
    assert tree_bytes(root / "data_adv", "*.csv*") == tree_bytes(clean / "data_adv", "*.csv*")


def test_recording_goes_on_past_a_damaged_profile(
    recorded: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On main the live update raised at the next minute and the session stopped. Now the
    profile is left as it is, one warning names it, and every file of the day goes on."""
    root = copy(recorded, tmp_path / "d")
    path = master(root)
    with path.open("ab") as f:
        f.write(b"\xff\xfe\n")
    before = path.read_bytes()
    caplog.set_level(logging.WARNING)
    report = record(root, until=datetime.fromisoformat(f"{DAY}T10:30:00+05:30"), cadence_seconds=60)
    assert report.cycles == 15
    assert path.read_bytes() == before
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [
        f"{path}: the profile does not match its ledger fri.csv.ledger; run `opchain "
        "rebuild-masters` to rebuild it from the split files"
    ]
    other = profiles.weekday_path(root / "data_adv", "NIFTY", "this_week", "atm_p1", DAY)
    assert parse_ledger(profiles.ledger_path(other).read_text()) == {DAY: "10:28"}


def test_rebuild_names_each_bad_line_as_eod_does(recorded: Path, tmp_path: Path) -> None:
    """A NUL, a repeated header and a row with extra cells were read silently or named
    wrongly on main ("1 cells where...", "bad timestamp 'ts'"); eod and rebuild-masters read
    through one reader now and say the same."""
    root = copy(recorded, tmp_path / "d")
    split = root / "csv_data" / Path(*SERIES) / f"{DAY}.csv"
    lines = split.read_bytes().splitlines(keepends=True)
    extra = lines[5].rstrip(b"\n") + b",1,2\n"
    split.write_bytes(b"".join([*lines[:10], *BAD_LINES.values(), lines[0], extra, *lines[10:]]))
    reasons = [*REASONS.values(), "the header again", "23 cells where the header has 21"]
    for command in (["rebuild-masters"], ["eod", "--date", DAY.isoformat()]):
        done = opchain(*command, "-d", str(root))
        assert done.returncode == 0, done.stderr
        for number, reason in enumerate(reasons, start=11):
            said = [line for line in done.stderr.splitlines() if f"{split}:{number}: " in line]
            assert len(said) == 1 and reason in said[0], (command, number, done.stderr)


def test_eod_passes_over_a_fifo_by_a_split_files_name(recorded: Path, tmp_path: Path) -> None:
    root = copy(recorded, tmp_path / "d")
    fifo = root / "csv_data/NIFTY/this_week/atm_m9" / f"{DAY}.csv"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    done = eod(root)
    assert done.returncode == 0, done.stderr
    assert f"  {fifo}: not a regular file; not read" in done.stderr
    assert not list((root / "data_adv").rglob("atm_m9"))  # no day closed for it


def test_recording_goes_on_when_a_profile_cannot_be_written(
    recorded: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A profile's folder taken by a file: on main the refused write stopped the session at
    the next minute. Now it is said once, the other profiles are saved, recording goes on,
    and the profile is saved once it can be."""
    root = copy(recorded, tmp_path / "d")
    folder = root / "data_adv/dte_profiles/SENSEX/next_week/atm"
    shutil.rmtree(folder)
    folder.write_bytes(b"in the way\n")
    caplog.set_level(logging.WARNING)
    report = record(root, until=datetime.fromisoformat(f"{DAY}T10:30:00+05:30"), cadence_seconds=60)
    assert report.cycles == 15
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].startswith(f"{folder}/dte"), said
    assert "not saved (" in said[0]
    other = profiles.weekday_path(root / "data_adv", "NIFTY", "this_week", "atm", DAY)
    assert parse_ledger(profiles.ledger_path(other).read_text()) == {DAY: "10:28"}
    folder.unlink()
    report = record(root, until=datetime.fromisoformat(f"{DAY}T10:45:00+05:30"), cadence_seconds=60)
    assert report.cycles == 15
    assert any(folder.glob("dte*.csv"))


def test_eod_refuses_a_day_whose_session_is_not_over(recorded: Path, tmp_path: Path) -> None:
    """On main eod closed it: every minute after, recorded, was never added to a profile."""
    root = copy(recorded, tmp_path / "d")
    later = "2099-01-02"  # a Friday whose session has not even begun
    for split in (root / "csv_data").glob(f"*/*/*/{DAY}.csv"):
        split.with_name(f"{later}.csv").write_text(
            split.read_text().replace(f"{DAY}T", f"{later}T")
        )
    before = tree_bytes(root / "data_adv", "*.csv*")
    done = opchain("eod", "-d", str(root), "--date", later)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: the session of {later} is not over yet (it closes at 15:30 IST): run eod "
        "after it; meanwhile the recorder adds each minute as it ends"
    ]
    assert tree_bytes(root / "data_adv", "*.csv*") == before


def test_a_rebuild_during_a_session_leaves_the_day_open(recorded: Path, tmp_path: Path) -> None:
    """A rebuild mid-session adds the finished minutes of the day and does not close it (on
    main it closed the day, so the rest of the session never reached the profiles); the
    recorder then goes on, and the close equals a rebuild of the whole day."""
    from opchain.store import eod as eod_store
    from opchain.store.opdata import find_splits
    from opchain.store.rebuild import rebuild

    root = copy(recorded, tmp_path / "d")
    adv = root / "data_adv"
    splits = find_splits(root / "csv_data")[0]
    rebuild(adv, splits, now=datetime.fromisoformat(f"{DAY}T10:05:20+05:30"))
    assert parse_ledger(profiles.ledger_path(master(root)).read_text()) == {DAY: "10:04"}
    record(root, until=datetime.fromisoformat(f"{DAY}T10:30:00+05:30"), cadence_seconds=60)
    eod_store.reconcile(root / "csv_data", adv, DAY)
    closed = tree_bytes(adv, "*.csv*")
    rebuild(adv, find_splits(root / "csv_data")[0])
    assert tree_bytes(adv, "*.csv*") == closed
    assert parse_ledger(profiles.ledger_path(master(root)).read_text()) == {DAY: "closed"}


def test_a_rebuild_beside_the_recorder_is_not_undone(recorded: Path, tmp_path: Path) -> None:
    """A rebuild while the recorder runs (here: leaving out a bad earlier Friday). On main the
    recorder's next save wrote back its own copy, the bad day in it, silently. Now it finds
    the profile changed, reads it again and goes on from its ledger: the day's close equals a
    rebuild of what is left."""
    from opchain.store.masters import MasterStream
    from opchain.store.opdata import find_splits
    from opchain.store.rebuild import rebuild

    root = copy(recorded, tmp_path / "d")
    csv, adv = root / "csv_data", root / "data_adv"
    earlier = DAY - timedelta(days=7)
    for split in csv.glob(f"*/*/*/{DAY}.csv"):
        text = split.read_text().replace(f"{DAY}T", f"{earlier}T")
        split.with_name(f"{earlier}.csv").write_text(text)
    at = lambda hhmmss: datetime.fromisoformat(f"{DAY}T{hhmmss}+05:30")  # noqa: E731
    rebuild(adv, find_splits(csv)[0], now=at("10:05:20"))
    series = sorted({(p.parts[-4], p.parts[-3], p.parts[-2]) for p in csv.glob("*/*/*/*.csv")})
    stream = MasterStream(csv, adv, DAY, save_every=0.0, save_share=1)
    stream.update(series, now=at("10:10:00"))
    for split in csv.glob(f"*/*/*/{earlier}.csv"):
        split.unlink()  # a bad day, taken out by a rebuild while the recorder runs
    rebuild(adv, find_splits(csv)[0], now=at("10:10:20"))
    stream.update(series, now=at("10:15:00"))
    stream.update(series, final=True)
    closed = tree_bytes(adv, "*.csv*")
    rebuild(adv, find_splits(csv)[0])
    assert tree_bytes(adv, "*.csv*") == closed
    assert set(parse_ledger(profiles.ledger_path(master(root)).read_text())) == {DAY}


_COMPARE = """
import sys
from datetime import date
from pathlib import Path
from opchain.store.query import compare
root, skipped = Path(sys.argv[1]), []
found = compare(root / "csv_data", root / "data_adv", "NIFTY", "this_week", "atm",
                date.fromisoformat(sys.argv[2]), skipped)
print(len(found.minutes), skipped)
"""


def test_today_against_a_profile_whose_ledger_is_a_fifo(recorded: Path, tmp_path: Path) -> None:
    """On main the comparison (the API's /profiles) waited forever on the FIFO."""
    root = copy(recorded, tmp_path / "d")
    ledger = profiles.ledger_path(master(root))
    ledger.unlink()
    os.mkfifo(ledger)
    command = [sys.executable, "-c", _COMPARE, str(root), DAY.isoformat()]
    # The timeout only ends a hang (main's); it measures nothing.
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("375 [")
    assert "fri.csv.ledger: not a regular file" in done.stdout
