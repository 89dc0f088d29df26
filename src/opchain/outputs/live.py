"""The live files: the newest ``Live`` message per index for an API in another process, from
the IVs and Greeks the cycle already holds. Not durable: it never decides where a restart
resumes."""

from datetime import datetime

from opchain.merge.cycle import Cycle
from opchain.outputs.base import Session
from opchain.store.live import LiveFiles


class Live:
    name = "live"
    durable = False

    def __init__(self, session: Session) -> None:
        self.files = LiveFiles(session.settings.data_dir, session.settings.rate)

    def reach(self) -> datetime | None:
        return None

    def write(self, cycle: Cycle) -> None:
        self.files.offer(cycle)

    def close(self, day_over: bool) -> None:
        self.files.flush()


def open_output(session: Session) -> Live:
    return Live(session)
