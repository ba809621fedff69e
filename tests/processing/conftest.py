"""The processing tests' shared world (tests/processing/local_day.py)."""
from __future__ import annotations

import pytest

from tests.processing import local_day as world


@pytest.fixture(scope="session")
def local_day(platform, spark_session, tmp_path_factory):
    """The local-mode day with its faults, built once per test run; tests only read it."""
    yield from world.build(platform, spark_session, tmp_path_factory.mktemp("local-day"))
