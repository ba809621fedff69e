"""Shared fixtures. Integration tests reach the real local platform through `platform`."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

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


@pytest.fixture
def throwaway_postgres():
    """A fresh private PostgreSQL 15 cluster: superuser `postgres` with trust over its own Unix socket in
    HOME, a free port, no TCP listener; never the shared platform's. Yields {"PGHOST": HOME, "PGPORT": port}.
    Its folder is outside pytest's root-only tmp tree, since the server runs as the `postgres` OS user."""
    from infrastructure.local.postgres import AS_ROOT, PG_BIN

    def as_postgres(argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if AS_ROOT else argv

    assert (PG_BIN / "initdb").exists(), "PostgreSQL 15 is missing: run `make setup`"
    home = Path(tempfile.mkdtemp(prefix="tripclick-throwaway-pg-"))
    if AS_ROOT:
        shutil.chown(home, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = home / "data"
    subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                "--no-locale", "-E", "UTF8"]), check=True, capture_output=True)
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(home / "log"), "-o",
                                f"-p {port} -k {home} -c listen_addresses=''", "start"]),
                   check=True, capture_output=True)
    try:
        yield {"PGHOST": str(home), "PGPORT": str(port)}
    finally:
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test is either `unit` or `integration`, so `make test-fast` can never skip one by accident.

    A test that takes the `spark` fixture starts a JVM, so it is `slow` by that alone: the mark cannot be
    forgotten on a new Spark test. Runs before `-m` selects, so `-m "unit and not slow"` sees it.
    """
    unmarked = [item.nodeid for item in items
                if not ({"unit", "integration"} & {m.name for m in item.iter_markers()})]
    if unmarked:
        raise pytest.UsageError("tests without a unit/integration marker:\n  " + "\n  ".join(unmarked))
    for item in items:
        if "spark" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
