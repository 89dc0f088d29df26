"""Where a session's cycles go: every output, named in one list (DEVELOPERS.md).

A new output is one module with an ``open_output(session) -> Output | None`` and one line
here. The order is the write order: the raw journal before any other file of the cycle, the
profiles after the split files they read, the live views last (the files, then Redis's).
Outputs close in the reverse order, so InfluxDB, listed before the profiles, closes after them
and sends the weekday masters as the day closed them.
"""

from opchain.outputs import analytics, live, overview, profiles, raw, redislive, splits
from opchain.outputs.base import Factory, Output, Session
from opchain.outputs.influx import output as influx
from opchain.outputs.outlets import Outlets, Written, opened

OUTPUTS: tuple[tuple[str, Factory], ...] = (
    ("raw", raw.open_output),
    ("splits", splits.open_output),
    ("overview", overview.open_output),
    ("analytics", analytics.open_output),
    ("influxdb", influx.open_output),
    ("profiles", profiles.open_output),
    ("live", live.open_output),
    ("redis", redislive.open_output),
)

__all__ = ["OUTPUTS", "Factory", "Outlets", "Output", "Session", "Written", "opened"]
