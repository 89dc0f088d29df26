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
    """Every component's last reported state, by component."""
    states: dict[str, State] = {}
    for path in sorted((data_dir / "health").glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        states[body["component"]] = body
    return states
