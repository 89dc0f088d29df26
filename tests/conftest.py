import os
from datetime import datetime

import pytest

from opchain.market import calendar

from .sessions import DAY

# `opchain run` serves the API beside the collector, by default on port 8000; the tests that
# start it (and their subprocesses, which inherit this) take any free port instead.
os.environ.setdefault("OPCHAIN_API_PORT", "0")
# By default a run quotes the whole chain when its cadence has room (issue 13, case 11): about
# 3,000 legs a cycle. The tests record the band of watched offsets, 25 times fewer, unless they
# say otherwise (the tests of the default pass full_chain=None).
os.environ.setdefault("OPCHAIN_FULL_CHAIN", "false")


@pytest.fixture
def session_open() -> datetime:
    session = calendar.session("NSE", DAY)
    assert session is not None
    return session.open
