"""End to end under the real scheduler (LocalExecutor) of a private Airflow: a loud failure with Kafka
unreachable, then a clear-and-retry that completes the day with exact results in PostgreSQL (every mart
row for row against the plain-Python computation over the day files).

Private everything: Airflow home, port and metadata schema; Kafka topics; lake; data folder; a test date
no other test uses. The shared Kafka is never stopped: the failing attempt points the steps at a port
where nothing listens (Variable tripclick_local_env), the retry at the real cluster.
"""
from __future__ import annotations

import json
import socket
import subprocess
import uuid
from datetime import date
from pathlib import Path

import psycopg2
import pytest

from gold.database import connect_loader, delete_dates
from infrastructure.settings import REPO_ROOT, Settings, resolve
from messaging.topics import TopicSpec, admin_client, ensure_topic
from orchestration import airflow_local
from orchestration.airflow_api import AirflowApi
from orchestration.steps import DAG_ID, OUTPUT_PREFIX
from tests.processing.helpers import postgres_rows
from tests.processing.scenario import assert_marts_match, expected_marts

pytestmark = pytest.mark.integration
DAY = "2024-02-29"  # this test's own date: its Gold rows are deleted afterwards
EVENTS = 3000
TIME_SCALE = 360  # the 15:00-18:00 day in 30 s; producers replay their hour in 10 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg(settings: Settings, user: str, password: str, dbname: str):
    conn = psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, dbname=dbname,
                            user=user, password=password)
    conn.autocommit = True
    return conn


def delete_gold_rows(settings: Settings) -> None:
    with connect_loader(settings) as conn, conn.cursor() as cur:
        delete_dates(cur, [DAY])
    conn.close()


@pytest.fixture
def topics(platform):
    admin = admin_client(platform)
    suffix = uuid.uuid4().hex[:8]
    names = {"KAFKA_TOPIC": f"test_orch_raw_{suffix}", "KAFKA_DLQ_TOPIC": f"test_orch_dlq_{suffix}"}
    for name in names.values():
        ensure_topic(admin, TopicSpec(name))
    yield names
    for future in admin.delete_topics(list(names.values())).values():
        future.result(30)


@pytest.fixture
def day_files(tmp_path) -> Path:
    data = tmp_path / "data"
    subprocess.run([str(REPO_ROOT / ".venv/bin/python"), "-m", "ingestion.generate", "--prepared", "--days", "1",
                    "--start", DAY, "--events-per-day", str(EVENTS), "--seed", "6", "--out", str(data)],
                   check=True, cwd=REPO_ROOT, capture_output=True)
    return data


@pytest.fixture
def private_airflow(platform, tmp_path, topics, day_files):
    """A private Airflow (own schema in the airflow database) whose steps use this test's lake and topics."""
    schema = f"test_orch_{uuid.uuid4().hex[:8]}"
    conn = pg(platform, platform.airflow_db_user, platform.airflow_db_password, platform.airflow_db)
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    step_env = {"LAKE_ROOT": str(tmp_path / "lake"), "DATA_DIR": str(day_files), "RUN_DIR": str(tmp_path / "run"),
                "PIPELINE_MAX_RETRIES": "0", **topics}  # no retries: the failing attempt fails the run at once
    inst = airflow_local.Instance(
        home=tmp_path / "airflow", port=free_port(), db_url=airflow_local.db_url(platform, schema),
        admin_user="admin", admin_password="admin",
        env={**airflow_local.dag_environment(resolve()), **step_env})
    try:
        airflow_local.up(inst)
        yield inst
    finally:
        airflow_local.down(inst)
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()
        delete_gold_rows(platform)


def test_failure_is_loud_then_clear_and_retry_completes_the_day_exactly(platform, private_airflow, day_files):
    api = AirflowApi(private_airflow.base_url, "admin", "admin")
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)
    events = [json.loads(line) for f in day_files.glob("server*/date=*/events.json") for line in f.open("rb")]
    assert len(events) == EVENTS

    # 1. Kafka unreachable: the producers fail, the run fails, nothing reaches PostgreSQL.
    api.set_variable("tripclick_local_env", json.dumps({"KAFKA_BROKERS": f"127.0.0.1:{free_port()}"}))
    run_id = f"e2e__{DAY}__{uuid.uuid4().hex[:6]}"
    api.trigger(DAG_ID, run_id, {"date": DAY, "time_scale": TIME_SCALE})
    assert api.wait_for_run(DAG_ID, run_id, timeout=480) == "failed"
    states = {t: ti["state"] for t, ti in api.task_instances(DAG_ID, run_id).items()}
    assert states["producer_server0"] == states["producer_server1"] == "failed"
    assert {states[t] for t in ("batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile", "end")} == {
        "upstream_failed"}
    producer_log = api.task_log(DAG_ID, run_id, "producer_server0", 1)
    assert "step producer_server0 failed: exit code 1" in producer_log
    summary_marker = OUTPUT_PREFIX + '{"file"'  # the producer's own one-line JSON summary
    summary = json.loads([line.split(OUTPUT_PREFIX, 1)[1] for line in producer_log.splitlines()
                          if summary_marker in line][-1])
    assert summary["acked"] == 0 and summary["failed"] > 0
    assert not any(postgres_rows(platform, DAY).values())

    # 2. Kafka back: clear the whole run; it replays the day and completes it, exactly.
    api.delete_variable("tripclick_local_env")
    cleared = api.clear(DAG_ID, run_id, only_failed=False)
    assert {"producer_server0", "producer_server1", "reconcile"} <= set(cleared)
    assert api.wait_for_run(DAG_ID, run_id, timeout=600) == "success"  # as the REST API reports it
    tis = api.task_instances(DAG_ID, run_id)
    assert {ti["state"] for ti in tis.values()} == {"success"}
    reconcile_log = api.task_log(DAG_ID, run_id, "reconcile", tis["reconcile"]["try_number"])
    assert "[reconcile] OK" in reconcile_log and "[reconcile] FAIL" not in reconcile_log
    assert_marts_match(postgres_rows(platform, DAY), expected_marts(date.fromisoformat(DAY), events))
