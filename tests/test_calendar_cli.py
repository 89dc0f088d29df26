"""``opchain calendar`` and OPCHAIN_HOLIDAYS_FILE, as a user meets them (issue 13, case 10)."""

import os
import subprocess
import sys
from pathlib import Path

OPCHAIN = [sys.executable, "-m", "opchain"]

# An example in NSE's CSV format (fixed-date holidays of 2027), not the published 2027 list.
EXAMPLE_2027 = """Sr. No,Date,Day,Description
1,26-Jan-2027,Tuesday,Republic Day
2,14-Apr-2027,Wednesday,Dr. Baba Saheb Ambedkar Jayanti
3,15-Aug-2027,Sunday,Independence Day
4,25-Dec-2026,Friday,Christmas
"""


def opchain(*args: str, holidays: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPCHAIN_HOLIDAYS_FILE"}
    if holidays is not None:
        env["OPCHAIN_HOLIDAYS_FILE"] = str(holidays)
    return subprocess.run([*OPCHAIN, *args], capture_output=True, text=True, check=False, env=env)


def test_the_built_in_calendar_and_its_end() -> None:
    done = opchain("calendar", "--date", "2026-11-20")
    assert done.returncode == 0, done.stderr
    shown = done.stdout
    assert "2026  built in (exchange circulars, checked 2026-11-21): 16 weekday holidays" in shown
    assert "warning: the NSE holiday tables end on 2026-12-31, in 41 days" in shown
    assert "2026-11-24 Tue  Prakash Gurpurb Sri Guru Nanak Dev Ji" in shown
    assert "2026-11-08 Sun  muhurat, timings not published  Diwali Laxmi Pujan" in shown
    sessions = shown.split("Next sessions:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in sessions] == [
        "2026-11-20", "2026-11-23", "2026-11-25", "2026-11-26", "2026-11-27",
    ]  # fmt: skip
    assert "BANKNIFTY  NSE  2026-11-23 Mon monthly, 2026-12-29 Tue monthly, 2027-01-26" in shown
    assert "2027-01-26 Tue monthly (provisional)" in shown


def test_an_uncovered_year_says_how_to_supply_it() -> None:
    done = opchain("calendar", "--date", "2026-12-30", "--year", "2027", "--count", "3")
    assert done.returncode == 0, done.stderr
    assert "No holiday table for 2027" in done.stdout
    assert "holiday-master?type=trading" in done.stdout
    assert (
        "2027-01-01 Fri  09:15-15:30  (provisional: no NSE holiday table for 2027)" in done.stdout
    )


def test_a_supplied_file_adds_its_year_and_says_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "nse-holidays.csv"
    path.write_text(EXAMPLE_2027, encoding="utf-8")
    done = opchain("calendar", "--date", "2026-12-28", "--year", "2027", holidays=path)
    assert done.returncode == 0, done.stderr
    shown = done.stdout
    assert f"2027  {path}: 2 weekday holidays, 1 at weekends" in shown
    assert "(only 2 weekday holidays: is this the whole year's list?)" in shown
    assert f"2026  in {path} too, not used: the built-in table is kept" in shown
    assert "2027-01-26 Tue  Republic Day" in shown
    assert "warning" not in shown
    assert "NIFTY      NSE  2026-12-29 Tue monthly" in shown
    assert "2027-01-25 Mon monthly" in shown and "provisional" not in shown


def test_a_bad_file_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "nse-holidays.csv"
    path.write_text(EXAMPLE_2027.replace("Wednesday", "Thursday"), encoding="utf-8")
    for command in (["calendar"], ["demo", "--data-dir", str(tmp_path), "--date", "2026-11-20"]):
        done = opchain(*command, holidays=path)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            f"error: {path}:3: 14-Apr-2027 is a Wednesday, not Thursday (OPCHAIN_HOLIDAYS_FILE)"
        ]
        assert "Traceback" not in done.stderr + done.stdout
