"""The command line and the settings it loads."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kiteconnect import KiteConnect

from opchain.settings import Settings
from opchain.store.splits import read_split

from .servers import fake_kite_process

OPCHAIN = [sys.executable, "-m", "opchain"]


def test_ops_variable_names_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGGER_OFFSETS", "-1,0,1")
    monkeypatch.setenv("LOGGER_LOOP_INTERVAL_SEC", "5")
    monkeypatch.setenv("CSV_SPLIT_ROOT", str(tmp_path / "splits"))
    monkeypatch.setenv("KITE_API_SECRET", "s3cret")
    settings = Settings()
    assert settings.strike_offsets == (-1, 0, 1)
    assert settings.cadence_seconds == 5.0
    assert settings.split_root == tmp_path / "splits"
    assert "s3cret" not in repr(settings)


def test_strike_width_sets_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPCHAIN_STRIKE_WIDTH", "10")
    assert Settings().strike_offsets == tuple(range(-10, 11))


def test_bad_settings_are_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "OPCHAIN_INDICES": "NIFTY,FOO"}
    done = subprocess.run(
        [*OPCHAIN, "demo", "--data-dir", str(tmp_path), "--date", "2026-11-20"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "unknown indices ['FOO']" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_lists_the_commands() -> None:
    done = subprocess.run([*OPCHAIN, "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "run", "version"):
        assert command in done.stdout


def test_run_records_on_an_accelerated_clock(tmp_path: Path) -> None:
    command = [*OPCHAIN, "run", "--broker", "sim", "--data-dir", str(tmp_path), "--cadence", "10"]
    command += ["--start", "2026-11-20T15:20:00", "--speed", "60", "--sessions", "1"]
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    rows = list(read_split(tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"))
    assert [r.ts.strftime("%H:%M:%S") for r in rows][-1] == "15:29:50"
    # From wherever the clock had got to when collection began (start-up takes a few
    # simulated seconds at 60x), every 10 s to the close.
    assert 10 <= len(rows) <= 60
    assert "Session 2026-11-20" in done.stdout


def test_kite_broker_needs_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "KITE" not in k}
    done = subprocess.run(
        [*OPCHAIN, "run", "--broker", "kite", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "the kite broker needs KITE_API_KEY, and a login: run `opchain login`" in done.stderr


@pytest.mark.e2e
def test_run_with_the_kite_broker_against_the_fake_server(tmp_path: Path) -> None:
    start = ["--start", "2026-11-20T15:20:00", "--speed", "60"]  # 10 s of wall time
    with fake_kite_process(*start) as root:
        redirect = httpx.get(f"{root}/connect/login", params={"api_key": "k", "v": 3})
        token = parse_qs(urlsplit(redirect.headers["location"]).query)["request_token"][0]
        session = KiteConnect(api_key="k", root=root).generate_session(token, api_secret="s")
        env = os.environ | {
            "KITE_API_KEY": "k",
            "KITE_ACCESS_TOKEN": session["access_token"],
            "OPCHAIN_KITE_ROOT": root,
        }
        command = [*OPCHAIN, "run", "--broker", "kite", "--data-dir", str(tmp_path)]
        done = subprocess.run(
            [*command, "--cadence", "10", "--sessions", "1", *start],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    rows = list(read_split(tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"))
    assert rows and all(r.call_last_price for r in rows)
    assert (tmp_path / "cache/kite/2026-11-20-NFO.csv").exists()


# --- start-up: a command imports what it uses (issue 13, case 24) ---------------------------

HEAVY = ("fastapi", "starlette", "uvicorn", "scipy", "numpy.f2py", "pyarrow", "duckdb", "redis",
         "httpx", "pydantic_settings", "websockets")  # fmt: skip
LOADED = """
import sys
from opchain.cli import app
try:
    app({args!r}, prog_name="opchain")
except SystemExit:
    pass
print(" ".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


COMMANDS = ("run", "demo", "serve", "health", "fake-kite", "login", "eod", "rebuild-masters",
            "import", "influx", "collect", "worker", "monitor", "config", "calendar",
            "verify", "query", "export")  # fmt: skip


@pytest.mark.parametrize(
    "args", [["--help"], ["version"], *([c, "--help"] for c in COMMANDS)], ids=" ".join
)
def test_help_and_version_load_no_web_numeric_or_settings_library(args: list[str]) -> None:
    """In a fresh interpreter: what the CLI left in sys.modules after the command. Not a
    timing: BENCHMARKS.md ("Command start-up") measures what this keeps out."""
    code = LOADED.format(args=args, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines()[-1] == ""
    assert "Usage" in done.stdout or done.stdout.strip() == "0.1.0"


def test_the_fake_kite_defaults_shown_by_help_are_the_fakes_own() -> None:
    from opchain.brokers.kite.fake import FakeKite
    from opchain.cli import kite

    fakes = (FakeKite.api_key, FakeKite.api_secret, FakeKite.redirect_url)
    assert fakes == (kite.FAKE_KEY, kite.FAKE_SECRET, kite.FAKE_REDIRECT)


# --- bad input: one clear line, exit code 2 (issue 13, case 18) -----------------------------


HANG = 120  # s: a command that should stop at once but serves forever (as some did) fails the
# test instead of hanging the suite. A guard, not a timing: they take a second or two.


def opchain(
    args: list[str], env: dict[str, str] | None = None
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([*OPCHAIN, *args], capture_output=True, text=True, check=False,
                          env=env, timeout=HANG)  # fmt: skip


def one_line_error(done: "subprocess.CompletedProcess[str]") -> str:
    """The single line a failed command printed (and no traceback anywhere)."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("speed", ["0", "-1", "nan", "inf", "1e300"])
def test_a_clock_speed_that_is_not_a_positive_number_is_one_line(
    tmp_path: Path, speed: str
) -> None:
    command = ["run", "--broker", "sim", "--no-api", "-d", str(tmp_path)]
    done = opchain([*command, f"--speed={speed}", "--sessions", "1"])
    assert "--speed must be a positive number" in one_line_error(done)
    fake = opchain(["fake-kite", "--port", "0", f"--speed={speed}"])
    assert "--speed must be a positive number" in one_line_error(fake)


WHEN = {"run": ["--start", "2026-11-20T15:29:00"], "demo": ["--date", "2026-11-20"],
        "serve": ["--port", "0"], "health": []}  # fmt: skip


@pytest.mark.parametrize("command", WHEN)
def test_a_data_directory_that_is_a_file_is_one_line(tmp_path: Path, command: str) -> None:
    """`demo -d /etc/passwd` (here a copy) was a traceback ending in NotADirectoryError;
    `serve` served nothing from it and `health` judged it."""
    afile = tmp_path / "passwd"
    afile.write_text("root:x:0:0::/root:/bin/sh\n")
    for data_dir, says in ((afile, "is a file"), (afile / "data", f"is under {afile}")):
        done = opchain([command, "-d", str(data_dir), *WHEN[command]])
        line = one_line_error(done)
        assert f"data directory {data_dir} {says}" in line
    assert afile.read_text() == "root:x:0:0::/root:/bin/sh\n"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["fake-kite", "--port", "-1"], "--port must be at least 0 and at most 65535, not -1"),
        (["fake-kite", "--too-many", "2"], "--too-many must be at least 0 and at most 1, not 2"),
        (["fake-kite", "--latency", "nan"], "--latency must be at least 0, not nan"),
        (["run", "--sessions", "0"], "--sessions must be at least 1, not 0"),
    ],
)
def test_options_out_of_range_are_one_line(tmp_path: Path, options: list[str], says: str) -> None:
    """`fake-kite --port -1` was a traceback (OverflowError); a share of 2 or a NaN latency
    was taken as given; `run --sessions 0` or -1 did nothing and said nothing."""
    extra = ["-d", str(tmp_path)] if options[0] == "run" else []  # never the default dir
    done = opchain([*options, *extra])
    assert one_line_error(done) == f"error: {says}"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--seed", "-5"], "sim_seed: Input should be greater than or equal to 0"),
        (["--cadence", "inf"], "cadence_seconds: Input should be a finite number"),
        (["--cadence", "nan"], "cadence_seconds: Input should be a finite number"),
    ],
)
def test_settings_out_of_range_are_one_line_before_anything_runs(
    tmp_path: Path, options: list[str], says: str
) -> None:
    """`run --seed -5` and `run --cadence inf` (or nan) were accepted, and then the collector
    failed at every restart (a seed numpy refuses, a NaN count of cycles): a crash loop."""
    command = ["run", "--broker", "sim", "--no-api", "--sessions", "1", "-d", str(tmp_path)]
    done = opchain([*command, "--speed", "600", "--start", "2026-11-20T15:29:00", *options])
    assert says in one_line_error(done)


def test_no_numeric_setting_is_infinite_or_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    floats = [name for name, field in Settings.model_fields.items() if field.annotation is float]
    assert "stale_seconds" in floats and "rate" in floats
    for name in floats:
        for value in ("inf", "-inf", "nan"):
            monkeypatch.setenv(f"OPCHAIN_{name.upper()}", value)
            with pytest.raises(ValueError, match="finite number"):
                Settings()
        monkeypatch.delenv(f"OPCHAIN_{name.upper()}")


def test_an_operating_system_error_no_command_foresaw_is_one_line(tmp_path: Path) -> None:
    """A Kite token file that is a directory: a traceback ending in IsADirectoryError. Any
    OSError that reaches the top is one line naming the file, exit code 2."""
    folder = tmp_path / "token"
    folder.mkdir()
    env = {**os.environ, "KITE_API_KEY": "k", "OPCHAIN_KITE_TOKEN_FILE": str(folder)}
    command = ["run", "--broker", "kite", "--no-api", "-d", str(tmp_path / "data")]
    assert one_line_error(opchain(command, env)) == f"error: {folder}: Is a directory"
    verbose = opchain(["-v", *command], env)
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr  # the detail, asked for
