"""The standalone cluster's authentication and encryption, in a private world: a master and one worker of the
pyspark install on 127.0.0.1, started with the daemon options of processing/spark-compose.yaml and the secret in
their environment, as the compose file starts them. An application that the project's build_session starts with
the secret registers and runs a job on an executor that came up authenticated; one with a wrong secret and one
without authentication are refused, never registered, and named in the master's log. Meanwhile no process shows
the secret on its command line.

Each application is a fresh Python process: this one may hold a local SparkSession already, and a process has
one JVM. Marked integration: up to five JVMs at a time, about 20 s.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from infrastructure.settings import REPO_ROOT
from processing.spark import class_archive

pytestmark = pytest.mark.integration

SPARK_HOME = class_archive.spark_jars_dir().parent
COMPOSE_FILE = REPO_ROOT / "processing" / "spark-compose.yaml"
IMAGE_ROOT = "/opt/tripclick/"  # where the spark-job image holds this repository's files
# Characters a properties file or a shell would read as syntax, around a random core.
SECRET = f"{secrets.token_urlsafe(24)}=:#!\\ x"
# A client's first registration attempt comes once its JVM is up (5-15 s here); Spark would retry twice, 20 s apart.
REFUSAL_SECONDS = 30
# An application as the jobs start one (build_session, a Python UDF on the executor), on the 512 MB worker
# without the 280 MB of jars a pipeline job ships (this job needs none of them).
APPLICATION = """
import os, sys, tempfile
from pyspark.sql import functions as F
from infrastructure.settings import load
from processing.spark.session import build_session

spark = build_session(load(), sys.argv[1], {"spark.executor.memory": "512m", "spark.jars": ""})
print("TEMP", sorted(os.listdir(tempfile.gettempdir())), flush=True)
doubled = F.udf(lambda n: 2 * n, "long")
print("SUM", spark.range(1000).select(doubled("id").alias("n")).groupBy().sum("n").first()[0], flush=True)
spark.stop()
"""
# What any container on the Docker network could run: PySpark with no authentication at all.
UNAUTHENTICATED = """
import sys
from pyspark.sql import SparkSession

SparkSession.builder.master(sys.argv[2]).appName(sys.argv[1]).config("spark.executor.memory", "512m") \\
    .getOrCreate().range(10).count()
"""


@dataclass(frozen=True)
class Cluster:
    master_url: str
    json_url: str
    master_log: Path
    work_dir: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def compose_environment(service: str) -> dict[str, str]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["environment"]


def daemon_environment(service: str, options_variable: str, work: Path) -> dict[str, str]:
    """The compose service's daemon options (with this checkout for the image's files), the secret in the
    environment, small heaps, the project's JVM options."""
    options = compose_environment(service)[options_variable].replace(IMAGE_ROOT, f"{REPO_ROOT}/")
    java = " ".join(o for o in (class_archive.java_option(), os.environ.get("SPARK_JAVA_OPTIONS", "")) if o)
    return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
            "SPARK_DAEMON_JAVA_OPTS": java, options_variable: options, "_SPARK_AUTH_SECRET": SECRET,
            "SPARK_WORKER_DIR": str(work), "SPARK_LOG_DIR": str(work)}


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """The process and everything it started (its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def master_state(cluster: Cluster) -> dict:
    return requests.get(cluster.json_url, timeout=5).json()


def wait_for_worker(json_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(json_url, timeout=5).json()["aliveworkers"] == 1:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no worker registered with the master within {timeout:.0f} s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("spark-auth")
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{master_ui}/json/", work / "master.log",
                      work / "worker")
    master = start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(master_ui)],
                   daemon_environment("spark-master", "SPARK_MASTER_OPTS", work), cluster.master_log)
    worker = None
    try:
        worker = start([spark_class, "org.apache.spark.deploy.worker.Worker", "--cores", "1", "--memory", "512m",
                        "--webui-port", str(worker_ui), cluster.master_url],
                       daemon_environment("spark-worker-1", "SPARK_WORKER_OPTS", cluster.work_dir), work / "worker.log")
        wait_for_worker(cluster.json_url)
        yield cluster
    finally:
        for process in (worker, master):
            if process is not None:
                stop(process)


def application_env(cluster: Cluster, secret: str, temp: Path) -> dict[str, str]:
    temp.mkdir()
    return {**os.environ, "ENV_FILE": "/nonexistent", "PLATFORM_MODE": "local", "SPARK_MASTER": cluster.master_url,
            "SPARK_AUTH_SECRET": secret, "SPARK_DRIVER_MEMORY": "512m", "LAKE_ROOT": str(temp.parent / "lake"),
            "SPARK_LOCAL_IP": "127.0.0.1", "TMPDIR": str(temp)}


def commands_showing(texts: list[str]) -> list[str]:
    """The command lines of this host's processes that contain one of `texts`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        if any(text in argv for text in texts):
            found.append(argv.replace("\0", " "))
    return found


def watch(processes: list[subprocess.Popen], secrets_given: list[str], timeout: float, done) -> list[str]:
    """Poll until done(), every process ended or the timeout; the command lines that showed a secret meanwhile."""
    shown: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done() and any(p.poll() is None for p in processes):
        shown += commands_showing(secrets_given)
        time.sleep(0.25)
    return shown


def eventually(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.5)
    return predicate()


def test_the_compose_daemons_get_the_secret_from_their_environment_only():
    for service, options in (("spark-master", "SPARK_MASTER_OPTS"), ("spark-worker-1", "SPARK_WORKER_OPTS"),
                             ("spark-worker-2", "SPARK_WORKER_OPTS")):
        environment = compose_environment(service)
        assert environment["_SPARK_AUTH_SECRET"].startswith("${SPARK_AUTH_SECRET:?"), service
        assert "SPARK_AUTH_SECRET" not in environment[options] and "secret" not in environment[options], service
        assert {"-Dspark.authenticate=true", "-Dspark.network.crypto.enabled=true",
                "-Dspark.network.crypto.saslFallback=false"} <= set(environment[options].split()), service


def test_an_application_with_the_secret_registers_and_runs_on_an_authenticated_executor(cluster, tmp_path):
    app = f"auth-ok-{tmp_path.name}"
    process = start([sys.executable, "-c", APPLICATION, app], application_env(cluster, SECRET, tmp_path / "tmp"),
                    tmp_path / "app.log")
    try:
        shown = watch([process], [SECRET], 120, lambda: False)
        output = (tmp_path / "app.log").read_text()
        assert process.wait() == 0, output[-3000:]
    finally:
        stop(process)
    assert shown == []
    assert "SUM 999000" in output
    assert "TEMP []" in output  # the properties file was gone once the session had started
    assert eventually(lambda: app in [entry["name"] for entry in master_state(cluster)["completedapps"]])
    # The worker started the executor with the switches (the driver, which requires them, then accepted it).
    commands = [log.read_text().splitlines()[0] for log in cluster.work_dir.glob("app-*/*/stderr")]
    assert commands and all('"-Dspark.authenticate=true"' in command and '"-Dspark.network.crypto.enabled=true"'
                            in command for command in commands), commands


def test_applications_without_the_secret_are_refused_and_named_in_the_master_log(cluster, tmp_path):
    wrong, none = f"auth-wrong-{tmp_path.name}", f"auth-none-{tmp_path.name}"
    already_logged, wrong_secret = cluster.master_log.read_text(), secrets.token_urlsafe(32)
    clients = [start([sys.executable, "-c", APPLICATION, wrong],
                     application_env(cluster, wrong_secret, tmp_path / "wrong"), tmp_path / "wrong.log"),
               start([sys.executable, "-c", UNAUTHENTICATED, none, cluster.master_url],
                     application_env(cluster, "", tmp_path / "none"), tmp_path / "none.log")]
    registered: set[str] = set()

    def both_refused() -> bool:
        state = master_state(cluster)
        registered.update(entry["name"] for entry in state["activeapps"] + state["completedapps"])
        logged = cluster.master_log.read_text()[len(already_logged):]
        return "Authentication failed for client" in logged and "Unexpected challenge message from client" in logged

    try:
        shown = watch(clients, [SECRET, wrong_secret], REFUSAL_SECONDS, both_refused)
        refused = both_refused()
    finally:
        for client in clients:
            stop(client)
    logged = cluster.master_log.read_text()[len(already_logged):]
    assert refused, f"master log since the clients started:\n{logged[-3000:]}"
    assert not {wrong, none} & registered
    assert shown == []
