"""Shared fixtures, how the suite is spread over xdist workers, and where its time went.

Integration tests reach the real local platform through `platform`. `make test` runs two xdist workers
(scheduled by pytest_xdist_make_scheduler below), so one world's waits (a timeline, a container, a JVM
starting) are another's CPU time. WORLDS names the test files that must share one worker, in the order they
start: the slowest first, so the other worker fills the gaps.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pytest

from infrastructure.local.platform import ensure_up
from monitoring import local as monitoring

# The suite's Spark jobs are short: C1 alone compiles enough and leaves the cores to the next job (about a
# quarter less time per job here). Set before any settings are read, so every job and subprocess inherits it.
os.environ.setdefault("SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")
from infrastructure.settings import REPO_ROOT, Settings, load

# group -> test files. A group runs on one worker, in this order, before every ungrouped file (each of those is
# a group of its own). Files in one group share a world (a session fixture) or state no other file may touch
# meanwhile: the live tables' newest date feeds the 15-minute views that the Superset and live tests read.
WORLDS = {
    "docker-mode": ("tests/deployment/test_docker_e2e.py",),
    "airflow-local": ("tests/orchestration/test_airflow_e2e.py",),
    "local-day": ("tests/processing/test_pipeline_e2e.py", "tests/processing/test_live_marts.py",
                  "tests/gold/test_superset.py", "tests/gold/test_live_schema.py", "tests/processing/test_live.py"),
    "backfill": ("tests/orchestration/test_backfill.py",),
    "modes": ("tests/processing/test_modes.py",),
}
WORLD_OF = {path: group for group, paths in WORLDS.items() for path in paths}
TIMELINE = REPO_ROOT / "test-artifacts" / "timeline.csv"
TIME_TABLE_MIN_SECONDS = 2.0  # files below this are summed into one row of the per-file table


@pytest.fixture(scope="session")
def platform() -> Settings:
    """The shared local platform (Kafka x3, PostgreSQL, S3 API) and its monitoring, started if they are not
    healthy, so every job of the suite pushes its metrics and the worlds' checks can query them. Workers take a
    lock first, so only one of them starts them."""
    settings = load()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with (settings.run_dir / "platform.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_up(settings)
        if not all(service.healthy() for service in monitoring.services(settings)):
            monitoring.up(settings)
        return settings


def local_lake_session():
    """The process's SparkSession (started on the first call) set for a local lake."""
    from processing.spark.session import build_session

    return build_session(load({"SPARK_MASTER": "local[2]", "LAKE_ROOT": "/tmp/unused",
                               "SPARK_JAVA_OPTIONS": os.environ["SPARK_JAVA_OPTIONS"]}), "pytest")


@pytest.fixture(scope="session")
def spark_session():
    """The one SparkSession of the test process, built like every job's (jars on the driver classpath).

    Spark loads spark.jars onto the driver only when the JVM starts, so the first session of the
    process must be this one: a plain builder elsewhere would leave the Kafka source unfindable.
    """
    session = local_lake_session()
    yield session
    session.stop()


@pytest.fixture
def spark(spark_session):
    """The shared session set back to a local lake: a world's in-process job may have pointed it at S3,
    whose checkpoint manager cannot write to a local folder."""
    return local_lake_session()


@contextmanager
def _throwaway_cluster():
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


@pytest.fixture
def throwaway_postgres():
    """A private cluster per test (_throwaway_cluster)."""
    with _throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def module_throwaway_postgres():
    """One private cluster for a test file whose tests leave each other's state alone (_throwaway_cluster)."""
    with _throwaway_cluster() as cluster:
        yield cluster


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test is either `unit` or `integration`, so `make test-fast` can never skip one by accident.

    A test that needs the SparkSession (`spark_session`, also behind `spark`) starts a JVM, so it is `slow` by
    that alone: the mark cannot be forgotten on a new Spark test. Runs before `-m` selects, so
    `-m "unit and not slow"` sees it.
    """
    unmarked = [item.nodeid for item in items
                if not ({"unit", "integration"} & {m.name for m in item.iter_markers()})]
    if unmarked:
        raise pytest.UsageError("tests without a unit/integration marker:\n  " + "\n  ".join(unmarked))
    for item in items:
        if "spark_session" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
    rank = {path: n for n, path in enumerate(WORLD_OF)}  # the groups' files in WORLDS order, first
    items.sort(key=lambda item: rank.get(item.location[0], len(rank)))  # stable: the rest keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's load-by-scope scheduling with WORLDS as the scopes (every other file is a scope of its own): a
    group's files run on one worker, one after the other; workers take groups in collection order (see above)."""
    from xdist.scheduler import LoadScopeScheduling

    class WorldScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return WORLD_OF.get(path, path)

    return WorldScheduling(config, log)


class TimeTable:
    """Seconds per test file and per layer (setup, call and teardown together), printed at the end; every test
    phase with its worker and start time in test-artifacts/timeline.csv (which tests overlapped, when)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.started = time.monotonic()
        TIMELINE.parent.mkdir(exist_ok=True)
        self.timeline = TIMELINE.open("w", buffering=1)
        self.timeline.write("worker,start_utc,seconds,phase,outcome,test\n")

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid.split("::")[0]] += report.duration
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "main")
        started = time.strftime("%H:%M:%S", time.gmtime(report.start))
        self.timeline.write(f"{worker},{started},{report.duration:.1f},{report.when},{report.outcome},"
                            f"{report.nodeid}\n")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.seconds:
            return
        write = terminalreporter.write_line
        wall = time.monotonic() - self.started
        total = sum(self.seconds.values())
        layers: dict[str, float] = defaultdict(float)
        for path, seconds in self.seconds.items():
            layers[path.split("/")[1] if path.count("/") > 1 else path] += seconds
        terminalreporter.section("time per layer and per file (setup + call + teardown)")
        write(f"{'layer':<58}{'seconds':>9}{'share':>8}")
        for layer, seconds in sorted(layers.items(), key=lambda kv: -kv[1]):
            write(f"{layer:<58}{seconds:9.1f}{seconds / total:8.1%}")
        write(f"{'file':<58}{'seconds':>9}{'share':>8}")
        small = 0.0
        for path, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            if seconds < TIME_TABLE_MIN_SECONDS:
                small += seconds
                continue
            write(f"{path:<58}{seconds:9.1f}{seconds / total:8.1%}")
        write(f"{f'(files under {TIME_TABLE_MIN_SECONDS:g} s each)':<58}{small:9.1f}{small / total:8.1%}")
        write(f"test time {total:.0f} s in {wall:.0f} s of wall time")


def pytest_configure(config) -> None:
    # Only the process that reports (the xdist controller, or a plain run): workers' reports reach it.
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(TimeTable(), "tripclick-time-table")
