"""``opchain import`` reads what it can and only what is a file (issue 13, case 19): opchain's
own ledgers are no problem, a FIFO or a link to a device by a data file's name is named and
passed over (on main: a hang, or memory filling up), and a line is read only up to a bound."""

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from opchain.store.csvrows import MAX_LINE, read_rows
from opchain.store.opdata import OpSplit, read_premiums

from .sessions import DAY, record

OPCHAIN = [sys.executable, "-m", "opchain"]
FOLDER = Path("csv_data/NIFTY/this_week/atm")


def opchain(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    # The timeout only ends a hang (main waited forever on the FIFO); it measures nothing.
    return subprocess.run(
        [*OPCHAIN, *args], capture_output=True, text=True, check=False, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory of opchain's own, mid-session: ledgers with their hash line and days
    added up to a minute."""
    root = tmp_path_factory.mktemp("own")
    record(root, until=datetime.fromisoformat(f"{DAY}T09:40:00+05:30"), cadence_seconds=60)
    return root


def test_importing_opchains_own_directory_finds_no_problem(own: Path, tmp_path: Path) -> None:
    """On main: 140 "not a date" problems, two per ledger (its hash line, its "day HH:MM")."""
    done = opchain("import", str(own), "-d", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert "\n0 problems\n" in done.stdout
    assert "could not be read" not in done.stderr
    assert "70 weekday masters: 70 adv" in done.stdout


def test_a_fifo_and_a_link_to_a_device_are_passed_over(own: Path, tmp_path: Path) -> None:
    root = tmp_path / "op"
    shutil.copytree(own, root)
    os.mkfifo(root / FOLDER / "2026-11-18.csv")
    (root / FOLDER / "2026-11-17.csv").symlink_to("/dev/zero")
    masters = root / "data_adv/weekday_masters/NIFTY/this_week/atm"
    os.mkfifo(masters / "wed.csv")
    (masters / "tue.csv").symlink_to("/dev/zero")
    done = opchain("import", str(root), "-d", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    for name in ("2026-11-17.csv", "2026-11-18.csv"):
        assert f"{root / FOLDER / name}: not a regular file; not read" in done.stderr
    for name in ("tue.csv", "wed.csv"):
        assert f"{masters / name}: not a regular file; not read" in done.stderr
    # no day was closed for the files not read
    assert not (tmp_path / "data/data_adv/weekday_masters/NIFTY/this_week/atm/tue.csv").exists()


def test_a_line_longer_than_the_bound_is_skipped_unread(tmp_path: Path) -> None:
    path = tmp_path / "NIFTY" / "this_week" / "atm" / f"{DAY}.csv"
    path.parent.mkdir(parents=True)
    header = b"ts,total_premium\n"
    row = f"{DAY}T09:15:00+05:30,200.5\n".encode()
    later = f"{DAY}T09:16:00+05:30,201\n".encode()
    path.write_bytes(header + row + b"7" * (3 * MAX_LINE) + b"\n" + later)
    _, rows, problems = read_rows(path)
    assert [number for number, _ in rows] == [2, 4]
    assert [(p.line, p.reason) for p in problems] == [(3, f"a line longer than {MAX_LINE} bytes")]
    premiums, _ = read_premiums(OpSplit(path, "NIFTY", "this_week", "atm", DAY))
    assert [p.paise for p in premiums] == [20050, 20100]


def test_an_import_leaves_a_profile_without_its_ledger_and_says_so(
    own: Path, tmp_path: Path
) -> None:
    """Importing into a data directory whose profile lost its ledger: on main the day was
    added to it again, silently."""
    data = tmp_path / "data"
    shutil.copytree(own, data)
    master = data / "data_adv/weekday_masters/NIFTY/this_week/atm/fri.csv"
    master.with_name("fri.csv.ledger").unlink()
    before = master.read_bytes()
    done = opchain("import", str(own), "-d", str(data))
    assert done.returncode == 2
    assert f"  {master}: no ledger fri.csv.ledger" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 profiles not updated")
    assert master.read_bytes() == before
