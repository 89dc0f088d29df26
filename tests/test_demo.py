"""End to end: the ``opchain demo`` command as a user runs it, in a subprocess."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from opchain.store.splits import read_split

from .sessions import tree_bytes

DEMO = [sys.executable, "-m", "opchain", "demo", "--date", "2026-11-20", "--seed", "7"]


def demo(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("whole")
    done = demo(data)
    assert done.returncode == 0, done.stderr
    return data


def test_demo_records_the_whole_session(whole: Path) -> None:
    atm = whole / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"
    assert atm.read_text().startswith("ts,")
    rows = list(read_split(atm))
    minutes = {r.ts.replace(second=0) for r in rows}
    assert len(minutes) == 375  # every minute 09:15..15:29
    assert rows[0].ts.isoformat() == "2026-11-20T09:15:00+05:30"
    assert rows[-1].ts.isoformat() == "2026-11-20T15:29:30+05:30"
    assert {r.expiry.isoformat() for r in rows} == {"2026-11-23"}
    monthly = list(read_split(whole / "csv_data/NIFTY/this_month/atm/2026-11-20.csv"))
    assert {r.expiry.isoformat() for r in monthly} == {"2026-11-23"}
    assert (whole / "csv_data/SENSEX/this_week/atm_p1m1").is_dir()
    assert not (whole / "csv_data/BANKNIFTY/this_week").exists()
    assert (whole / "overview/INDIAVIX/2026-11-20.csv").exists()


def test_demo_summary_says_what_and_where(tmp_path: Path) -> None:
    done = demo(tmp_path / "d", "--cadence", "300")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "75 snapshots recorded" in out
    assert "NIFTY" in out and "this_week" in out and "2026-11-23" in out
    assert str(tmp_path / "d" / "csv_data") in out
    assert "Raw legs" in out


def test_demo_of_the_monthly_only_indices(tmp_path: Path) -> None:
    env = {"OPCHAIN_INDICES": "FINNIFTY,MIDCPNIFTY,BANKEX"}
    done = demo(tmp_path, "--cadence", "300", env=env)
    assert done.returncode == 0, done.stderr
    expiries = {"FINNIFTY": "2026-11-23", "MIDCPNIFTY": "2026-11-23", "BANKEX": "2026-11-26"}
    for index, this_month in expiries.items():
        assert sorted(p.name for p in (tmp_path / "csv_data" / index).iterdir()) == [
            "next_month",
            "this_month",
        ]
        rows = list(read_split(tmp_path / f"csv_data/{index}/this_month/atm/2026-11-20.csv"))
        assert len(rows) == 75 and {r.expiry.isoformat() for r in rows} == {this_month}
        assert (tmp_path / f"overview/{index}/2026-11-20.csv").exists()
        analytics = sorted(p.name for p in (tmp_path / "analytics" / index).iterdir())
        assert analytics == ["next_month", "this_month"]
    assert sorted(p.name for p in (tmp_path / "csv_data").iterdir()) == sorted(expiries)
    assert sorted(p.name for p in (tmp_path / "overview").iterdir()) == sorted(
        [*expiries, "INDIAVIX"]
    )


def test_running_twice_gives_identical_files(whole: Path, tmp_path: Path) -> None:
    again = demo(tmp_path)
    assert again.returncode == 0, again.stderr
    assert tree_bytes(tmp_path / "csv_data") == tree_bytes(whole / "csv_data")
    assert tree_bytes(tmp_path / "overview") == tree_bytes(whole / "overview")
    assert tree_bytes(tmp_path / "raw", "*.parquet") == tree_bytes(whole / "raw", "*.parquet")


def test_sigkill_mid_session_then_rerun_gives_the_same_files(whole: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [*DEMO, "--data-dir", str(tmp_path)], stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stderr is not None
    for line in process.stderr:  # the plain progress lines of a non-terminal run
        if line.startswith("12:30 IST"):
            process.send_signal(signal.SIGKILL)
            break
    assert process.wait() == -signal.SIGKILL
    process.stderr.close()
    resumed = demo(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "already on disk" in resumed.stdout
    skipped = int(resumed.stdout.split(" already on disk")[0].rsplit(" ", 1)[-1])
    assert skipped > 300  # it resumed rather than starting over
    assert tree_bytes(tmp_path / "csv_data") == tree_bytes(whole / "csv_data")
    assert tree_bytes(tmp_path / "overview") == tree_bytes(whole / "overview")
    assert tree_bytes(tmp_path / "analytics") == tree_bytes(whole / "analytics")
    # Weekday masters and DTE profiles, streamed minute by minute in both runs, with ledgers.
    masters = tree_bytes(tmp_path / "data_adv", "*.csv*")
    assert masters == tree_bytes(whole / "data_adv", "*.csv*")
    assert len(masters) == 4 * 70  # a weekday master and a DTE profile per series, + ledgers
    resumed_raw = pq.read_table(tmp_path / "raw", partitioning="hive")
    whole_raw = pq.read_table(whole / "raw", partitioning="hive")
    order = [("ts", "ascending"), ("tradingsymbol", "ascending")]
    assert resumed_raw.sort_by(order).equals(whole_raw.sort_by(order))


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (
            "2026-11-24",
            "2026-11-24 is a holiday (Prakash Gurpurb Sri Guru Nanak Dev Ji): there is no",
        ),
        ("2026-11-21", "2026-11-21 is a weekend"),
        ("2027-01-05", "no NSE trading calendar for 2027"),
        ("2026-11-08", "Muhurat timings for 2026-11-08 are not published"),
    ],
)
def test_no_session_is_a_clear_error(tmp_path: Path, day: str, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "opchain", "demo", "--data-dir", str(tmp_path), "--date", day],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())
