"""SIGTERM (how ``docker stop``, Kubernetes and systemd stop a process) stops a recorder as
Ctrl-C does: every file complete, the summary line said, exit code 0, and its state saying it
stopped, so that ``/health`` of an API instance over the same data directory does not report a
collector that is gone as running."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from opchain.health import state

DAY = "2026-11-20"


def stop_after(command: list[str], cue: str) -> tuple[int, list[str]]:
    """Start ``opchain COMMAND``, SIGTERM it once a line containing ``cue`` is said, and return
    its exit code and every line it said on stderr."""
    said: list[str] = []
    argv = [sys.executable, "-m", "opchain", *command]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with process:
        try:
            assert process.stderr is not None
            for line in iter(process.stderr.readline, ""):  # blocks until it speaks; "" at exit
                said.append(line.rstrip("\n"))
                if cue in line and process.returncode is None:
                    process.send_signal(signal.SIGTERM)
        except BaseException:
            process.kill()
            raise
    return process.returncode, said


@pytest.mark.e2e
def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    command = ["run", "--broker", "sim", "--no-api", "-d", str(tmp_path), "--cadence", "5"]
    command += ["--start", f"{DAY}T09:20:00", "--speed", "5"]
    code, said = stop_after(command, "Analytics over")  # said once its session is planned
    assert code == 0, said
    assert said[-1] == "stopped; every file is complete up to the last snapshot", said
    collector = state.read(tmp_path)[state.COLLECTOR]
    assert (collector["status"], collector["detail"]) == ("down", "stopped")
    for path in tmp_path.rglob("*.csv"):
        assert path.read_bytes().endswith(b"\n"), f"{path}: a torn last line"


@pytest.mark.e2e
def test_collect_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # No Redis there: the cycles go to the spool, which a clean stop leaves whole.
    command = ["collect", "--bus", "redis://127.0.0.1:1/0", "-d", str(tmp_path)]
    command += ["--date", DAY, "--speed", "5"]
    code, said = stop_after(command, "spooling to")
    assert code == 0, said
    assert said[-1] == "stopped; every published cycle is in Redis or in the spool", said
    collector = state.read(tmp_path)[state.COLLECTOR]
    assert (collector["status"], collector["detail"]) == ("down", "stopped")
