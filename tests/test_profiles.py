"""Weekday masters and DTE profiles: order-free exact sums, the ledger, streaming equal to a
rebuild, an idempotent EOD, crash recovery of a profile and its ledger, and OP imports."""

import random
from collections.abc import Callable
from contextlib import suppress
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opchain.cli.app import app
from opchain.market.ist import IST
from opchain.model import SplitRow
from opchain.profiles.master import (
    CLOSED,
    Ledger,
    Profile,
    add_minutes,
    format_ledger,
    format_profile,
    parse_ledger,
    parse_profile,
)
from opchain.profiles.minutes import SESSION_MINUTES, last_per_minute
from opchain.store import eod, profiles
from opchain.store.masters import build
from opchain.store.opdata import find_splits
from opchain.store.profiles import ProfileBook, load, save
from opchain.store.query import today_vs_profile
from opchain.store.splits import COLUMNS, format_row, read_split

from .oplayout import build_op_tree
from .sessions import DAY, record, tree_bytes

Day = tuple[date, dict[str, int]]  # a day and its premium per minute, in paise

days = st.lists(
    st.tuples(
        st.dates(date(2025, 1, 1), date(2026, 12, 31)),
        st.dictionaries(
            st.sampled_from(SESSION_MINUTES[:40]), st.integers(5, 5_000_000), max_size=12
        ),
    ),
    max_size=8,
    unique_by=lambda d: d[0],
)


def stamps(day: date, minutes: dict[str, int]) -> dict[str, datetime]:
    return {m: datetime.combine(day, time(int(m[:2]), int(m[3:])), IST) for m in minutes}


def rebuild(all_days: list[Day]) -> tuple[Profile, Ledger]:
    profile: Profile = {}
    ledger: Ledger = {}
    for day, minutes in sorted(all_days, key=lambda d: d[0]):
        add_minutes(profile, ledger, day, minutes, stamps(day, minutes), close=True)
    return profile, ledger


@settings(max_examples=200, deadline=None)
@given(days, st.randoms(use_true_random=False))
def test_days_in_any_order_with_repeats_equal_a_rebuild(
    all_days: list[Day], rng: random.Random
) -> None:
    """Whole days and days streamed in pieces, shuffled, some twice: the ledger lets each
    minute count once, and the file is byte-identical to a rebuild."""
    expected = format_profile(rebuild(all_days)[0])
    profile: Profile = {}
    ledger: Ledger = {}
    arrivals = [*all_days, *rng.sample(all_days, k=len(all_days) // 2)]
    rng.shuffle(arrivals)
    for day, minutes in arrivals:
        ordered = sorted(minutes)
        cut = rng.randint(0, len(ordered))  # stream the first part, then close with all
        first = {m: minutes[m] for m in ordered[:cut]}
        add_minutes(profile, ledger, day, first, stamps(day, first))
        add_minutes(profile, ledger, day, minutes, stamps(day, minutes), close=True)
    assert format_profile(profile) == expected
    assert ledger == dict.fromkeys((d for d, _ in all_days), CLOSED)
    for day, minutes in all_days:  # a closed day adds nothing, whatever comes
        assert add_minutes(profile, ledger, day, minutes, stamps(day, minutes), True) == 0


@given(days)
def test_files_read_back_exactly(all_days: list[Day]) -> None:
    profile, ledger = rebuild(all_days)
    assert parse_profile(format_profile(profile)) == profile
    assert parse_ledger(format_ledger(ledger)) == ledger
    for minute, cell in profile.items():
        assert sum(m[minute] for _, m in all_days if minute in m) == cell.total  # exact paise


def test_master_file_is_ops_format() -> None:
    day = date(2026, 11, 20)
    profile, _ = rebuild(
        [(day, {"09:15": 29260, "09:16": 5}), (day + timedelta(7), {"09:15": 30105})]
    )
    assert format_profile(profile).splitlines() == [
        "time_bucket,n_tot,sum_tot,avg_tot,min_tot,max_tot,last_updated",
        "09:15,2,593.65,296.825000,292.60,301.05,2026-11-27T03:45:00Z",
        "09:16,1,0.05,0.050000,0.05,0.05,2026-11-20T03:46:00Z",
    ]
    assert format_ledger({day: CLOSED, day + timedelta(7): "10:42"}) == (
        "2026-11-20\n2026-11-27 10:42\n"
    )


def test_last_tick_of_each_minute_inside_the_session() -> None:
    at = lambda hhmmss: datetime.fromisoformat(f"2026-11-20T{hhmmss}+05:30")  # noqa: E731
    rows = [(at("09:14:30"), 1), (at("09:15:00"), 2), (at("09:15:30"), 3), (at("09:16:00"), 4),
            (at("09:16:30"), None), (at("15:29:30"), 5), (at("15:30:00"), 6)]  # fmt: skip
    assert last_per_minute(rows) == {"09:15": 3, "09:16": 4, "15:29": 5}


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("session")
    record(root, until=datetime.fromisoformat(f"{DAY}T10:15:00+05:30"))
    return root


def files(root: Path) -> dict[str, bytes]:
    """Every profile and ledger under ``root``."""
    return tree_bytes(root, "*.csv*")


def test_streamed_profiles_equal_a_rebuild_and_eod_is_idempotent(
    session_dir: Path, tmp_path: Path
) -> None:
    csv_root, adv = session_dir / "csv_data", session_dir / "data_adv"
    streamed = files(adv)
    assert any(p.endswith("fri.csv") for p in streamed)
    assert any("dte_profiles" in p for p in streamed)
    # Live, a minute counts once it is over: the last minute recorded is not in yet.
    first = profiles.weekday_path(adv, "NIFTY", "this_week", "atm", DAY)
    assert max(parse_profile(first.read_text())) == "10:13"
    assert parse_ledger(first.with_name("fri.csv.ledger").read_text()) == {DAY: "10:13"}

    added = eod.reconcile(csv_root, adv, DAY).added
    assert added == 70  # 10:14 for each of the 70 series
    closed = files(adv)
    assert eod.reconcile(csv_root, adv, DAY).added == 0
    assert files(adv) == closed  # twice changes nothing

    book = ProfileBook(fresh=True)
    splits, problems = find_splits(csv_root)
    assert problems == []
    build(book, tmp_path, splits)
    book.save()
    assert files(tmp_path) == closed  # equal to a rebuild, ledgers included

    path, scores = eod.report(csv_root, adv, DAY)
    assert len(scores) == 70 and all(s.minutes == 60 for s in scores)
    lines = path.read_text().splitlines()
    assert lines[0] == eod.REPORT_COLUMNS
    assert lines[1].startswith("BANKNIFTY,next_month,atm,60,16.0,10:15-15:29,")


def test_a_crash_at_any_step_of_a_save_recovers_one_state_or_the_other(tmp_path: Path) -> None:
    path = tmp_path / "fri.csv"
    day = date(2026, 11, 20)
    before = rebuild([(day, {"09:15": 100})])
    after = rebuild([(day, {"09:15": 100}), (day + timedelta(7), {"09:15": 300})])
    save(path, *before)
    states = [format_profile(before[0]), format_profile(after[0])]
    for crash_after in range(3):  # ledger written / profile replaced / (none: all done)
        save(path, *before)
        steps = _Crash(crash_after)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Path, "replace", steps.method())
            with suppress(_Crash.Died):
                save(path, *after)
        profile, ledger = load(path)
        assert format_profile(profile) in states
        expected = after if format_profile(profile) == states[1] else before
        assert (profile, ledger) == expected
        assert not path.with_name("fri.csv.ledger.tmp").exists()


class _Crash:
    class Died(Exception):
        pass

    def __init__(self, survive: int) -> None:
        self.left = survive
        self.real = Path.replace

    def method(self) -> Callable[[Path, Path], Path]:
        """A stand-in for ``Path.replace`` that dies at the chosen call."""

        def replace(path: Path, target: Path) -> Path:
            return self.replace(path, target)

        return replace

    def replace(self, path: Path, target: Path) -> Path:
        if self.left == 0:
            raise self.Died
        self.left -= 1
        return self.real(path, target)


# Runs `opchain eod` and SIGKILLs itself at its N-th rename: the process dies at once, with no
# exception, no finally block and no flush, exactly as under `kill -9` at that point.
_KILLED_AT_RENAME = """
import os, signal, sys
from pathlib import Path
left, real = int(sys.argv[1]), Path.replace
def replace(self, target):
    global left
    if left == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    left -= 1
    return real(self, target)
Path.replace = replace
from opchain.cli import app
sys.argv = ["opchain", "eod", "--date", sys.argv[2], "--data-dir", sys.argv[3]]
app()
"""


def test_an_eod_killed_anywhere_then_rerun_equals_an_uninterrupted_one(
    session_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL `opchain eod` at a random rename of its 280 (a profile or a ledger of any of
    its 140 saves), run it again: the profiles equal an uninterrupted run's."""
    import shutil
    import signal
    import subprocess
    import sys

    def copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(session_dir / "csv_data", root / "csv_data")
        shutil.copytree(session_dir / "data_adv", root / "data_adv")
        return root

    whole = copy("whole")
    eod.reconcile(whole / "csv_data", whole / "data_adv", DAY)
    rng = random.Random(20261121)
    for trial in range(3):
        root = copy(f"killed{trial}")
        at = str(rng.randrange(0, 280))
        command = [sys.executable, "-c", _KILLED_AT_RENAME, at, DAY.isoformat(), str(root)]
        killed = subprocess.run(command, capture_output=True, check=False)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
        eod.reconcile(root / "csv_data", root / "data_adv", DAY)
        assert tree_bytes(root / "data_adv", "*.csv") == tree_bytes(whole / "data_adv", "*.csv")
        ledgers = tree_bytes(root / "data_adv", "*.ledger")
        assert ledgers == tree_bytes(whole / "data_adv", "*.ledger")


def test_import_builds_profiles_from_an_op_directory_and_changes_nothing(tmp_path: Path) -> None:
    days = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 23)]
    truth = build_op_tree(tmp_path / "op", days)
    before = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in truth.root.rglob("*") if p.is_file()
    }
    result = CliRunner().invoke(app, ["import", str(truth.root), "-d", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    after = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in truth.root.rglob("*") if p.is_file()
    }
    assert after == before
    assert "profiles written" in result.output and "could not be read" in result.output
    # Mondays: the 16th and the 23rd pooled, minute by minute, from the truth's premiums.
    adv = tmp_path / "data" / "data_adv"
    for split in truth.splits.values():
        if split.day.weekday() != 0 or split.damage or split.index != "NIFTY":
            continue
        master = profiles.weekday_path(adv, split.index, split.bucket, split.offset, split.day)
        profile, ledger = load(master)
        minutes = [
            last_per_minute((p.ts, p.paise) for p in s.premiums)
            for s in truth.splits.values()
            if (s.index, s.bucket, s.offset) == (split.index, split.bucket, split.offset)
            and s.day.weekday() == 0
            and not s.damage
        ]
        assert split.day in ledger
        for minute, cell in profile.items():
            values = [m[minute] for m in minutes if minute in m]
            if len(values) == cell.n:  # days pooled from OP's old master add to n
                assert cell.total == sum(values)
                assert (cell.low, cell.high) == (min(values), max(values))
        break
    else:
        pytest.fail("no undamaged NIFTY Monday split in the OP tree")


def test_today_against_the_profiles_with_duckdb(session_dir: Path) -> None:
    csv_root, adv = session_dir / "csv_data", session_dir / "data_adv"
    eod.reconcile(csv_root, adv, DAY)
    rows = today_vs_profile(csv_root, adv, "SENSEX", "next_week", "atm_p1m1", DAY)
    assert [r.minute for r in rows] == list(SESSION_MINUTES)
    split = csv_root / "SENSEX" / "next_week" / "atm_p1m1" / f"{DAY}.csv"
    last = {r.ts.strftime("%H:%M"): r.total_premium for r in read_split(split)}
    master, _ = load(profiles.weekday_path(adv, "SENSEX", "next_week", "atm_p1m1", DAY))
    seen = [r for r in rows if r.today is not None]
    assert len(seen) == 60 and all(r.today == last[r.minute] for r in seen)
    # the profiles hold today alone so far, and today is not compared with itself
    assert all(master[r.minute].n == 1 for r in seen)
    assert all(r.weekday_avg is r.weekday_days is r.dte_min is None for r in rows)


def test_eod_flags_a_jump_but_not_a_strike_roll(tmp_path: Path) -> None:
    """``atm_p2`` becomes another option when the ATM moves: its premium steps, and that is
    no outlier; the same step with the strikes unchanged is one."""
    rng = random.Random(5)
    open_ = datetime.combine(DAY, time(9, 15), IST)
    lines = [",".join(COLUMNS)]
    call, put, atm = 80.0, 75.0, 26_000.0
    for k, _ in enumerate(SESSION_MINUTES):
        call += rng.choice([-0.1, -0.05, 0.0, 0.05, 0.1])
        put += rng.choice([-0.1, -0.05, 0.0, 0.05, 0.1])
        if k == 100:  # the ATM moves up a strike: atm_p2 is now 26,150, far cheaper
            atm, call, put = atm + 50.0, call - 30.0, put + 25.0
        bump = 40.0 if k == 200 else 0.0  # a jump with the same strikes
        c = round(call + bump, 2)
        row = SplitRow(
            open_ + timedelta(minutes=k), "NIFTY", "this_week", DAY, "atm_p2", atm, atm,
            atm + 100, atm + 100, c, round(put, 2), None, None, 1, 1, 1, 1,
            round(c + put, 2), 3,
        )  # fmt: skip
        lines.append(format_row(row))
    path = tmp_path / "NIFTY" / "this_week" / "atm_p2" / f"{DAY}.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    (score,) = eod.quality(tmp_path, DAY)
    assert SESSION_MINUTES[100] not in score.outliers
    assert SESSION_MINUTES[200] in score.outliers
    assert score.minutes == len(SESSION_MINUTES) and score.gaps == ()
