"""End to end under the real scheduler (LocalExecutor) of a private Airflow: a loud failure (server0's day
file has not arrived), then a clear-and-retry once it is there that completes the day with exact results in
PostgreSQL (every mart row for row against the plain-Python computation over the day files), although
server1's file is replayed a second time. The failure reaches people: this world's Airflow sends its alerts to
a private alert inbox (monitoring.inbox), one e-mail and one Slack webhook message.

Private everything: Airflow home, port and metadata schema; Kafka topics; lake; data folder; a test date
no other test uses. The knobs a test sets small (STREAM_WARM_UP_ROWS, STREAM_DRAIN_SECONDS, TIME_SCALE) make
the day take about two minutes instead of the seven its production values would.
"""
from __future__ import annotations

import html
import json
import shutil
import socket
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import pytest
import requests

from gold.database import connect_loader, delete_dates
from infrastructure.settings import REPO_ROOT, Settings, resolve
from messaging.topics import TopicSpec, admin_client, ensure_topic
from monitoring.inbox import messages, wait_for
from orchestration import airflow_local
from orchestration.airflow_api import AirflowApi
from orchestration.steps import DAG_ID, OUTPUT_PREFIX
from tests.monitoring import day_checks
from tests.processing.helpers import postgres_rows
from tests.processing.scenario import assert_marts_match, expected_marts

pytestmark = pytest.mark.integration
DAY = "2024-02-29"  # this test's own date: its Gold rows are deleted afterwards
EVENTS = 3000
TIME_SCALE = 360  # the 15:00-18:00 day in 30 s; producers replay their hour in 10 s
# The stream warms up on a few synthetic clicks and drains 10 s after the producers' hour.
SMALL_KNOBS = {"STREAM_WARM_UP_ROWS": "1000", "STREAM_DRAIN_SECONDS": "10"}
ALERT_TO = "oncall@e2e.test"


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
def inbox(tmp_path):
    """A private alert inbox (SMTP sink and webhook receiver) on free ports; its records land in `out`."""
    smtp_port, http_port = free_port(), free_port()
    out = tmp_path / "inbox.jsonl"
    with (tmp_path / "inbox.log").open("w") as log:
        process = subprocess.Popen(
            [str(REPO_ROOT / ".venv/bin/python"), "-m", "monitoring.inbox", "--smtp-port", str(smtp_port),
             "--http-port", str(http_port), "--out", str(out)], cwd=REPO_ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{http_port}/health"):  # SMTP listens before HTTP does
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "inbox.log").read_text()
            time.sleep(0.2)
        yield SimpleNamespace(out=out, env={
            "ALERT_SMTP_SMARTHOST": f"127.0.0.1:{smtp_port}", "ALERT_EMAIL_TO": ALERT_TO,
            "ALERT_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{http_port}/slack"})
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture
def private_airflow(platform, tmp_path, topics, day_files, inbox):
    """A private Airflow (own schema in the airflow database) whose steps use this test's lake and topics, and
    whose alerts go to this test's inbox and link to its own UI."""
    schema = f"test_orch_{uuid.uuid4().hex[:8]}"
    conn = pg(platform, platform.airflow_db_user, platform.airflow_db_password, platform.airflow_db)
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    step_env = {"LAKE_ROOT": str(tmp_path / "lake"), "DATA_DIR": str(day_files), "RUN_DIR": str(tmp_path / "run"),
                "PIPELINE_MAX_RETRIES": "0", **SMALL_KNOBS, **topics}  # no retries: the failure fails the run
    inst = airflow_local.Instance(
        home=tmp_path / "airflow", port=free_port(), db_url=airflow_local.db_url(platform, schema),
        admin_user="admin", admin_password="admin",
        env={**airflow_local.dag_environment(resolve()), **step_env, **inbox.env, "AIRFLOW_PUBLIC_URL": ""},
        statsd_port=platform.statsd_port)  # the shared monitoring measures this world's runs (day_checks)
    try:
        airflow_local.up(inst)
        yield inst
    finally:
        airflow_local.down(inst)
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()
        delete_gold_rows(platform)


def log_task(elapsed: float, task: str, state: str) -> None:
    """Task state changes with their time into the run: printed with a failure's report, and with -s."""
    print(f"[airflow-e2e] {elapsed:6.0f}s {task}: {state}", flush=True)


def test_failure_is_loud_then_clear_and_retry_completes_the_day_exactly(platform, private_airflow, day_files, inbox):
    began = time.time()
    api = AirflowApi(private_airflow.base_url, "admin", "admin")
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)
    events = [json.loads(line) for f in day_files.glob("server*/date=*/events.json") for line in f.open("rb")]
    assert len(events) == EVENTS

    # 1. server0's day file has not arrived: its producer fails loudly, the run fails, nothing reaches
    # PostgreSQL (server1's producer replays its file all the same).
    server0 = day_files / "server0"
    late = server0.rename(day_files.parent / "server0-not-yet-arrived")
    run_id = f"e2e__{DAY}__{uuid.uuid4().hex[:6]}"
    api.trigger(DAG_ID, run_id, {"date": DAY, "time_scale": TIME_SCALE})
    assert api.wait_for_run(DAG_ID, run_id, timeout=480, on_change=log_task) == "failed"
    states = {t: ti["state"] for t, ti in api.task_instances(DAG_ID, run_id).items()}
    assert (states["producer_server0"], states["producer_server1"], states["streaming_to_silver"]) == (
        "failed", "success", "success")
    assert {states[t] for t in ("batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile", "end")} == {
        "upstream_failed"}
    producer_log = api.task_log(DAG_ID, run_id, "producer_server0", 1)
    assert "step producer_server0 failed: exit code 2" in producer_log
    assert f"{OUTPUT_PREFIX}" in producer_log and f"no such file: {server0}/date={DAY}/events.json" in producer_log
    assert not any(postgres_rows(platform, DAY).values())
    # ... and reaches people: one e-mail and one Slack message (the task failed for good, no retries) naming the
    # task, the date, the try and the error, with the link to the run's task in the Airflow UI.
    link = f"{private_airflow.base_url}/dags/{DAG_ID}/grid?dag_run_id={run_id}&task_id=producer_server0"
    mails = wait_for(inbox.out, lambda r: r["channel"] == "email", 30, "failure e-mail")
    posts = wait_for(inbox.out, lambda r: r["channel"] == "webhook", 30, "failure Slack message")
    assert (len(mails), len(posts), mails[0]["to"], posts[0]["path"]) == (1, 1, [ALERT_TO], "/slack")
    for text in (mails[0]["subject"] + html.unescape(mails[0]["body"]), html.unescape(posts[0]["payload"]["text"])):
        assert f"producer_server0 for {DAY} (try 1)" in text and link in text, text
        assert "Error: step producer_server0 failed: exit code 2" in text, text

    # 2. The file arrived: clear the whole run; it replays the day (server1's file a second time) and
    # completes it, exactly.
    shutil.move(late, server0)
    cleared = api.clear(DAG_ID, run_id, only_failed=False)
    assert {"producer_server0", "producer_server1", "reconcile"} <= set(cleared)
    assert api.wait_for_run(DAG_ID, run_id, timeout=600, on_change=log_task) == "success"  # as the REST API reports it
    tis = api.task_instances(DAG_ID, run_id)
    assert {ti["state"] for ti in tis.values()} == {"success"}
    reconcile_log = api.task_log(DAG_ID, run_id, "reconcile", tis["reconcile"]["try_number"])
    assert "[reconcile] OK" in reconcile_log and "[reconcile] FAIL" not in reconcile_log
    assert_marts_match(postgres_rows(platform, DAY), expected_marts(date.fromisoformat(DAY), events))
    assert len(messages(inbox.out)) == 2  # a run that succeeds alerts nobody

    # 3. The shared monitoring saw the day: its producers, steps and checks, the stream, the failed and the
    # successful run (Alertmanager told people of the failed one too), and every Grafana panel has data.
    day_checks.assert_day_metrics(platform, DAY, EVENTS)
    day_checks.assert_stream_and_airflow_metrics(platform, began)
    day_checks.assert_run_failure_reached_people(platform, DAG_ID)
    day_checks.assert_every_panel_has_data(platform, began)
