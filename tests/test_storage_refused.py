"""Writes the operating system refuses (issue 13, case 18): a full disk, a file-size limit, a
folder that cannot be written. ``opchain run`` lives through them (one line a restart, storage
``down`` in its health, no traceback) and goes on when writing comes back, keeping every line
it had stored; ``opchain demo`` stops with one line.

The refusals are the kernel's own: ``/dev/full`` answers every write with ENOSPC (the file the
store writes first is made a link to it), and a file-size limit (RLIMIT_FSIZE, set in the child
before it starts opchain) makes a write past it fail with EFBIG. Both are lifted while the
collector runs: the link removed, the limit raised with prlimit(2).
"""

import errno
import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from opchain.health import state
from opchain.health.storage import StorageDown, StorageHealth, refusal
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.store.appendlog import write_atomic

from .sessions import DAY, record, tree_bytes

SESSION = calendar.session("NSE", DAY)
assert SESSION is not None
RESTART = re.compile(
    r"WARNING opchain\.health\.supervisor: collector failed \(StorageDown: cannot write "
    r"(?:under )?\S+: (?P<reason>[^)]+)\); restart (?P<n>\d+) in [\d.]+ s$"
)
# Said as each session starts, besides the refusals: the calendar's warning when the simulated
# day is near the end of its holiday tables, and the plan of what a cycle sees.
AT_START = re.compile(
    r"WARNING opchain\.pipeline: the NSE holiday tables end on |^Analytics over the |"
    r"^A \S+ s cadence cannot be kept"
)
LIMITED = (  # the child: a file-size limit of its own (soft; the hard one stays), then opchain
    "import os, resource, sys; hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'opchain', *sys.argv[1:]])"
)


def dump_tmp(data_dir: Path) -> Path:
    """The file the store writes first in a session: the instruments dump, by way of its
    temporary file."""
    return data_dir / "instruments" / f"{DAY}.csv.tmp"


def refuse(how: str, data_dir: Path) -> tuple[list[str], Callable[[int], None]]:
    """The command prefix that runs opchain under the refusal, and how to lift it."""
    if how == "disk full":
        dump_tmp(data_dir).parent.mkdir(parents=True, exist_ok=True)
        dump_tmp(data_dir).symlink_to("/dev/full")

        def gone(pid: int) -> None:  # opchain removed its failed temporary file: the link
            assert not dump_tmp(data_dir).is_symlink()

        return [sys.executable, "-m", "opchain"], gone
    infinity = resource.RLIM_INFINITY

    def lift(pid: int) -> None:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (infinity, infinity))

    return [sys.executable, "-c", LIMITED], lift


REASONS = {"disk full": "No space left on device", "file too large": "File too large"}
# The restart at which the refusal is lifted: a full disk refuses one temporary file, which
# opchain removes when its write fails (the refusal with it); a size limit lasts until lifted.
LIFTED_AT = {"disk full": 1, "file too large": 2}


@pytest.fixture(scope="module")
def morning(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's first five minutes, every 5 s: what is already stored."""
    folder = tmp_path_factory.mktemp("morning")
    record(folder, until=SESSION.open + timedelta(minutes=5), cadence_seconds=5)
    return folder


def copy_of(source: Path, target: Path) -> Path:
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


def lines_of(process: "subprocess.Popen[str]") -> Iterator[str]:
    assert process.stderr is not None
    for line in iter(process.stderr.readline, ""):  # blocks until opchain speaks; "" at exit
        yield line.rstrip("\n")


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["disk full", "file too large"])
def test_run_outlives_refused_writes_and_keeps_what_it_stored(
    morning: Path, tmp_path: Path, how: str
) -> None:
    data = copy_of(morning, tmp_path / "data")
    before = tree_bytes(data)
    prefix, lift = refuse(how, data)
    command = [*prefix, "run", "--broker", "sim", "--no-api", "-d", str(data), "--cadence", "5"]
    command += ["--start", f"{DAY}T09:20:00", "--speed", "5"]
    seen: list[str] = []
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        try:
            for line in lines_of(process):  # every line is one of three kinds
                if AT_START.search(line):
                    continue
                seen.append(line)
                restart = RESTART.search(line)
                if restart is not None:
                    assert restart["reason"] == REASONS[how]
                    if int(restart["n"]) == LIFTED_AT[how]:
                        # Written before the restart line: storage down, saying why.
                        down = state.read(data)["storage"]
                        assert down["status"] == "down" and REASONS[how] in down["detail"]
                        lift(process.pid)
                elif line == f"storage: writing again under {data}":
                    process.send_signal(signal.SIGINT)
                else:
                    assert line == "stopped; every file is complete up to the last snapshot", seen
        except BaseException:
            process.kill()
            raise
    assert process.returncode == 0, "\n".join(seen)
    restarts = [RESTART.search(line) for line in seen]
    assert [int(m["n"]) for m in restarts if m] == list(range(1, sum(map(bool, restarts)) + 1))
    assert sum(map(bool, restarts)) >= LIFTED_AT[how]
    others = [line for line, m in zip(seen, restarts, strict=True) if m is None]
    assert others == [
        f"storage: writing again under {data}",
        "stopped; every file is complete up to the last snapshot",
    ]
    after = tree_bytes(data)
    for name, content in before.items():  # every line stored before is still there
        assert after[name].startswith(content), name
    grown = [name for name in before if len(after[name]) > len(before[name])]
    assert grown, "nothing was recorded after writing came back"
    ok = state.read(data)["storage"]
    assert (ok["status"], ok["detail"]) == ("ok", f"writing again under {data}")


@pytest.mark.e2e
def test_demo_on_a_full_disk_is_one_line_and_changes_nothing(morning: Path, tmp_path: Path) -> None:
    data = copy_of(morning, tmp_path / "data")
    before = tree_bytes(data)
    prefix, _ = refuse("disk full", data)
    done = subprocess.run([*prefix, "demo", "-d", str(data), "--date", str(DAY)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {data}: No space left on device; every file is complete up to its last line: "
        "rerun to continue"
    ]
    assert tree_bytes(data) == before


# --- the storage component, in-process ------------------------------------------------------


def test_a_refused_write_anywhere_in_the_chain_is_storage_down(tmp_path: Path) -> None:
    clock = VirtualClock(SESSION.open)
    said: list[str] = []
    storage = StorageHealth(tmp_path, clock, say=said.append)
    storage.stored()
    assert state.read(tmp_path)["storage"]["detail"] == "writing" and said == []
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")  # a flush: no file named
        except OSError:
            raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "a.csv")) from None
    except OSError as err:
        assert refusal(err) is err
        with pytest.raises(StorageDown, match=r"cannot write \S+a\.csv: Read-only file system"):
            storage.check(err)
    down = state.read(tmp_path)["storage"]
    assert down["status"] == "down" and down["detail"].endswith("a.csv: Read-only file system")
    flushed = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(StorageDown, match=f"cannot write under {tmp_path}: No space left"):
        storage.check(flushed)
    storage.check(ConnectionResetError(errno.ECONNRESET, "reset"))  # not storage: nothing
    storage.check(ValueError("a bug"))
    assert state.read(tmp_path)["storage"]["status"] == "down"
    storage.stored()
    storage.stored()
    assert said == [f"storage: writing again under {tmp_path}"]  # once
    assert state.read(tmp_path)["storage"]["status"] == "ok"


def test_refusal_finds_the_named_write_among_the_errors_raised_while_closing() -> None:
    first = OSError(errno.EACCES, "Permission denied", "/data/csv_data/x.csv")
    try:
        try:
            raise first
        finally:
            raise OSError(errno.ENOSPC, "No space left on device")  # closing the other files
    except OSError as err:
        assert refusal(err) is first
    assert refusal(KeyError("x")) is None
    assert refusal(OSError(errno.ECONNREFUSED, "refused")) is None
    assert os.strerror(errno.EFBIG) == REASONS["file too large"]


def test_a_whole_file_write_that_fails_leaves_the_old_file_and_no_temporary(
    tmp_path: Path,
) -> None:
    """A full disk during write_atomic: the error reaches the caller, the old file is as it
    was, and no half-written ``.tmp`` is left beside it (the kernel's own ENOSPC, through a
    temporary path that leads to /dev/full)."""
    path = tmp_path / "live" / "NIFTY.json"
    write_atomic(path, b"old")
    tmp = path.with_name(path.name + ".tmp")
    tmp.symlink_to("/dev/full")
    with pytest.raises(OSError) as caught:
        write_atomic(path, b"new" * 10_000, durable=False)
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old"
    assert not tmp.exists() and not tmp.is_symlink()
