"""A recorded stretch of the simulated session for the API tests, made once per test run."""

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from opchain.market import calendar

from .sessions import DAY, record

MINUTES = 6  # past a few minute boundaries: the profiles have rows
KEY = "test-key-1"


def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the first MINUTES of DAY (split, analytics, raw, profiles,
    live files). Tests that change it copy it first (:func:`copy_of`)."""
    root = tmp_path_factory.getbasetemp() / "api-data"
    if not (root / "live").exists():
        session = calendar.session("NSE", DAY)
        assert session is not None
        record(root, until=session.open + timedelta(minutes=MINUTES))
    return root


def copy_of(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
