"""The declarative step list, the run clock and the parse-time configuration (pure, no Airflow)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from infrastructure.settings import DEFAULTS, DEPLOYMENT_SECRETS, SECRET_NAMES, ConfigError
from orchestration import doc_tables, timeline
from orchestration.config import LOCAL_STEP_SETTINGS, SPARK_JOB_SECRETS, dag_config, local_step_environment
from orchestration.steps import (
    BACKFILL_STEPS, PRODUCER_IMAGE, SPARK_JOB_IMAGE, STEPS, STEPS_BY_ID, Step, markdown_table,
)

pytestmark = pytest.mark.unit
KST = timezone(timedelta(hours=9))


def test_step_lists_are_in_the_days_order():
    # The daily DAG states its order and clock times itself (tests/orchestration/test_dag.py); its steps come
    # after nothing, the backfill's come after earlier steps only (a topological order).
    assert [s.task_id for s in STEPS] == [
        "streaming_to_silver", "wait_for_stream", "producer_server0", "producer_server1",
        "batch_to_bronze", "etl_to_gold", "check_lake", "load_to_postgres", "reconcile"]
    assert not any(s.after for s in STEPS)
    seen: set[str] = set()
    for step in BACKFILL_STEPS:
        assert set(step.after) <= seen, step.task_id
        seen.add(step.task_id)


def test_hosts_and_images():
    assert {s.task_id: (s.host, s.image) for s in STEPS if s.image == PRODUCER_IMAGE} == {
        "producer_server0": ("webserver0", PRODUCER_IMAGE), "producer_server1": ("webserver1", PRODUCER_IMAGE)}
    spark = [s for s in STEPS if s.image == SPARK_JOB_IMAGE]
    assert len(spark) == 7 and {s.host for s in spark} == {"spark"}
    assert STEPS_BY_ID["etl_to_gold"].image_ref("", "0.1.0") == "tripclick-pipeline/spark-job:0.1.0"
    assert (STEPS_BY_ID["etl_to_gold"].image_ref("reg.example/data/", "1.2")
            == "reg.example/data/tripclick-pipeline/spark-job:1.2")


def test_commands_follow_the_cli_contract():
    values = {"date": "2026-01-01", "data_dir": "/data", "speed": "60", "stream_seconds": "120", "run": "ab12",
              "warm_up_rows": "40000"}
    assert STEPS_BY_ID["producer_server1"].render_argv(values) == [
        "-m", "ingestion.producer", "--file", "/data/server1/date=2026-01-01/events.json",
        "--server", "server1", "--mode", "realtime", "--speed", "60"]
    assert STEPS_BY_ID["streaming_to_silver"].render_argv(values) == [
        "-m", "processing.spark.jobs.streaming_to_silver", "--date", "2026-01-01", "--warm-up-rows", "40000",
        "--ready-token", "ab12", "--max-runtime", "120"]
    # the run's token ties the wait to this run's stream
    assert STEPS_BY_ID["wait_for_stream"].render_argv(values) == ["-m", "processing.stream_ready", "--token", "ab12"]
    for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres"):
        assert STEPS_BY_ID[job].render_argv(values) == ["-m", f"processing.spark.jobs.{job}", "--date", "2026-01-01"]
        assert STEPS_BY_ID[job].module == f"processing.spark.jobs.{job}"
    # one reconcile job, two stages: the lake gate before the load, the PostgreSQL check after it
    assert STEPS_BY_ID["check_lake"].render_argv(values) == [
        "-m", "processing.spark.jobs.reconcile", "--date", "2026-01-01", "--stage", "lake"]
    assert STEPS_BY_ID["reconcile"].render_argv(values) == [
        "-m", "processing.spark.jobs.reconcile", "--date", "2026-01-01", "--stage", "postgres"]


def test_a_check_is_never_retried():
    assert (STEPS_BY_ID["check_lake"].retries, STEPS_BY_ID["reconcile"].retries) == (0, 0)


def test_the_markdown_table_has_a_row_per_step_and_an_after_column_only_for_an_ordered_list():
    daily = markdown_table(STEPS).splitlines()
    assert daily[0] == "| task | host | image | command (after `python`) | retries |" and len(daily) == 2 + len(STEPS)
    assert daily[-1] == ("| `reconcile` | spark | `tripclick-pipeline/spark-job` "
                         "| `-m processing.spark.jobs.reconcile --date {date} --stage postgres` | 0 |")
    backfill = markdown_table(BACKFILL_STEPS).splitlines()
    assert backfill[0].endswith("| after | retries |")
    assert "| `producer_server0`, `producer_server1` | 1 |" in backfill[4]  # batch_to_bronze


def test_the_readme_shows_the_step_lists_as_they_are():
    text = doc_tables.README.read_text()
    assert doc_tables.refreshed(text) == text, "stale step tables: run make docs (python -m orchestration.doc_tables)"
    with pytest.raises(ValueError, match="BACKFILL_STEPS"):
        doc_tables.refreshed("<!-- STEPS: x -->\n<!-- /STEPS -->")


def test_missing_or_unknown_placeholders_are_errors():
    with pytest.raises(KeyError, match="stream_seconds"):
        STEPS_BY_ID["streaming_to_silver"].render_argv({"date": "2026-01-01"})
    with pytest.raises(ValueError, match="unknown placeholders"):
        Step("x", "spark", SPARK_JOB_IMAGE, ("-m", "m", "--when", "{tomorrow}"))
    with pytest.raises(ValueError, match="host"):
        Step("x", "laptop", SPARK_JOB_IMAGE, ("-m", "m"))


def test_the_daily_trigger_processes_its_own_day():
    # The 15:00 KST trigger of 2026-03-10 is 06:00 UTC; a naive UTC reading would still say 03-10, so also
    # check a logical date whose UTC day differs from its KST day.
    assert timeline.processed_date(datetime(2026, 3, 10, 15, tzinfo=KST), "Asia/Seoul") == "2026-03-10"
    assert timeline.processed_date(datetime(2026, 3, 10, 20, tzinfo=timezone.utc), "Asia/Seoul") == "2026-03-11"
    assert timeline.processed_date(datetime(2026, 3, 10, 20, tzinfo=timezone.utc), "UTC") == "2026-03-10"


def test_a_manual_date_overrides_and_is_validated():
    now = datetime(2026, 11, 26, 9, tzinfo=timezone.utc)
    assert timeline.processed_date(now, "Asia/Seoul", "2026-01-01") == "2026-01-01"
    for bad in ("2026-1-1", "2026-02-30", "yesterday"):
        with pytest.raises(ValueError):
            timeline.processed_date(now, "Asia/Seoul", bad)


def test_timeline_points_scale_with_time_scale():
    anchor = datetime(2026, 3, 10, 15, tzinfo=KST)
    assert timeline.timeline_point(anchor, "17:00", 1) == datetime(2026, 3, 10, 17, tzinfo=KST)
    assert timeline.timeline_point(anchor, "18:00", 1) == datetime(2026, 3, 10, 18, tzinfo=KST)
    assert timeline.timeline_point(anchor, "18:00", 60) == anchor + timedelta(minutes=3)
    with pytest.raises(ValueError):
        timeline.clock_offset("14:00")


def test_streaming_window_runs_to_the_producers_end_plus_drain():
    anchor = datetime(2026, 3, 10, 15, tzinfo=KST)
    drain = 60
    assert timeline.stream_seconds(anchor, anchor, 1, drain) == 3600 + drain
    assert timeline.stream_seconds(anchor, anchor + timedelta(seconds=10), 60, drain) == 50 + drain
    assert timeline.stream_seconds(anchor, anchor + timedelta(hours=2), 1, drain) == drain  # a late retry drains


def test_config_defaults_are_local_with_tls_docker_hosts():
    cfg = dag_config({})
    assert (cfg.runner, cfg.pipeline_tz, cfg.time_scale, cfg.image_tag) == ("local", "Asia/Seoul", 1.0, "0.1.0")
    spark = cfg.docker_host("spark")
    assert (spark.url, spark.tls) == ("tcp://spark:2376", True)
    assert (cfg.airflow_url, cfg.day_sla) == ("http://127.0.0.1:8080", timedelta(hours=5))  # as Settings.airflow_url
    assert dag_config({"AIRFLOW_PUBLIC_URL": "https://airflow.example.com/"}).airflow_url == "https://airflow.example.com"
    assert spark.client_key == "/opt/airflow/docker-certs/spark/key.pem"


def test_retries_cap_lowers_but_never_raises_a_steps_retries():
    assert [dag_config({}).retries(n) for n in (0, 1, 2)] == [0, 1, 2]
    assert [dag_config({"PIPELINE_MAX_RETRIES": "1"}).retries(n) for n in (0, 1, 2)] == [0, 1, 1]


def test_config_refuses_inconsistent_or_bad_values():
    with pytest.raises(ConfigError, match="PIPELINE_RUNNER"):
        dag_config({"PIPELINE_RUNNER": "kubernetes"})
    with pytest.raises(ConfigError, match="plaintext port"):
        dag_config({"DOCKER_URL_SPARK": "tcp://spark:2375"})
    with pytest.raises(ConfigError, match="TLS port"):
        dag_config({"DOCKER_TLS": "0"})
    with pytest.raises(ConfigError, match="PIPELINE_MAX_RETRIES"):
        dag_config({"PIPELINE_MAX_RETRIES": "-1"})
    with pytest.raises(ConfigError, match="TIME_SCALE"):
        dag_config({"TIME_SCALE": "0"})
    for knob in ("STREAM_WARM_UP_ROWS", "STREAM_DRAIN_SECONDS"):
        with pytest.raises(ConfigError, match=knob):
            dag_config({knob: "-5"})
    with pytest.raises(ConfigError, match="PIPELINE_RETRY_DELAY_SECONDS"):
        dag_config({"PIPELINE_RETRY_DELAY_SECONDS": "0"})
    for deadline in ("09:00", "8pm"):  # reconcile's SLA counts from the day's 15:00 start
        with pytest.raises(ConfigError, match="ALERT_DAY_DEADLINE"):
            dag_config({"ALERT_DAY_DEADLINE": deadline})
    # The knobs tests set small: the stream's warm-up and drain, the retry delay.
    small = dag_config({"STREAM_WARM_UP_ROWS": "500", "STREAM_DRAIN_SECONDS": "5", "PIPELINE_RETRY_DELAY_SECONDS": "2"})
    assert (small.stream_warm_up_rows, small.stream_drain_seconds, small.retry_delay_seconds) == (500, 5, 2.0)
    plaintext = {"DOCKER_TLS": "0", **{f"DOCKER_URL_{h}": f"tcp://{h.lower()}:2375"
                                       for h in ("WEBSERVER0", "WEBSERVER1", "SPARK")}}
    assert not dag_config(plaintext).docker_host("webserver0").tls
    # The docker runner talks to those APIs: plaintext only with the loud opt-in.
    with pytest.raises(ConfigError, match="DOCKER_TLS_DISABLED_I_UNDERSTAND=yes"):
        dag_config({**plaintext, "PIPELINE_RUNNER": "docker"})
    for refused in ("", "1", "true", "YES "):
        with pytest.raises(ConfigError, match="DOCKER_TLS_DISABLED_I_UNDERSTAND=yes"):
            dag_config({**plaintext, "PIPELINE_RUNNER": "docker", "DOCKER_TLS_DISABLED_I_UNDERSTAND": refused})
    opted_in = dag_config({**plaintext, "PIPELINE_RUNNER": "docker", "DOCKER_TLS_DISABLED_I_UNDERSTAND": "yes"})
    assert not opted_in.docker_host("spark").tls


def test_a_local_step_environment_is_an_allow_list():
    worker = {"PATH": "/usr/bin", "HOME": "/home/x", "LC_ALL": "C.UTF-8", "SPARK_HOME": "/spark", "KAFKA_TOPIC": "t",
              "ENV_FILE": "/etc/tripclick.env", "POSTGRES_PASSWORD": "loader", "AWS_SECRET_ACCESS_KEY": "s3",
              "POSTGRES_RO_PASSWORD": "ro", "AIRFLOW_ADMIN_PASSWORD": "admin", "ALERT_SLACK_WEBHOOK_URL": "hook",
              "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://...", "AWS_PROFILE": "prod", "SSH_AUTH_SOCK": "/s"}
    overrides = {"LAKE_ROOT": "/lake", "PYTHONPATH": "/evil", "SUPERSET_SECRET_KEY": "k"}
    env, refused = local_step_environment(worker, overrides)
    assert env == {"PATH": "/usr/bin", "HOME": "/home/x", "LC_ALL": "C.UTF-8", "SPARK_HOME": "/spark",
                   "KAFKA_TOPIC": "t", "ENV_FILE": "/etc/tripclick.env", "POSTGRES_PASSWORD": "loader",
                   "AWS_SECRET_ACCESS_KEY": "s3", "LAKE_ROOT": "/lake"}
    assert refused == ["PYTHONPATH", "SUPERSET_SECRET_KEY"]
    # Every setting but the secrets, and of the secrets only the Spark jobs' (as the docker runner hands over).
    assert LOCAL_STEP_SETTINGS & (SECRET_NAMES | set(DEPLOYMENT_SECRETS)) == set(SPARK_JOB_SECRETS)
    assert set(DEFAULTS) - SECRET_NAMES <= LOCAL_STEP_SETTINGS
