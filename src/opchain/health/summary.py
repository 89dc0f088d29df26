"""One answer to "is opchain healthy?": the checks and the components' states together, the
worst of them on top. ``/health`` returns it, ``opchain health`` prints it."""

from typing import TypedDict

from opchain.health.checks import RANK, Check, worst
from opchain.health.state import State, Status
from opchain.market.ist import to_ist

EXIT_CODES: dict[Status, int] = {"ok": 0, "degraded": 1, "down": 2}


class Entry(TypedDict):
    status: Status
    detail: str
    since: str  # ISO-8601, IST


class Summary(TypedDict):
    status: Status
    checks: dict[str, Entry]


def summarize(checks: list[Check], states: dict[str, State]) -> Summary:
    """Checks and component states by name, sorted; where a running process's component and a
    check share a name, the worse of the two is shown."""
    entries: dict[str, Entry] = {
        name: Entry(status=s["status"], detail=s["detail"], since=s["since"])
        for name, s in states.items()
    }
    for c in checks:
        before = entries.get(c.name)
        if before is None or RANK[c.status] >= RANK[before["status"]]:
            entries[c.name] = Entry(
                status=c.status, detail=c.detail, since=to_ist(c.since).isoformat()
            )
    ordered = dict(sorted(entries.items()))
    return Summary(status=worst(e["status"] for e in ordered.values()), checks=ordered)
