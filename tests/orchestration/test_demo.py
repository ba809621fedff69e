"""The demo's Gold summary covers exactly the marts of gold/marts.py (pure)."""
from __future__ import annotations

import pytest

from gold import marts
from orchestration import demo

pytestmark = pytest.mark.unit


def test_every_mart_has_one_headline_query_of_its_own_table():
    assert list(demo.HEADLINES) == list(marts.NAMES)
    assert all("FROM {table} WHERE event_date = %s" in query for query, _ in demo.HEADLINES.values())
