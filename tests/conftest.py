"""Shared fixtures. Integration tests reach the real local platform through `platform`."""
from __future__ import annotations

import pytest

from infrastructure.local.platform import ensure_up
from infrastructure.settings import Settings


@pytest.fixture(scope="session")
def platform() -> Settings:
    """The shared local platform (Kafka x3, PostgreSQL, S3 API), started if it is not healthy."""
    return ensure_up()
