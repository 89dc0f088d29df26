"""``opchain rebuild-masters`` loses nothing it was not asked to (issue 13, cases 6 and 18): a
range of days rebuilds the profiles those days feed and leaves the others, the days an import
took from OP's old masters survive a rebuild, and a rebuild killed anywhere leaves every
profile in place."""

import os
import random
import shutil
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from opchain.profiles.master import CLOSED
from opchain.store import profiles
from opchain.store.profiles import load

from .oplayout import build_op_tree
from .sessions import DAY, record, tree_bytes

OPCHAIN = [sys.executable, "-m", "opchain"]
OTHER_DAYS = [DAY - timedelta(days=7), DAY - timedelta(days=1)]  # a Friday, a Thursday


def opchain(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COLUMNS": "250", **env}
    command = [*OPCHAIN, *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, env=environ)


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A morning recorded, its split files copied to two earlier days, and every profile
    rebuilt from the three."""
    root = tmp_path_factory.mktemp("three")
    record(root, until=datetime.fromisoformat(f"{DAY}T09:45:00+05:30"), cadence_seconds=60)
    for split in (root / "csv_data").glob(f"*/*/*/{DAY}.csv"):
        text = split.read_text()
        for day in OTHER_DAYS:
            split.with_name(f"{day}.csv").write_text(text.replace(f"{DAY}T", f"{day}T"))
    done = opchain("rebuild-masters", "-d", str(root))
    assert done.returncode == 0, done.stderr
    return root


def profiles_of(root: Path) -> dict[str, bytes]:
    return {
        name: data
        for name, data in tree_bytes(root / "data_adv", "*.csv*").items()
        if name.startswith(("weekday_masters", "dte_profiles"))
    }


def test_a_rebuild_of_one_day_leaves_every_other_profile(three_days: Path, tmp_path: Path) -> None:
    """On main, `--from D --to D` deleted the profiles of every other weekday and DTE."""
    root = tmp_path / "d"
    shutil.copytree(three_days, root)
    before = profiles_of(root)
    thursday = str(OTHER_DAYS[1])
    done = opchain("rebuild-masters", "-d", str(root), "--from", thursday, "--to", thursday)
    assert done.returncode == 0, done.stderr
    assert profiles_of(root) == before
    # A Thursday split file re-recorded shorter: its profiles change, no other does.
    split = root / "csv_data/NIFTY/this_week/atm" / f"{thursday}.csv"
    split.write_text("".join(split.read_text().splitlines(keepends=True)[:11]))
    done = opchain("rebuild-masters", "-d", str(root), "--from", thursday, "--to", thursday)
    assert done.returncode == 0, done.stderr
    after = profiles_of(root)
    assert after.keys() == before.keys()
    changed = {name for name in after if after[name] != before[name]}
    dte = profiles.dte_path(Path(), "NIFTY", "this_week", "atm", 3)  # all three days' DTE
    assert changed == {
        f"weekday_masters/NIFTY/this_week/atm/{name}" for name in ("thu.csv", "thu.csv.ledger")
    } | {f"dte_profiles/{dte.relative_to('dte_profiles')}{tail}" for tail in ("", ".ledger")}
    whole = tmp_path / "whole"
    shutil.copytree(root, whole)
    assert opchain("rebuild-masters", "-d", str(whole)).returncode == 0
    assert profiles_of(whole) == after  # the same as a rebuild of everything


def test_a_rebuild_keeps_the_days_only_ops_old_masters_held(tmp_path: Path) -> None:
    """On main, a rebuild after an import dropped them, silently."""
    days = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 23)]
    truth = build_op_tree(tmp_path / "op", days)
    data = tmp_path / "data"
    done = opchain("import", str(truth.root), "-d", str(data))
    assert done.returncode == 0, done.stderr
    assert "days from OP's masters whose split files are gone, added" in done.stdout
    adv = data / "data_adv"
    wednesday = profiles.weekday_path(adv, "NIFTY", "this_week", "atm", date(2025, 8, 6))
    imported = wednesday.read_bytes(), load(wednesday)
    assert imported[1][1] == {date(2025, 8, 6): CLOSED, date(2025, 8, 13): CLOSED}
    splits = str(truth.root / "data" / "csv_data")
    done = opchain("rebuild-masters", "-d", str(data), OPCHAIN_CSV_SPLIT_ROOT=splits)
    assert done.returncode == 0, done.stderr
    assert "3 days pooled in again from OP's old masters" in done.stdout
    assert load(wednesday) == imported[1]
    assert wednesday.read_bytes() == imported[0]


# Runs `opchain rebuild-masters` and SIGKILLs itself at its N-th rename or removal: the process
# dies at once, with no exception, no finally block and no flush, as under `kill -9` there.
_KILLED = """
import os, signal, sys
from pathlib import Path
left = int(sys.argv[1])
def dying(real):
    def step(*args, **kwargs):
        global left
        if left == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        left -= 1
        return real(*args, **kwargs)
    return step
Path.replace, Path.unlink = dying(Path.replace), dying(Path.unlink)
from opchain.cli import app
sys.argv = ["opchain", "rebuild-masters", "--data-dir", sys.argv[2]]
app()
"""


def test_a_rebuild_killed_anywhere_leaves_every_profile(three_days: Path, tmp_path: Path) -> None:
    """On main the old profiles were removed first: a kill left them missing until a rerun.
    Now, at every moment, each profile is there, whole with its ledger, old or new."""
    whole = tmp_path / "whole"
    shutil.copytree(three_days, whole)
    (whole / "csv_data/NIFTY/this_week/atm" / f"{OTHER_DAYS[0]}.csv").unlink()  # one day less
    assert opchain("rebuild-masters", "-d", str(whole)).returncode == 0
    expected = profiles_of(whole)
    names = {n for n in profiles_of(three_days) if n.endswith(".csv")}
    rng = random.Random(20261128)
    for trial in range(3):
        root = tmp_path / f"killed{trial}"
        shutil.copytree(three_days, root)
        (root / "csv_data/NIFTY/this_week/atm" / f"{OTHER_DAYS[0]}.csv").unlink()
        at = str(rng.randrange(0, 2 * len(names)))
        killed = subprocess.run([sys.executable, "-c", _KILLED, at, str(root)], check=False)
        assert killed.returncode == -signal.SIGKILL
        for name in names:
            path = root / "data_adv" / name
            assert path.exists(), name
            assert load(path)[1]  # a profile with its ledger, one save
        assert opchain("rebuild-masters", "-d", str(root)).returncode == 0
        assert profiles_of(root) == expected


def test_rebuild_without_split_files_is_one_line(tmp_path: Path) -> None:
    done = opchain("rebuild-masters", "-d", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: no split files: {tmp_path}/csv_data does not exist (record a session first, "
        "or set OPCHAIN_CSV_SPLIT_ROOT)"
    )
