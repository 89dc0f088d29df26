from datetime import datetime

import pytest

from opchain.market import calendar

from .sessions import DAY


@pytest.fixture
def session_open() -> datetime:
    session = calendar.session("NSE", DAY)
    assert session is not None
    return session.open
