"""Component health as files: ``<data_dir>/health/<component>.json``, each written whole.

A component (``broker``, ``storage``, ...) reports ``ok``, ``degraded`` or ``down`` with a
one-line detail; whoever watches (``/health``, ``opchain health``, alerts) reads the files, so
the state outlives the process that wrote it: a collector stopped by an expired token still
says why after it has exited.

Each state is also held in memory, and this process's own states are what :func:`read` returns
for its components: a data directory that cannot be written (a full disk, a read-only mount,
the very things worth reporting) still shows in this process's ``/health``, metrics and alerts.
Reporting never raises; a state file that could not be written is logged at debug level.
"""

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from opchain.store import layout
from opchain.store.appendlog import write_atomic
from opchain.store.regular import read_regular

log = logging.getLogger(__name__)

Status = Literal["ok", "degraded", "down"]
COLLECTOR = "collector"  # the component ``opchain run`` records with
BROKER = "broker"  # the broker's login, as ``run`` and ``collect`` checked it with Kite


class State(TypedDict):
    component: str
    status: Status
    detail: str
    since: str  # ISO-8601, IST
    # When the process's run of the component began (ISO-8601, IST): a supervisor's first
    # start, kept through its restarts. The storage check gives a collector that long.
    started: NotRequired[str]


_held: dict[tuple[Path, str], State] = {}  # this process's states, by data directory, component
_lock = threading.Lock()  # checks read the states in worker threads


def report(
    data_dir: Path,
    component: str,
    status: Status,
    detail: str,
    at: datetime,
    started: datetime | None = None,
) -> None:
    """Record ``component``'s state; the file is replaced whole (a temporary file, a rename)."""
    state = State(component=component, status=status, detail=detail, since=at.isoformat())
    if started is not None:
        state["started"] = started.isoformat()
    with _lock:
        _held[data_dir.absolute(), component] = state
    path = layout.health_path(data_dir, component)
    try:
        write_atomic(path, (json.dumps(state, indent=1) + "\n").encode())
    except OSError as err:
        log.debug("%s state not written to %s: %s", component, path, err)


def forget(data_dir: Path, component: str) -> None:
    """Drop ``component``'s state: a process gone for good (a worker stopped, say by an
    autoscaler) leaves nothing for ``/health`` to judge for ever, its last ``down`` least of all."""
    with _lock:
        _held.pop((data_dir.absolute(), component), None)
    path = layout.health_path(data_dir, component)
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        log.debug("%s state not removed from %s: %s", component, path, err)


def read(data_dir: Path) -> dict[str, State]:
    """Every component's last reported state, by component. A file that cannot be read (not
    one this module wrote) reads as that component ``down``, saying so; it never raises."""
    states: dict[str, State] = {}
    root = layout.health_root(data_dir)
    for path in sorted(root.glob("*.json")):
        try:
            body = json.loads(read_regular(path, root))  # never a FIFO
            found = State(component=str(body["component"]), status=body["status"],
                          detail=str(body["detail"]), since=str(body["since"]))  # fmt: skip
            if found["status"] not in ("ok", "degraded", "down"):
                raise ValueError(f"unknown status {found['status']!r}")
            if isinstance(body.get("started"), str):
                found["started"] = body["started"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            detail = f"unreadable health state {path.name}: {err}"
            found = State(component=path.stem, status="down", detail=detail, since="")
        states[found["component"]] = found
    here = data_dir.absolute()
    with _lock:
        states.update({name: held for (folder, name), held in _held.items() if folder == here})
    return dict(sorted(states.items()))
