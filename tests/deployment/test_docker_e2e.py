"""Docker mode for real: one day through Airflow -> TLS Docker API -> containers, from the compose files.

What the deployment guide (infrastructure/README.md, "The sequence") does on five hosts, on
this machine: a private Docker engine stands for the web servers and the Spark host (TCP 2376, TLS,
certificates from make-docker-certs.sh); the project images are built by `make images` on the local
Debian base; the unmodified compose files start the Spark master and two workers, Airflow and
Superset with an env file made by `make docker-secrets`. Kafka, PostgreSQL and the S3 API cannot be
pulled here: they are the native local-mode services of a private platform, bound to the engine's
bridge address, so containers and this process reach them at the same non-loopback address.

The daily DAG runs with PIPELINE_RUNNER=docker at TIME_SCALE 240 (with the small knobs a test sets: the stream's
warm-up and drain, the retry delay); one producer container is killed mid-run and its retry must finish the day
exactly. At the same time, in the same Airflow, tripclick_backfill loads the two following dates through the same
containers. Marts in PostgreSQL must equal, row for row, the plain-Python computation of tests/processing/scenario.py
over the day files, the same oracle local mode's end-to-end test meets; Superset, started from its compose file,
serves the day's numbers from them. The monitoring host's compose file (all but Grafana, whose image cannot be had
here) runs on the project image; its Prometheus must hold what the day's containers pushed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from infrastructure.docker import engine as docker_engine
from infrastructure.local.s3 import client as s3_client
from infrastructure.settings import REPO_ROOT, load, read_env_file
from messaging.contract import SOURCE_SERVERS
from monitoring.config import COMPOSE_TARGETS, render
from gold.superset.api import SupersetClient
from gold.superset.provision import DASHBOARD_SLUG
from orchestration.airflow_api import AirflowApi
from orchestration.steps import BACKFILL_DAG_ID, DAG_ID
from tests.processing.helpers import postgres_rows
from tests.gold.superset_helpers import ASSET_COUNTS, run_saved_query
from tests.processing.scenario import assert_marts_match, expected_marts

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ENGINE_ADDRESS = docker_engine.DEFAULT_ADDRESS
IP = ENGINE_ADDRESS.split("/")[0]
NETWORK = "tripclick"
NETWORK_SUBNET = "172.31.251.0/24"
DAY = "2024-03-01"
BACKFILL_DATES = tuple((date.fromisoformat(DAY) + timedelta(days=n)).isoformat() for n in (1, 2))
EVENTS = 3000
TIME_SCALE = 240  # the producers' hour in 15 s
LOCAL_BASE = "tripclick-pipeline/debian-python:bookworm"
HOST_CA_CERTS = "/usr/local/share/ca-certificates"
COMPOSE = {"spark": "processing/spark-compose.yaml", "airflow": "orchestration/docker-compose.yaml",
           "gold": "gold/docker-compose.yaml", "monitoring": "monitoring/docker-compose.yaml"}
MONITORING_SERVICES = ("prometheus", "alertmanager", "pushgateway", "node-exporter", "postgres-exporter",
                       "statsd-exporter")
DAY_STEPS = ("batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile")
# Addresses and ports of this machine's stand-in hosts (everything on the engine's bridge address).
# SPARK_CORES_MAX 1: each application takes one 1 GB executor on one worker, so the daily and the backfill
# applications run side by side on the two workers instead of waiting for each other (both runs 292 -> 245 s).
OVERRIDES = {
    "PUBLISH_ADDRESS": IP, "KAFKA_HOST": IP,
    "KAFKA_BROKERS": f"{IP}:19092,{IP}:19093,{IP}:19094",
    "POSTGRES_HOST": IP, "POSTGRES_PORT": "15433",
    "S3_ENDPOINT": f"http://{IP}:19000", "LAKE_ROOT": "s3a://tripclick-lake/",
    "AWS_ACCESS_KEY_ID": "e2e-" + uuid.uuid4().hex[:12], "AWS_SECRET_ACCESS_KEY": uuid.uuid4().hex,
    "AIRFLOW_PORT": "18480", "SUPERSET_PORT": "18488", "SPARK_MASTER_UI_PORT": "18481",
    "SPARK_WORKER_CORES": "2", "SPARK_WORKER_MEMORY": "1g", "SPARK_WORKER_CONTAINER_MEMORY": "1536m",
    "SPARK_CORES_MAX": "1", "SPARK_DRIVER_MEMORY": "512m", "KAFKA_HEAP": "256m",
    "DOCKER_URL_WEBSERVER0": f"tcp://{IP}:2376", "DOCKER_URL_WEBSERVER1": f"tcp://{IP}:2376",
    "DOCKER_URL_SPARK": f"tcp://{IP}:2376", "DOCKER_NETWORK": NETWORK,
    "AIRFLOW_USE_JOB_SCHEDULE": "False", "TIME_SCALE": str(TIME_SCALE), "PIPELINE_MAX_RETRIES": "2",
    "STREAM_WARM_UP_ROWS": "2000", "STREAM_DRAIN_SECONDS": "15", "PIPELINE_RETRY_DELAY_SECONDS": "5",
    "SPARK_JAVA_OPTIONS": os.environ["SPARK_JAVA_OPTIONS"],
    # Alerts are proven by tests/orchestration/test_airflow_e2e.py; here nothing listens (refused at once).
    "AIRFLOW_PUBLIC_URL": f"http://{IP}:18480", "ALERT_SMTP_SMARTHOST": f"{IP}:9",
    "ALERT_EMAIL_FROM": "alerts@tripclick.test", "ALERT_EMAIL_TO": "oncall@tripclick.test",
    "ALERT_SLACK_WEBHOOK_URL": f"http://{IP}:9/slack",
    # The monitoring compose file's published Pushgateway and StatsD port, as step hosts and Airflow reach them.
    "PUSHGATEWAY_URL": f"http://{IP}:9091", "STATSD_HOST": IP,
}


def log(message: str) -> None:
    print(f"[docker-e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv: list[str], env: dict[str, str], timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


class Deployment:
    def __init__(self, work: Path):
        self.work = work
        self.engine = docker_engine.Engine(work / "engine", work / "certs", ENGINE_ADDRESS)
        self.env_file = work / ".env"
        self.docker_env = self.engine.client_env()
        self.timings: dict[str, float] = {}

    @property
    def values(self) -> dict[str, str]:
        return read_env_file(self.env_file)

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return run(["docker", *args], self.docker_env, timeout, check)

    def compose(self, layer: str, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["docker-compose", "--env-file", str(self.env_file), "-p", f"tripclick-e2e-{layer}",
                "-f", COMPOSE[layer]]
        result = run([*argv, *args], self.docker_env, timeout, check=False)
        if check and result.returncode != 0:  # the containers' own last words say why, compose's do not
            logs = run([*argv, "logs", "--no-color", "--tail", "40"], self.docker_env, check=False).stdout
            raise AssertionError(f"docker-compose {' '.join(args)} ({layer}) exited {result.returncode}:\n"
                                 f"{result.stderr[-3000:]}\ncontainer logs:\n{logs[-6000:]}")
        return result

    def timed(self, name: str, action) -> None:
        started = time.monotonic()
        action()
        self.timings[name] = round(time.monotonic() - started, 1)
        log(f"{name}: {self.timings[name]} s")


def make_env_file(d: Deployment) -> None:
    """`make docker-secrets` from the shipped template, then this machine's addresses."""
    run([sys.executable, "-m", "infrastructure.docker.secrets", "--template", ".env.docker.example",
         "--out", str(d.env_file), "--force"], os.environ)
    lines = d.env_file.read_text().splitlines()
    overrides = {**OVERRIDES, "PRODUCER_DATA_DIR": str(d.work / "data"),
                 "DOCKER_CERT_DIR": str(d.work / "certs" / "airflow"),
                 "MONITORING_CONFIG_DIR": str(d.work / "monitoring")}
    kept = [line for line in lines if line.partition("=")[0] not in overrides]
    d.env_file.write_text("\n".join(kept + [f"{k}={v}" for k, v in overrides.items()]) + "\n")


def platform_env(d: Deployment) -> dict[str, str]:
    """The private native platform: the deployment's addresses and secrets, run as local processes."""
    return {**os.environ, **d.values, "PLATFORM_MODE": "local", "RUN_DIR": str(d.work / "platform"),
            "ENV_FILE": str(d.work / "none")}


def render_monitoring_config(d: Deployment) -> None:
    """What the monitoring host's operator renders from its .env. The 0600 webhook file goes to uid 10001, the
    monitoring image's user, as the Docker client certificates go to the Airflow image's."""
    render(load({"ENV_FILE": str(d.env_file)}), d.work / "monitoring", config_dir=Path("/etc/tripclick-monitoring"),
           secret_owner=10001)


def create_superset_database(d: Deployment) -> None:
    """The Gold host's compose-init.sh (same init SQL + Superset's metadata database), on the native server."""
    values = d.values
    env = {**os.environ, "PGHOST": str(d.work / "platform" / "postgres"), "PGPORT": values["POSTGRES_PORT"],
           "POSTGRES_USER": "postgres", "TRIPCLICK_INIT_DIR": str(REPO_ROOT / "gold" / "postgres" / "init"),
           "GOLD_LOADER": values["POSTGRES_USER"], "GOLD_LOADER_PASSWORD": values["POSTGRES_PASSWORD"],
           "GOLD_READER": values["POSTGRES_RO_USER"], "GOLD_READER_PASSWORD": values["POSTGRES_RO_PASSWORD"],
           "GOLD_READER_STATEMENT_TIMEOUT_SECONDS": values["POSTGRES_RO_STATEMENT_TIMEOUT_SECONDS"],
           "GOLD_DB": values["POSTGRES_DB"], "AIRFLOW_USER": values["AIRFLOW_DB_USER"],
           "AIRFLOW_PASSWORD": values["AIRFLOW_DB_PASSWORD"], "AIRFLOW_DB": values["AIRFLOW_DB"],
           "SUPERSET_USER": values["SUPERSET_DB_USER"], "SUPERSET_PASSWORD": values["SUPERSET_DB_PASSWORD"],
           "SUPERSET_DB": values["SUPERSET_DB"]}
    run(["runuser", "-u", "postgres", "--", "bash", str(REPO_ROOT / "gold" / "postgres" / "compose-init.sh")], env)


def generate_day(d: Deployment) -> None:
    """DAY for the daily DAG and BACKFILL_DATES (the two dates after it) for the backfill DAG."""
    data = d.work / "data"
    run([sys.executable, "-m", "ingestion.generate", "--prepared", "--out", str(data),
         "--days", str(1 + len(BACKFILL_DATES)),
         "--start", DAY, "--events-per-day", str(EVENTS), "--seed", "11"], os.environ)
    for path in [data, *data.rglob("*")]:  # the producer container runs as uid 10001
        path.chmod(0o755 if path.is_dir() else 0o644)


def wait_healthy(d: Deployment, containers: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for name in containers:
            result = d.docker("inspect", "--format", "{{.State.Health.Status}}", name, check=False)
            states[name] = result.stdout.strip() or "missing"
        if all(state == "healthy" for state in states.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not healthy after {timeout:.0f}s: {states}")
        time.sleep(3)


def wait_exited_ok(d: Deployment, container: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = d.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container).stdout.split()
        if state[0] == "exited":
            if state[1] != "0":
                raise AssertionError(f"{container} exited {state[1]}:\n{d.docker('logs', container).stderr[-3000:]}")
            return
        time.sleep(3)
    raise AssertionError(f"{container} still running after {timeout:.0f}s")


def start_layers(d: Deployment) -> None:
    """The four compose files at once, each until healthy: their set-up containers (Airflow's and Superset's
    metadata databases) are single-threaded, so together they use both cores. PostgreSQL is the native one,
    hence Superset's two services one by one with --no-deps."""
    layers = {
        "spark": lambda: (d.compose("spark", "up", "-d"), wait_healthy(d, ["tripclick-e2e-spark_spark-master_1"])),
        "airflow": lambda: (d.compose("airflow", "up", "-d"), wait_healthy(
            d, ["tripclick-e2e-airflow_airflow-webserver_1", "tripclick-e2e-airflow_airflow-scheduler_1"])),
        "gold": lambda: (d.compose("gold", "up", "-d", "--no-deps", "superset-init"),
                         wait_exited_ok(d, "tripclick-e2e-gold_superset-init_1"),
                         d.compose("gold", "up", "-d", "--no-deps", "superset"),
                         wait_healthy(d, ["tripclick-e2e-gold_superset_1"])),
        "monitoring": lambda: (d.compose("monitoring", "up", "-d", *MONITORING_SERVICES), wait_healthy(
            d, [f"tripclick-e2e-monitoring_{service}_1" for service in MONITORING_SERVICES])),
    }
    with ThreadPoolExecutor(len(layers)) as pool:
        started = {layer: pool.submit(d.timed, f"compose up {layer}", up) for layer, up in layers.items()}
    for future in started.values():
        future.result()


def remove_leftovers(d: Deployment) -> None:
    """Every container, volume and network of the engine, which is this test's alone (its images stay cached)."""
    containers = d.docker("ps", "-aq", check=False).stdout.split()
    if containers:
        d.docker("rm", "-f", "-v", *containers, check=False)
    d.docker("volume", "prune", "-f", check=False)
    d.docker("network", "prune", "-f", check=False)


@pytest.fixture(scope="module")
def deployment():
    work = REPO_ROOT / ".run" / "docker-e2e"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    d = Deployment(work)
    run(["bash", "infrastructure/deploy/make-docker-certs.sh", str(work / "certs"),
         f"webserver0={IP}", f"webserver1={IP}", f"spark={IP}"], os.environ)
    d.timed("engine start", lambda: docker_engine.start(d.engine))
    try:
        remove_leftovers(d)  # the engine's data root outlives a killed run, restart policies included
        d.timed("base image", lambda: run(["bash", "infrastructure/docker/debian-base.sh", LOCAL_BASE], d.docker_env))
        images_env = {**d.docker_env, "BASE_IMAGE": LOCAL_BASE, "EXTRA_CA_CERTS": HOST_CA_CERTS,
                      "ENV_FILE": str(work / "none")}
        d.timed("make images", lambda: log(run([sys.executable, "-m", "infrastructure.docker.images", "build"],
                                               images_env, timeout=1800).stdout.splitlines()[-1]))
        if d.docker("network", "inspect", NETWORK, check=False).returncode != 0:
            d.docker("network", "create", "--subnet", NETWORK_SUBNET, NETWORK)
        make_env_file(d)
        render_monitoring_config(d)
        d.timed("private platform", lambda: run([sys.executable, "-m", "infrastructure.local.services", "up",
                                                 "platform"], platform_env(d)))
        create_superset_database(d)
        generate_day(d)
        d.timed("compose up", lambda: start_layers(d))
        yield d
    finally:
        with ThreadPoolExecutor(2) as pool:  # the engine and the native platform stop independently
            stopped = [pool.submit(lambda: (remove_leftovers(d), docker_engine.stop(d.engine))),
                       pool.submit(run, [sys.executable, "-m", "infrastructure.local.services", "down", "platform"],
                                   platform_env(d), check=False)]
        log(f"timings: {json.dumps(d.timings)}")
        for future in stopped:
            future.result()


@pytest.mark.timeout(2400)  # the first test pays for the deployment: up to ~10 min with cold images
def test_preflight_passes_from_the_airflow_side(deployment):
    result = run([sys.executable, "-m", "infrastructure.docker.preflight"],
                 {**os.environ, "ENV_FILE": str(deployment.env_file)})
    log(result.stdout)
    assert result.stdout.splitlines()[-1].endswith("failed=0")


def test_airflow_user_reads_the_client_certificates(deployment):
    """The Airflow containers run as uid 10001 and must read the mounted client key (mode 0400)."""
    cert_dir = deployment.values["DOCKER_CERT_DIR"]
    result = deployment.docker("exec", "tripclick-e2e-airflow_airflow-scheduler_1", "python", "-c",
                               f"import os; print(os.getuid(), len(open('{cert_dir}/spark/key.pem').read()) > 0)")
    assert result.stdout.split() == ["10001", "True"]


def day_file(d: Deployment, server: str, day: str) -> Path:
    return d.work / "data" / server / f"date={day}" / "events.json"


def airflow(values: dict[str, str]) -> AirflowApi:
    return AirflowApi(f"http://{IP}:{values['AIRFLOW_PORT']}", values["AIRFLOW_ADMIN_USER"],
                      values["AIRFLOW_ADMIN_PASSWORD"])


def log_task(elapsed: float, task: str, state: str) -> None:
    log(f"{elapsed:6.0f}s {task}: {state}")


def assert_marts_are_exact(d: Deployment, day: str) -> None:
    """The date's marts in PostgreSQL against the independent computation over its two day files (the
    generator writes valid, distinct events only, so every line is one event of the marts)."""
    events = [json.loads(line) for server in SOURCE_SERVERS for line in day_file(d, server, day).open("rb")]
    got = postgres_rows(load(platform_env(d)), day)
    assert got["mart_daily_traffic"], f"{day}: no Gold rows loaded"
    assert_marts_match(got, expected_marts(date.fromisoformat(day), events))


def kill_producer_mid_run(d: Deployment, run_id: str, timeout: float = 300) -> str:
    """Wait until the run's first producer_server0 container has run a few seconds, then kill it (exit 137)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = d.docker("ps", "-q", "--filter", "label=org.tripclick.step=producer_server0",
                       "--filter", f"label=org.tripclick.dag-run={run_id}",
                       "--filter", "label=org.tripclick.try=1").stdout.split()
        if ids:
            time.sleep(4)
            d.docker("kill", ids[0])
            name = d.docker("inspect", "--format", "{{.Name}}", ids[0]).stdout.strip().lstrip("/")
            log(f"killed {name} mid-run")
            return name
        time.sleep(0.5)
    raise AssertionError("producer_server0's container never started")


def run_daily(d: Deployment, api: AirflowApi) -> dict:
    """The daily DAG for DAY, producer_server0's first container killed mid-run."""
    api.set_paused(DAG_ID, False)
    run_id = f"docker_e2e_{uuid.uuid4().hex[:8]}"
    api.trigger(DAG_ID, run_id, {"date": DAY, "time_scale": TIME_SCALE})
    started = time.monotonic()
    killed = kill_producer_mid_run(d, run_id)
    state = api.wait_for_run(DAG_ID, run_id, timeout=1500, on_change=lambda e, t, s: log_task(e, f"daily {t}", s))
    d.timings["daily run"] = round(time.monotonic() - started, 1)
    return {"run_id": run_id, "state": state, "killed": killed, "tasks": api.task_instances(DAG_ID, run_id)}


def run_backfill(api: AirflowApi) -> dict:
    """tripclick_backfill for the two dates after DAY: each step one container for both dates."""
    api.set_paused(BACKFILL_DAG_ID, False)
    run_id = f"docker_e2e_backfill_{uuid.uuid4().hex[:8]}"
    api.trigger(BACKFILL_DAG_ID, run_id, {"start": BACKFILL_DATES[0], "end": BACKFILL_DATES[-1]})
    started = time.monotonic()
    state = api.wait_for_run(BACKFILL_DAG_ID, run_id, timeout=1500,
                             on_change=lambda e, t, s: log_task(e, f"backfill {t}", s))
    return {"run_id": run_id, "state": state, "seconds": round(time.monotonic() - started, 1),
            "tasks": api.task_instances(BACKFILL_DAG_ID, run_id)}


@pytest.fixture(scope="module")
def dag_runs(deployment):
    """The daily run and the backfill run at the same time in the one Airflow; both recorded when both ended."""
    d = deployment
    api = airflow(d.values)
    for dag_id in (DAG_ID, BACKFILL_DAG_ID):
        api.wait_for_dag(dag_id, timeout=180)
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        daily, backfill = pool.submit(run_daily, d, api), pool.submit(run_backfill, api)
        runs = {"daily": daily.result(), "backfill": backfill.result()}
    d.timings["both runs"] = round(time.monotonic() - started, 1)
    log(f"timings: {json.dumps(d.timings)}")
    return runs


@pytest.mark.timeout(2400)  # the DAG runs take 5-13 min on 2 cores, depending on the machine's load
def test_day_runs_in_containers_and_survives_a_killed_step(deployment, dag_runs):
    d = deployment
    values = d.values
    daily = dag_runs["daily"]
    tis = daily["tasks"]
    assert daily["state"] == "success", {t: ti["state"] for t, ti in tis.items()}
    assert tis["producer_server0"]["try_number"] >= 2
    assert tis["reconcile"]["state"] == "success"
    # The killed first try is kept for inspection but not running; nothing of the runs still runs.
    assert d.docker("inspect", "--format", "{{.State.Running}}", daily["killed"]).stdout.strip() == "false"
    assert d.docker("ps", "-q", "--filter", "label=org.tripclick.step").stdout.split() == []
    # No ended container keeps secrets in its environment: the Spark jobs' went when they ended.
    assert d.docker("ps", "-aq", "--filter", "label=org.tripclick.holds-secrets=true").stdout.split() == []
    # Secrets went through the private environment: none is in a task's rendered command or log.
    log_text = airflow(values).task_log(DAG_ID, daily["run_id"], "load_to_postgres",
                                        tis["load_to_postgres"]["try_number"])
    assert not [name for name in ("POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "SPARK_AUTH_SECRET")
                if values[name] in log_text]
    assert_marts_are_exact(d, DAY)


def test_the_days_lake_is_published_on_s3(deployment, dag_runs):
    """The lake as the containers left it in the bucket (S3 API server, s3a): every layer of the day published
    through its completion marker, Bronze's recorded offsets, the stream's checkpoint commits, and no ready
    marker left behind (wait_for_stream took it)."""
    s3 = s3_client(load(platform_env(deployment)))
    bucket = deployment.values["LAKE_ROOT"].removeprefix("s3a://").strip("/")
    keys = [f"{layer}/event_date={DAY}/_CURRENT" for layer in ("bronze", "silver", "gold/mart_daily_traffic")]
    keys.append(f"bronze/_offsets/event_date={DAY}/offsets.json")
    assert [key for key in keys if s3.get_object(Bucket=bucket, Key=key)["ContentLength"] == 0] == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix="checkpoints/silver_stream/commits/").get("KeyCount", 0) > 0
    assert not s3.list_objects_v2(Bucket=bucket, Prefix="checkpoints/_ready/").get("KeyCount")


SPARK_DAEMONS = ("spark-master", "spark-worker-1", "spark-worker-2")


def test_the_spark_cluster_authenticates_and_no_command_line_shows_its_secret(deployment, dag_runs):
    """The master and workers run with RPC authentication (processing/spark-compose.yaml); after both runs, no
    process in their containers, and no executor the runs' jobs started there (its command is the first line of
    its stderr in the worker's folder), shows SPARK_AUTH_SECRET."""
    secret = deployment.values["SPARK_AUTH_SECRET"]
    executor_commands = ""
    for daemon in SPARK_DAEMONS:
        container = f"tripclick-e2e-spark_{daemon}_1"
        logs = deployment.docker("logs", container)
        assert "SecurityManager: authentication enabled" in logs.stdout + logs.stderr, daemon
        assert secret not in deployment.docker("exec", container, "ps", "-eo", "args").stdout, daemon
        if daemon != "spark-master":  # a worker that ran no executor has no folder to list: not an error here
            executor_commands += deployment.docker("exec", container, "sh", "-c",
                                                   "head -qn1 /var/lib/tripclick/spark-work/app-*/*/stderr",
                                                   check=False).stdout
    assert executor_commands.count('"-Dspark.authenticate=true"') >= 2  # the daily and the backfill applications
    assert secret not in executor_commands


def test_backfill_dag_runs_in_containers(deployment, dag_runs):
    backfill = dag_runs["backfill"]
    states = {task: ti["state"] for task, ti in backfill["tasks"].items()}
    assert backfill["state"] == "success" and set(states.values()) == {"success"}, states
    for day in BACKFILL_DATES:
        assert_marts_are_exact(deployment, day)


def test_superset_serves_the_day_from_the_gold_marts(deployment, dag_runs):
    """Superset from gold/docker-compose.yaml: provisioned by superset-init, reading PostgreSQL as the reader."""
    values = deployment.values
    client = SupersetClient(f"http://{IP}:{values['SUPERSET_PORT']}", values["SUPERSET_ADMIN_USER"],
                            values["SUPERSET_ADMIN_PASSWORD"])
    assert client.counts() == ASSET_COUNTS
    charts = {c["slice_name"]: c["id"] for c in client.dashboard_charts(DASHBOARD_SLUG)}
    next_day = (date.fromisoformat(DAY) + timedelta(days=1)).isoformat()
    result = run_saved_query(client, charts["Click events"], f"{DAY} : {next_day}")
    assert result["status"] == "success" and not result.get("error"), result
    assert [list(row.values()) for row in result["data"]] == [[EVENTS]]


def prometheus(query: str) -> list[dict]:
    """An instant query of the monitoring host's Prometheus (its published port)."""
    response = requests.get(f"http://{IP}:9090/api/v1/query", params={"query": query}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def by_label(label: str, results: list[dict]) -> dict[str, float]:
    return {result["metric"][label]: float(result["value"][1]) for result in results}


def test_the_days_metrics_reach_the_monitoring_hosts_prometheus(deployment, dag_runs):
    """monitoring/docker-compose.yaml on the project image: Prometheus scrapes every service of its network, holds
    what the day's step and producer containers pushed and what Airflow sent by StatsD; Alertmanager runs the
    rendered configuration and its user reads the 0600 webhook file."""
    d = deployment
    values = d.values
    deadline = time.monotonic() + 30  # the Pushgateway is scraped every PROMETHEUS_SCRAPE_SECONDS
    while not prometheus(f'tripclick_job_success{{step="reconcile", date="{DAY}"}}') and time.monotonic() < deadline:
        time.sleep(2)
    assert by_label("job", prometheus(f'up{{job=~"{"|".join(COMPOSE_TARGETS)}"}}')) == dict.fromkeys(COMPOSE_TARGETS, 1)
    success = by_label("step", prometheus(f'tripclick_job_success{{date="{DAY}"}}'))
    assert {step: success.get(step) for step in DAY_STEPS} == dict.fromkeys(DAY_STEPS, 1), success
    acknowledged = by_label("server", prometheus(f'tripclick_producer_events_acknowledged{{date="{DAY}"}}'))
    assert sorted(acknowledged) == sorted(SOURCE_SERVERS) and sum(acknowledged.values()) == EVENTS, acknowledged
    assert prometheus(f'airflow_task_finished_total{{dag_id="{DAG_ID}", task_id="reconcile", state="success"}}')
    assert by_label("job", prometheus("tripclick_gold_days")) == {"postgres": 1 + len(BACKFILL_DATES)}

    assert requests.get(f"http://{IP}:9093/-/ready", timeout=10).status_code == 200
    status = requests.get(f"http://{IP}:9093/api/v2/status", timeout=10).json()
    assert yaml.safe_load(status["config"]["original"])["global"]["smtp_smarthost"] == values["ALERT_SMTP_SMARTHOST"]
    webhook = d.docker("exec", "tripclick-e2e-monitoring_alertmanager_1", "cat",
                       "/etc/tripclick-monitoring/slack-webhook-url").stdout
    assert webhook == values["ALERT_SLACK_WEBHOOK_URL"]
