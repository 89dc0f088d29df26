import os
from datetime import datetime

import pytest

from opchain.market import calendar

from .sessions import DAY

# `opchain run` serves the API beside the collector, by default on port 8000; the tests that
# start it (and their subprocesses, which inherit this) take any free port instead.
os.environ.setdefault("OPCHAIN_API_PORT", "0")


@pytest.fixture
def session_open() -> datetime:
    session = calendar.session("NSE", DAY)
    assert session is not None
    return session.open
