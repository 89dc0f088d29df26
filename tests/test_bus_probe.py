"""A worker against what a demanding user meets: a Redis that refuses its password, a data
directory that refuses its writes. It says one clear line, and loses nothing."""

import re
import resource
import shutil
import sys
from pathlib import Path

import pytest

from .servers_bus import chorus, redis_at, tree
from .test_bus_e2e import CLOSED, DAY, ENV, INDICES, _same
from .test_storage_refused import LIMITED


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded pipeline's data directory for the day."""
    data = tmp_path_factory.mktemp("embedded")
    with chorus(ENV) as run:
        assert run.start("demo", "-d", str(data), "--date", DAY).finish() == 0
    return data


def test_a_wrong_password_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    """No wait mends a wrong password: the worker does not retry it forever as 'unreachable'."""
    with redis_at(tmp_path / "redis", options=("--requirepass", "right")) as (url, _):
        wrong = url.replace("redis://", "redis://:wrong@")
        with chorus(ENV) as bus:
            worker = bus.start("worker", "--bus", wrong, "-d", str(tmp_path / "data"))
            assert worker.finish() == 2
    said = "".join(worker.seen)
    assert "refused the credentials" in said, said
    assert "Traceback" not in said and "unreachable" not in said, said


def test_a_worker_whose_writes_are_refused_writes_every_cycle_once_they_work(
    reference: Path, tmp_path: Path
) -> None:
    """A file-size limit refuses the worker's first cycle half-way through its files; it says
    so (not 'Redis unreachable'), acknowledges nothing of it, and once the limit is lifted
    reopens the session from its files: every file is the embedded run's."""
    data = tmp_path / "data"
    dump = Path("instruments", f"{DAY}.csv")  # the one file over the limit: there already
    (data / dump).parent.mkdir(parents=True)
    shutil.copy(reference / dump, data / dump)
    with redis_at(tmp_path / "redis") as (url, _), chorus(ENV) as bus:
        limited = [sys.executable, "-c", LIMITED.replace("64 * 1024", "12000")]
        worker = bus.start("-v", "worker", "--bus", url, "-d", str(data), "--name", "a",
                           program=limited)  # fmt: skip
        bus.wait_for(r"taken \(token", count=len(INDICES))
        collector = bus.start("collect", "--bus", url, "-d", str(tmp_path / "c"), "--date", DAY)
        said = bus.wait_for(r"storage: cannot write|Redis unreachable", alive=worker)
        assert re.search(r"cannot write .*: File too large; .* trying again", said[0]), said
        infinity = resource.RLIM_INFINITY
        resource.prlimit(worker.process.pid, resource.RLIMIT_FSIZE, (infinity, infinity))
        bus.wait_for(r"storage: writing again", alive=worker)
        bus.wait_for(CLOSED, count=len(INDICES), alive=worker)
        assert collector.finish() == 0
    assert not [line for line in worker.seen if "Redis unreachable" in line]
    _same(tree(data), tree(reference))
