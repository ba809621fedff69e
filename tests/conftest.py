"""Shared fixtures. Integration tests reach the real local platform through `platform`."""
from __future__ import annotations

import pytest

from infrastructure.local.platform import ensure_up
from infrastructure.settings import Settings, load


@pytest.fixture(scope="session")
def platform() -> Settings:
    """The shared local platform (Kafka x3, PostgreSQL, S3 API), started if it is not healthy."""
    return ensure_up()


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test run, built like every job's (jars on the driver classpath).

    Spark loads spark.jars onto the driver only when the JVM starts, so the first session of the
    process must be this one: a plain builder elsewhere would leave the Kafka source unfindable.
    """
    from processing.spark.session import build_session

    session = build_session(load({"SPARK_MASTER": "local[2]", "LAKE_ROOT": "/tmp/unused"}), "pytest")
    yield session
    session.stop()


def pytest_collection_modifyitems(config, items):
    """Every test is either `unit` or `integration`, so `make test-fast` can never skip one by accident."""
    unmarked = [item.nodeid for item in items
                if not ({"unit", "integration"} & {m.name for m in item.iter_markers()})]
    if unmarked:
        raise pytest.UsageError("tests without a unit/integration marker:\n  " + "\n  ".join(unmarked))
