"""Component health as files: ``<data_dir>/health/<component>.json``, each written whole.

A component (``broker``, ``storage``, ...) reports ``ok``, ``degraded`` or ``down`` with a
one-line detail; whoever watches (``/health``, ``opchain health``, alerts) reads the files, so
the state outlives the process that wrote it: a collector stopped by an expired token still
says why after it has exited.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Literal, TypedDict

from opchain.store.appendlog import write_atomic
from opchain.store.regular import read_regular

Status = Literal["ok", "degraded", "down"]


class State(TypedDict):
    component: str
    status: Status
    detail: str
    since: str  # ISO-8601, IST


def report(data_dir: Path, component: str, status: Status, detail: str, at: datetime) -> None:
    """Record ``component``'s state; the file is replaced whole (a temporary file, a rename)."""
    state = State(component=component, status=status, detail=detail, since=at.isoformat())
    path = data_dir / "health" / f"{component}.json"
    write_atomic(path, (json.dumps(state, indent=1) + "\n").encode())


def read(data_dir: Path) -> dict[str, State]:
    """Every component's last reported state, by component. A file that cannot be read (not
    one this module wrote) reads as that component ``down``, saying so; it never raises."""
    states: dict[str, State] = {}
    for path in sorted((data_dir / "health").glob("*.json")):
        try:
            body = json.loads(read_regular(path, data_dir / "health"))  # never a FIFO
            found = State(component=str(body["component"]), status=body["status"],
                          detail=str(body["detail"]), since=str(body["since"]))  # fmt: skip
            if found["status"] not in ("ok", "degraded", "down"):
                raise ValueError(f"unknown status {found['status']!r}")
        except (OSError, ValueError, KeyError, TypeError) as err:
            detail = f"unreadable health state {path.name}: {err}"
            found = State(component=path.stem, status="down", detail=detail, since="")
        states[found["component"]] = found
    return states
