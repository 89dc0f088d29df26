"""``opchain replay`` and the ``replay`` broker: a recorded day derived again from its raw legs.

Two simulated days are recorded whole, the first in band mode at a 60 s cadence and the second
over whole chains at 5 minutes (its analytics use the first day's closing open interest). A
replay reproduces every derived file of both byte for byte; a replay with another rate makes
the files a recording with that rate makes, and swaps them in so that a kill at any moment
leaves the old set or the new one.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from opchain.history.playback import ReplayBroker
from opchain.history.replay import ReplayError, replay_day
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store import layout, swap

from .sessions import record, tree_bytes

BAND, FULL = date(2026, 11, 19), date(2026, 11, 20)
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=IST)
DERIVED = ("csv_data", "overview", "analytics", "data_adv")


def derived(data_dir: Path) -> dict[str, bytes]:
    """Every derived file of a data directory (split, overview, analytics files, profiles)."""
    found = {}
    for folder in DERIVED:
        for name, data in tree_bytes(data_dir / folder, "*").items():
            found[f"{folder}/{name}"] = data
    return found


def of_day(files: dict[str, bytes], day: date) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k.endswith(f"{day.isoformat()}.csv")}


def record_both(data_dir: Path, **overrides: object) -> None:
    record(data_dir, day=BAND, cadence_seconds=60, full_chain=False, **overrides)
    record(data_dir, day=FULL, cadence_seconds=300, full_chain=True, **overrides)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("recorded")
    record_both(data)
    return data


@pytest.fixture
def copy(recorded: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(recorded, data)
    return data


def test_a_replay_into_a_new_directory_makes_every_derived_file_byte_for_byte(
    recorded: Path, tmp_path: Path
) -> None:
    into = tmp_path / "into"
    settings = Settings(data_dir=recorded)
    band = replay_day(settings, BAND, NOW, into)
    full = replay_day(settings, FULL, NOW, into)
    assert band.cycles == 375 and full.cycles == 75
    assert band.added == full.added > 300 and band.changed == band.removed == 0
    before, after = derived(recorded), derived(into)
    assert sorted(after) == sorted(before)
    assert [k for k in before if before[k] != after[k]] == []
    assert any("dte_profiles" in k for k in after) and any("weekday_masters" in k for k in after)


def test_a_replay_in_place_of_an_unchanged_day_changes_nothing(copy: Path) -> None:
    before = derived(copy)
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("*.csv")}
    done = replay_day(Settings(data_dir=copy), FULL, NOW)
    assert (done.changed, done.added, done.removed) == (0, 0, 0) and done.same > 300
    assert derived(copy) == before
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*.csv")} == stamps
    assert not layout.swap_root(copy).exists() or not any(layout.swap_root(copy).iterdir())


@pytest.fixture(scope="module")
def other_rate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The band day recorded with another interest rate (the simulator's prices do not move
    with it; the IVs, Greeks and analytics do)."""
    data = tmp_path_factory.mktemp("rate")
    record(data, day=BAND, cadence_seconds=60, full_chain=False, rate=0.05)
    return data


def test_a_replay_with_a_changed_setting_makes_what_a_recording_with_it_makes(
    copy: Path, other_rate: Path
) -> None:
    old = derived(copy)
    done = replay_day(Settings(data_dir=copy, rate=0.05), BAND, NOW)
    assert done.changed > 0 and done.removed == 0
    new, wanted = derived(copy), derived(other_rate)
    assert of_day(new, BAND) == of_day(wanted, BAND) != of_day(old, BAND)
    assert of_day(new, FULL) == of_day(old, FULL)  # another day's files are left alone


def test_fewer_offsets_remove_the_day_files_of_the_others(copy: Path) -> None:
    before = derived(copy)
    done = replay_day(Settings(data_dir=copy, strike_width=1), BAND, NOW)
    files = of_day(derived(copy), BAND)
    offsets = {Path(k).parent.name for k in files if k.startswith("csv_data/")}
    assert offsets == {"atm", "atm_m1", "atm_p1", "atm_p1m1"}
    assert done.removed == 30  # atm_m2, atm_p2, atm_p2m2 of ten buckets
    assert of_day(derived(copy), FULL) == of_day(before, FULL)


def test_a_crash_before_the_commit_leaves_the_old_set(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = derived(copy)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(swap, "write_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        replay_day(Settings(data_dir=copy, rate=0.05), BAND, NOW)
    assert derived(copy) == before
    assert list(layout.swap_root(copy).iterdir()) == []


@pytest.mark.parametrize("where", [0.0, 0.01, 0.5, 1.0])
def test_a_crash_anywhere_in_the_swap_is_finished_by_the_next_command(
    copy: Path, other_rate: Path, monkeypatch: pytest.MonkeyPatch, where: float
) -> None:
    """A rename of the swap dies (as a kill would: nothing after it runs), the first, one a
    little later, one halfway, or the last; the next command that loads the settings finishes
    the swap."""
    before, after = of_day(derived(copy), BAND), of_day(derived(other_rate), BAND)
    differ = [k for k in after if before.get(k) != after[k]]
    at, moves = min(int(where * len(differ)), len(differ) - 1), 0
    real = swap._move

    def dies(staged: Path, place: Path, durable: bool) -> None:
        nonlocal moves
        if moves == at:
            raise SystemExit("killed")
        moves += 1
        real(staged, place, durable)

    monkeypatch.setattr(swap, "_move", dies)
    with pytest.raises(SystemExit):
        replay_day(Settings(data_dir=copy, rate=0.05), BAND, NOW)
    monkeypatch.setattr(swap, "_move", real)
    mixed = of_day(derived(copy), BAND)
    assert sum(mixed[k] == after[k] for k in differ) == at  # a mix, until the next command
    result = opchain("verify", "-d", str(copy), "--date", BAND.isoformat(), "--min-score", "0")
    assert "finished an interrupted swap" in result.stderr
    assert of_day(derived(copy), BAND) == after != before
    assert list(layout.swap_root(copy).iterdir()) == []


def test_a_swap_being_staged_by_another_process_is_left_alone(copy: Path) -> None:
    root = layout.swap_root(copy)
    busy = swap.begin(root / "busy")
    (busy.staged / "file").write_text("x")
    try:
        assert swap.finish(root) == []
        assert (busy.staged / "file").exists()
    finally:
        busy.release()
    assert swap.finish(root) == ["threw away an unfinished swap of busy (the old files stand)"]
    assert list(root.iterdir()) == []


def opchain(*args: str, **env: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "opchain", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def test_sigkill_during_the_swap_leaves_the_old_set_or_the_new(
    copy: Path, other_rate: Path
) -> None:
    """``opchain replay`` killed the moment it says it puts the files in place: whatever it had
    done, the next command leaves every file of the day old or every one new."""
    old, new = of_day(derived(copy), BAND), of_day(derived(other_rate), BAND)
    command = [sys.executable, "-m", "opchain", "replay", "-d", str(copy), "--date", "2026-11-19"]
    env = {**os.environ, "OPCHAIN_RATE": "0.05"}
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("putting"):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
    assert proc.returncode in (-signal.SIGKILL, 0)
    opchain("verify", "-d", str(copy), "--date", BAND.isoformat(), "--min-score", "0")
    assert of_day(derived(copy), BAND) in (old, new)


def test_the_command_says_what_it_did_and_bad_days_are_one_line(copy: Path) -> None:
    done = opchain("replay", "-d", str(copy), "--date", FULL.isoformat())
    assert done.returncode == 0, done.stderr
    assert "2026-11-20: 75 cycles of BANKNIFTY, NIFTY, SENSEX replayed" in done.stdout
    assert "0 replaced, 0 new; 0 removed" in done.stdout
    none = opchain("replay", "-d", str(copy), "--date", "2026-11-18")
    assert none.returncode == 2
    assert none.stderr.strip().splitlines() == [
        f"error: no raw legs of 2026-11-18 in {copy / 'raw'}: nothing to replay"
    ]
    (copy / "instruments" / "2026-11-20.csv").unlink()
    lost = opchain("replay", "-d", str(copy), "--date", FULL.isoformat())
    assert lost.returncode == 2 and "no instruments dump of 2026-11-20" in lost.stderr


def test_a_day_still_being_recorded_is_not_replayed_in_place(copy: Path) -> None:
    with pytest.raises(ReplayError, match="the session of 2026-11-20 is not over"):
        replay_day(Settings(data_dir=copy), FULL, datetime(2026, 11, 20, 12, 0, tzinfo=IST))


def play(recorded: Path, into: Path, day: date, **overrides: object) -> None:
    """The replay broker in a session recorded as ``opchain run --broker replay`` records it,
    on a virtual clock."""
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = ReplayBroker(recorded, day, clock)
    settings = Settings(data_dir=into, full_chain=broker.full_chain(), **overrides)  # type: ignore[arg-type]
    asyncio.run(record_session(settings, broker, clock, day))


@pytest.mark.parametrize(("day", "cadence"), [(BAND, 60), (FULL, 300)])
def test_the_replay_broker_plays_a_day_as_it_was_recorded(
    recorded: Path, tmp_path: Path, day: date, cadence: int
) -> None:
    """Played back on a clock, the day's quotes make the recorded split, overview and
    analytics files again."""
    into = tmp_path / "played"
    if day == FULL:  # the previous close's open interest and iv30 are the band day's
        shutil.copytree(recorded / "raw" / f"date={BAND}", into / "raw" / f"date={BAND}")
        for path in (recorded / "analytics").rglob(f"{BAND}.csv"):
            target = into / path.relative_to(recorded)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    play(recorded, into, day, cadence_seconds=cadence)
    want = {k: v for k, v in of_day(derived(recorded), day).items() if "data_adv" not in k}
    got = {k: v for k, v in of_day(derived(into), day).items() if "data_adv" not in k}
    assert sorted(got) == sorted(want)
    assert [k for k in want if want[k] != got[k]] == []


def test_run_with_the_replay_broker_plays_one_session_and_leaves_the_archive(
    copy: Path,
) -> None:
    before = tree_bytes(copy, "*")
    done = opchain(
        "run", "-d", str(copy), "--broker", "replay", "--date", BAND.isoformat(),
        "--speed", "100000", "--no-api",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert f"playing {BAND} from {copy} at 100000x, a cycle every 60 s" in said
    assert "Session 2026-11-19" in done.stdout
    assert tree_bytes(copy, "*") == before
    wrong = opchain("run", "-d", str(copy), "--broker", "replay", "--no-api")
    assert wrong.returncode == 2 and "give it with --date YYYY-MM-DD" in wrong.stderr
    stray = opchain("run", "-d", str(copy), "--date", BAND.isoformat(), "--no-api")
    assert stray.returncode == 2 and "--date chooses the recorded day" in stray.stderr


def test_a_replay_that_would_lose_rows_is_refused_unless_forced(copy: Path) -> None:
    """A window of raw legs moved aside as damaged: the split files hold cycles the raw legs
    no longer have. The replay says so and changes nothing; ``--force`` replays anyway."""
    folder = copy / "raw" / f"date={BAND}" / "index=NIFTY"
    part = folder / "part-1000.parquet"
    part.rename(folder / "_part-1000.parquet.damaged")
    before = derived(copy)
    refused = opchain("replay", "-d", str(copy), "--date", BAND.isoformat())
    assert refused.returncode == 2  # 32 files: NIFTY's four buckets' 7 split and 1 analytics
    said = " ".join(refused.stderr.split())
    assert f"error: the raw legs of {BAND} miss cycles that 32 files hold (the first " in said
    assert "2026-11-19T10:00:00+05:30" in said and "--force replays anyway" in said
    assert derived(copy) == before
    forced = opchain("replay", "-d", str(copy), "--date", BAND.isoformat(), "--force")
    assert forced.returncode == 0, forced.stderr
    nifty = copy / "csv_data" / "NIFTY" / "this_week" / "atm" / f"{BAND}.csv"
    assert b"2026-11-19T10:00:00+05:30" not in nifty.read_bytes()
    assert (copy / "overview" / "NIFTY" / f"{BAND}.csv").read_bytes() == before[
        f"overview/NIFTY/{BAND}.csv"
    ]


def test_an_unreadable_raw_part_is_one_line_and_nothing_replaced(copy: Path) -> None:
    part = copy / "raw" / f"date={BAND}" / "index=SENSEX" / "part-1100.parquet"
    part.write_bytes(b"not parquet")
    before = derived(copy)
    done = opchain("replay", "-d", str(copy), "--date", BAND.isoformat())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "part-1100.parquet" in lines[0]
    assert derived(copy) == before
    assert list(layout.swap_root(copy).iterdir()) == []


def test_a_full_disk_while_staging_is_one_line_and_nothing_replaced(copy: Path) -> None:
    """Files may grow to 10 KB only (the kernel's own EFBIG, as a full disk refuses): the
    staging fails, the line names where, and every old file stands."""
    import resource

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))

    before = derived(copy)
    done = subprocess.run(
        [sys.executable, "-m", "opchain", "replay", "-d", str(copy), "--date", BAND.isoformat()],
        capture_output=True,
        text=True,
        env={**os.environ, "OPCHAIN_RATE": "0.05"},
        preexec_fn=small_files,
        timeout=600,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "WARNING" not in line]
    assert lines == [f"error: {copy / '.swap'}: File too large; nothing was replaced"]
    assert derived(copy) == before
    assert list(layout.swap_root(copy).iterdir()) == []
