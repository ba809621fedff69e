"""The DAG as Airflow loads it, in both runner modes, without a database or a Docker engine.

Airflow lives in its own environment, so each case runs `orchestration.describe` there and asserts on
its JSON (tasks, dependencies, schedule, rendered commands and sensor targets, Docker parameters).
"""
from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta

import pytest

from infrastructure.settings import DEFAULTS, LOCAL_ONLY_DEFAULTS, REPO_ROOT
from orchestration import timeline
from orchestration.config import LOCAL_PROCESS_PREFIXES, LOCAL_PROCESS_VARIABLES, LOCAL_STEP_SETTINGS

# Each case starts Airflow's own interpreter and imports Airflow: seconds apiece.
pytestmark = [pytest.mark.unit, pytest.mark.slow]
AIRFLOW_PYTHON = REPO_ROOT / ".venvs" / "airflow" / "bin" / "python"
STEP_IDS = {"producer_server0", "producer_server1", "streaming_to_silver", "wait_for_stream", "batch_to_bronze",
            "etl_to_gold", "check_lake", "load_to_postgres", "reconcile"}
EXPECTED_UPSTREAM = {
    "streaming_to_silver": [], "wait_for_stream": [],
    # the producers start once the stream reported ready, or once waiting for it gave up
    "wait_for_stream_finished": ["wait_for_stream"],
    "producer_server0": ["wait_for_stream_finished"], "producer_server1": ["wait_for_stream_finished"],
    # streaming only has to have finished (any state): Bronze alone rebuilds the exact Silver
    "streaming_to_silver_finished": ["streaming_to_silver"],
    "wait_until_1700": ["producer_server0", "producer_server1", "streaming_to_silver_finished"],
    "batch_to_bronze": ["wait_until_1700"],
    "wait_until_1800": ["batch_to_bronze"],
    "etl_to_gold": ["wait_until_1800"],
    "check_lake": ["etl_to_gold"],  # the lake-side reconcile gates the load
    "load_to_postgres": ["check_lake"],
    "reconcile": ["load_to_postgres"],
    # a failed stream fails `end`, so the run ends failed although the day was built and loaded
    "end": ["reconcile", "streaming_to_silver"],
}
# Every other task keeps Airflow's default all_success.
EXPECTED_TRIGGER_RULES = {"streaming_to_silver_finished": "all_done", "wait_for_stream_finished": "all_done"}


def describe(tmp_path, env: dict[str, str], *args: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS and not k.startswith("AIRFLOW")}
    home = tmp_path / "airflow_home"
    home.mkdir(exist_ok=True)
    run = subprocess.run(
        [str(AIRFLOW_PYTHON), "-m", "orchestration.describe", *args],
        env={**clean, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **env},
        capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    assert facts["import_errors"] == {}
    return facts


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("describe")


@pytest.fixture(scope="module")
def docker_scheduled(scratch):
    """The scheduled production run of 2026-03-10 (logical date = its 15:00 KST trigger)."""
    return describe(scratch, {"PIPELINE_RUNNER": "docker", "IMAGE_TAG": "9.9.9"},
                    "--logical-date", "2026-03-10T15:00:00+09:00")


@pytest.fixture(scope="module")
def local_manual(scratch):
    """A demo run: triggered on 2026-11-26 for date 2026-01-01 at TIME_SCALE 60, started 10 s later."""
    return describe(scratch, {"PIPELINE_RUNNER": "local"}, "--logical-date", "2026-11-26T10:00:00+00:00",
                    "--start", "2026-11-26T10:00:10+00:00", "--date", "2026-01-01", "--time-scale", "60")


@pytest.mark.parametrize("facts_name", ["docker_scheduled", "local_manual"])
def test_structure_is_the_same_in_both_modes(facts_name, request):
    facts = request.getfixturevalue(facts_name)
    tasks = facts["tasks"]
    assert {t: f["upstream"] for t, f in tasks.items()} == EXPECTED_UPSTREAM
    dag = facts["dag"]
    assert (dag["dag_id"], dag["max_active_runs"], dag["catchup"], dag["timezone"]) == (
        "tripclick_daily_pipeline", 1, False, "Asia/Seoul")
    assert {"tripclick", "daily"} <= set(dag["tags"]) and dag["has_doc"]
    assert dag["params"] == {"date": None, "time_scale": 1.0}
    for task_id in STEP_IDS:
        assert tasks[task_id]["has_doc"], task_id
    assert {tasks[t]["retry_delay_s"] for t in STEP_IDS} == {30.0}
    assert {t: tasks[t]["retries"] for t in STEP_IDS} == {
        "producer_server0": 2, "producer_server1": 2, "streaming_to_silver": 1, "wait_for_stream": 0,
        "batch_to_bronze": 2,
        "etl_to_gold": 2, "check_lake": 0, "load_to_postgres": 2, "reconcile": 0}
    # Waiting is deferred (no worker slot held): the async sensor hands the wait to the triggerer.
    assert {tasks[t]["operator"] for t in ("wait_until_1700", "wait_until_1800")} == {"DateTimeSensorAsync"}
    # Every task alerts when it fails for good; the day must be reconciled by 20:00 (5 h after its 15:00 start).
    assert {f["on_failure_callback"] for f in tasks.values()} == {"Alerts.task_failed"}
    assert dag["sla_miss_callback"] == "Alerts.sla_missed"
    assert {t: f["sla_s"] for t, f in tasks.items() if f["sla_s"]} == {"reconcile": 5 * 3600.0}


def test_docker_schedule_is_daily_1500_seoul_and_processes_its_own_day(scratch, docker_scheduled):
    dag = docker_scheduled["dag"]
    assert (dag["timetable"], dag["cron"], dag["timetable_timezone"]) == (
        "CronTriggerTimetable", "0 15 * * *", "Asia/Seoul")
    hours, minutes = timeline.DAY_START.split(":")  # the clock every timeline point counts from
    assert dag["cron"] == f"{int(minutes)} {int(hours)} * * *"
    # From midnight KST of 03-10 the next trigger is 15:00 KST that day, and its logical date is that moment.
    earlier = describe(scratch, {"PIPELINE_RUNNER": "docker"}, "--logical-date", "2026-03-10T00:00:00+09:00")
    assert earlier["next_scheduled_logical_date"] == "2026-03-10T06:00:00+00:00"
    tasks = docker_scheduled["tasks"]
    assert "/data/server0/date=2026-03-10/events.json" in tasks["producer_server0"]["command"]
    for job in ("streaming_to_silver", "batch_to_bronze", "etl_to_gold", "check_lake", "load_to_postgres",
                "reconcile"):
        command = tasks[job]["command"]
        assert command[command.index("--date") + 1] == "2026-03-10", job
    # At TIME_SCALE 1 the sensors wait for the real 17:00 and 18:00 KST of that day.
    assert tasks["wait_until_1700"]["target_time"] == "2026-03-10T17:00:00+09:00"
    assert tasks["wait_until_1800"]["target_time"] == "2026-03-10T18:00:00+09:00"
    # Rendered long after that day's 16:00, the streaming window is only the drain margin.
    assert tasks["streaming_to_silver"]["command"][-2:] == ["--max-runtime", "60"]
    # The stream's ready marker and the wait for it share the run's token.
    token = tasks["wait_for_stream"]["command"][-1]
    assert tasks["wait_for_stream"]["command"] == ["python", "-m", "processing.stream_ready", "--token", token]
    stream = tasks["streaming_to_silver"]["command"]
    assert stream[stream.index("--ready-token") + 1] == token and len(token) == 10
    assert stream[stream.index("--warm-up-rows") + 1] == "40000"


def test_docker_operator_parameters_per_host(docker_scheduled):
    tasks = docker_scheduled["tasks"]
    hosts = {"producer_server0": "webserver0", "producer_server1": "webserver1", "batch_to_bronze": "spark"}
    for task_id, host in hosts.items():
        t = tasks[task_id]
        assert t["docker_url"] == f"tcp://{host}:2376"
        assert (t["tls_ca_cert"], t["tls_client_cert"], t["tls_client_key"], t["tls_verify"]) == (
            f"/opt/airflow/docker-certs/{host}/ca.pem", f"/opt/airflow/docker-certs/{host}/cert.pem",
            f"/opt/airflow/docker-certs/{host}/key.pem", True)
        assert t["mount_tmp_dir"] is False and t["network_mode"] == "tripclick" and t["auto_remove"] == "never"
        # Secrets reach containers through the private environment only, never a template.
        assert not {"AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID"} & t["environment"].keys()
    assert tasks["producer_server0"]["image"] == "tripclick-pipeline/producer:9.9.9"
    assert tasks["producer_server0"]["mounts"] == [
        {"source": "/srv/tripclick/data", "target": "/data", "type": "bind", "read_only": True}]
    assert tasks["producer_server0"]["command"][:3] == ["python", "-m", "ingestion.producer"]
    spark = tasks["load_to_postgres"]
    assert spark["image"] == "tripclick-pipeline/spark-job:9.9.9" and spark["mounts"] == []
    assert spark["command"][:3] == ["python", "-m", "processing.spark.jobs.load_to_postgres"]
    assert spark["environment"]["SPARK_MASTER"] == "spark://spark-master:7077"
    assert spark["environment"]["POSTGRES_USER"] == "{{ conn.tripclick_postgres.login }}"
    assert "POSTGRES_PASSWORD" not in spark["environment"] and "AWS_SECRET_ACCESS_KEY" not in spark["environment"]


def test_no_secret_value_is_in_the_dag(docker_scheduled, local_manual):
    for facts in (docker_scheduled, local_manual):
        serialized = facts["serialized"]
        for name in ("POSTGRES_PASSWORD", "POSTGRES_RO_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AIRFLOW_DB_PASSWORD"):
            assert LOCAL_ONLY_DEFAULTS[name] not in serialized, name
        for task in facts["tasks"].values():
            for key, value in task.get("environment", {}).items():
                if any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY")):
                    assert value.startswith("{{ conn."), key


def test_plaintext_docker_is_an_explicit_opt_in(scratch):
    urls = {f"DOCKER_URL_{h}": f"tcp://{h.lower()}:2375" for h in ("WEBSERVER0", "WEBSERVER1", "SPARK")}
    facts = describe(scratch, {"PIPELINE_RUNNER": "docker", "DOCKER_TLS": "0",
                               "DOCKER_TLS_DISABLED_I_UNDERSTAND": "yes", **urls},
                     "--logical-date", "2026-03-10T15:00:00+09:00")
    t = facts["tasks"]["streaming_to_silver"]
    assert (t["docker_url"], t["tls_ca_cert"], t["tls_client_cert"], t["tls_verify"]) == (
        "tcp://spark:2375", None, None, False)


def test_local_manual_run_processes_the_requested_date_on_a_compressed_clock(local_manual):
    dag, tasks = local_manual["dag"], local_manual["tasks"]
    assert dag["timetable"] == "NullTimetable"  # local mode: only explicit triggers, never "today"
    assert {tasks[t]["operator"] for t in STEP_IDS} == {"LocalStepOperator"}
    data_dir = REPO_ROOT / "ingestion" / "data"
    assert tasks["producer_server1"]["argv"] == [
        "-m", "ingestion.producer", "--file", f"{data_dir}/server1/date=2026-01-01/events.json",
        "--server", "server1", "--mode", "realtime", "--speed", "60"]
    assert tasks["check_lake"]["argv"] == ["-m", "processing.spark.jobs.reconcile", "--date", "2026-01-01",
                                           "--stage", "lake"]
    assert tasks["reconcile"]["argv"] == ["-m", "processing.spark.jobs.reconcile", "--date", "2026-01-01",
                                          "--stage", "postgres"]
    start = datetime.fromisoformat("2026-11-26T10:00:10+00:00")
    assert datetime.fromisoformat(tasks["wait_until_1700"]["target_time"]) == start + timedelta(minutes=2)
    assert datetime.fromisoformat(tasks["wait_until_1800"]["target_time"]) == start + timedelta(minutes=3)


TRIGGER_RULES_SCRIPT = """
import json
from airflow.models import DagBag
from orchestration.describe import DAGS_FOLDER
from orchestration.steps import DAG_ID
bag = DagBag(str(DAGS_FOLDER), include_examples=False, read_dags_from_db=False)
print(json.dumps({t.task_id: str(t.trigger_rule) for t in bag.dags[DAG_ID].tasks}))
"""


@pytest.mark.parametrize("runner", ["docker", "local"])
def test_streaming_failure_is_reported_but_does_not_stop_the_day(tmp_path, runner):
    """Only the marker behind streaming tolerates a failure; everything else (the sensor waiting for the
    producers, `end`) needs success, so a failed producer stops the day and a failed stream fails `end`."""
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS and not k.startswith("AIRFLOW")}
    run = subprocess.run([str(AIRFLOW_PYTHON), "-c", TRIGGER_RULES_SCRIPT],
                         env={**clean, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                              "PIPELINE_RUNNER": runner},
                         capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    rules = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(rules) == set(EXPECTED_UPSTREAM)
    assert {t: r for t, r in rules.items() if r != "all_success"} == EXPECTED_TRIGGER_RULES


ALERTS_SCRIPT = """
import json
from types import SimpleNamespace
import pendulum
from airflow.models import DagBag
from orchestration.describe import DAGS_FOLDER
from orchestration.steps import BACKFILL_DAG_ID, DAG_ID

bag = DagBag(str(DAGS_FOLDER), include_examples=False, read_dags_from_db=False)
def failed(dag_id, task_id, params):
    dag = bag.dags[dag_id]
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, try_number=2, run_id="scheduled__2026-03-10T06:00:00+00:00")
    context = {"ti": ti, "logical_date": pendulum.datetime(2026, 3, 10, 6, tz="UTC"), "params": params,
               "exception": RuntimeError("step failed: exit code 1; last output line: {{ not jinja }}\\ntraceback")}
    return vars(dag.get_task(task_id).on_failure_callback.__self__.failure(context))
daily = bag.dags[DAG_ID]
miss = SimpleNamespace(task_id="reconcile", execution_date=pendulum.datetime(2026, 3, 10, 6, tz="UTC"))
print(json.dumps({
    "daily": failed(DAG_ID, "check_lake", {"date": None, "time_scale": 1}),
    "manual": failed(DAG_ID, "check_lake", {"date": "2026-01-01", "time_scale": 60}),
    "backfill": failed(BACKFILL_DAG_ID, "report", {"start": "2026-01-02", "end": "2026-01-04"}),
    "sla": vars(daily.sla_miss_callback.__self__.sla_miss(daily, [miss]))}))
"""


def test_alerts_name_the_dag_task_date_try_error_and_link_to_the_run(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS and not k.startswith("AIRFLOW")}
    run = subprocess.run([str(AIRFLOW_PYTHON), "-c", ALERTS_SCRIPT],
                         env={**clean, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                              "PIPELINE_RUNNER": "docker", "AIRFLOW_PUBLIC_URL": "https://airflow.example.com/"},
                         capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    alerts = json.loads(run.stdout.strip().splitlines()[-1])
    run_link = ("https://airflow.example.com/dags/{dag}/grid?dag_run_id=scheduled__2026-03-10T06%3A00%3A00%2B00%3A00"
                "&task_id={task}")
    daily = alerts["daily"]
    assert daily["subject"] == "[TripClick] FAILED tripclick_daily_pipeline.check_lake for 2026-03-10 (try 2)"
    assert "Processed: 2026-03-10" in daily["lines"]
    # the error's first line only, verbatim (never rendered as a template)
    assert "Error: step failed: exit code 1; last output line: {{ not jinja }}" in daily["lines"]
    assert daily["link"] == run_link.format(dag="tripclick_daily_pipeline", task="check_lake")
    assert "for 2026-01-01 (try 2)" in alerts["manual"]["subject"]  # a manual run's date param
    backfill = alerts["backfill"]
    assert "tripclick_backfill.report for 2026-01-02..2026-01-04" in backfill["subject"]
    assert backfill["link"] == run_link.format(dag="tripclick_backfill", task="report")
    sla = alerts["sla"]
    assert sla["subject"] == "[TripClick] SLA MISSED tripclick_daily_pipeline.reconcile for 2026-03-10"
    assert "not done by 2026-03-10T20:00:00+09:00" in sla["lines"][0]
    assert sla["link"] == run_link.format(dag="tripclick_daily_pipeline", task="reconcile")


STATE_MACHINE_SCRIPT = """
import json, sys
import pendulum
from airflow.models import DagBag
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunType
from orchestration.describe import DAGS_FOLDER
from orchestration.steps import DAG_ID

dag = DagBag(str(DAGS_FOLDER), include_examples=False, read_dags_from_db=False).dags[DAG_ID]
dag.sync_to_db()
outcomes = {}
for day, failing in enumerate(json.loads(sys.argv[1]), start=1):
    when = pendulum.datetime(2026, 1, day, 6, tz="UTC")
    with create_session() as session:
        run = dag.create_dagrun(run_id=f"case{day}", state=DagRunState.RUNNING, execution_date=when,
                                run_type=DagRunType.MANUAL, data_interval=(when, when), external_trigger=True,
                                conf={}, session=session)
        for _ in range(40):  # the scheduler's decisions, with every task 'executed' instantly
            run.dag = dag
            schedulable, _ = run.update_state(session=session, execute_callbacks=False)
            if run.state != DagRunState.RUNNING:
                break
            ids = {ti.task_id for ti in schedulable}
            for ti in run.get_task_instances(session=session):
                if ti.task_id in ids:
                    ti.state = TaskInstanceState.FAILED if ti.task_id in failing else TaskInstanceState.SUCCESS
                    session.merge(ti)
            session.flush()
        outcomes["+".join(failing) or "none"] = {
            "run": str(run.state), **{ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}}
print(json.dumps(outcomes))
"""


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """The DAG's real dependency/trigger-rule evaluation (Airflow's own DagRun.update_state on a scratch
    SQLite database) with chosen tasks failing and every other task succeeding instantly."""
    home = tmp_path_factory.mktemp("airflow_state")
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS and not k.startswith("AIRFLOW")}
    env = {**clean, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db", "PIPELINE_RUNNER": "local"}
    migrate = subprocess.run([str(AIRFLOW_PYTHON), "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=300, cwd=REPO_ROOT)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    cases = [[], ["streaming_to_silver"], ["wait_for_stream"], ["producer_server1"], ["check_lake"]]
    run = subprocess.run([str(AIRFLOW_PYTHON), "-c", STATE_MACHINE_SCRIPT, json.dumps(cases)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_day_without_failures_succeeds(played):
    assert set(played["none"].values()) == {"success"}


def test_a_streaming_failure_does_not_stop_the_day_but_fails_the_run(played):
    states = played["streaming_to_silver"]
    assert states["run"] == "failed"
    for task in ("batch_to_bronze", "etl_to_gold", "check_lake", "load_to_postgres", "reconcile"):
        assert states[task] == "success", task
    assert (states["streaming_to_silver"], states["end"]) == ("failed", "upstream_failed")


def test_a_stream_that_never_reports_ready_does_not_hold_up_the_day(played):
    states = played["wait_for_stream"]
    assert (states["run"], states["wait_for_stream"]) == ("success", "failed")
    for task in ("producer_server0", "producer_server1", "batch_to_bronze", "reconcile", "end"):
        assert states[task] == "success", task


def test_a_producer_failure_stops_the_day(played):
    states = played["producer_server1"]
    assert states["run"] == "failed"
    for task in ("wait_until_1700", "batch_to_bronze", "etl_to_gold", "check_lake", "load_to_postgres",
                 "reconcile", "end"):
        assert states[task] == "upstream_failed", task


def test_a_failed_lake_gate_keeps_the_day_out_of_postgres(played):
    states = played["check_lake"]
    assert states["run"] == "failed" and states["etl_to_gold"] == "success"
    assert {states[t] for t in ("load_to_postgres", "reconcile", "end")} == {"upstream_failed"}


# ---- tripclick_backfill -------------------------------------------------------------------------------------

BACKFILL_UPSTREAM = {
    "producer_server0": [], "producer_server1": [],
    "batch_to_bronze": ["producer_server0", "producer_server1"],
    "etl_to_gold": ["batch_to_bronze"], "check_lake": ["etl_to_gold"], "load_to_postgres": ["check_lake"],
    "reconcile": ["load_to_postgres"],
    "report": ["batch_to_bronze", "check_lake", "etl_to_gold", "load_to_postgres", "producer_server0",
               "producer_server1", "reconcile"],
}
RANGE = ["--dag-id", "tripclick_backfill", "--param", "start=2026-01-02", "--param", "end=2026-01-04"]


@pytest.mark.parametrize("runner", ["docker", "local"])
def test_backfill_dag_has_the_steps_params_and_report_in_both_runners(scratch, runner):
    facts = describe(scratch, {"PIPELINE_RUNNER": runner, "IMAGE_TAG": "9.9.9"},
                     "--logical-date", "2026-11-30T10:00:00+00:00", *RANGE)
    dag, tasks = facts["dag"], facts["tasks"]
    assert (dag["dag_id"], dag["timetable"], dag["max_active_runs"], dag["catchup"]) == (
        "tripclick_backfill", "NullTimetable", 1, False)
    assert {"tripclick", "backfill", f"runner:{runner}"} <= set(dag["tags"]) and dag["has_doc"]
    assert set(dag["params"]) == {"start", "end"}
    assert {t: f["upstream"] for t, f in tasks.items()} == BACKFILL_UPSTREAM
    # the report runs whatever happened before it and fails naming the bad dates
    assert {t: f["trigger_rule"] for t, f in tasks.items() if f["trigger_rule"] != "all_success"} == {
        "report": "all_done"}
    assert (tasks["check_lake"]["retries"], tasks["reconcile"]["retries"]) == (0, 0)
    assert {f["on_failure_callback"] for f in tasks.values()} == {"Alerts.task_failed"}
    key = "command" if runner == "docker" else "argv"
    head = ["python"] if runner == "docker" else []
    data_dir = "/data" if runner == "docker" else str(REPO_ROOT / "ingestion" / "data")
    assert tasks["producer_server1"][key] == [*head, "-m", "ingestion.produce_range", "--server", "server1",
                                              "--data-dir", data_dir, "--dates", "2026-01-02,2026-01-03,2026-01-04",
                                              "--keep-going"]
    # before the producers have handed on anything, no date reaches the Spark steps
    assert tasks["check_lake"][key] == [*head, "-m", "processing.spark.jobs.reconcile", "--dates", "", "--keep-going",
                                        "--stage", "lake"]
    if runner == "docker":
        assert tasks["batch_to_bronze"]["image"] == "tripclick-pipeline/spark-job:9.9.9"
        assert all(t["xcom_all"] for t in tasks.values() if "xcom_all" in t)  # the summary line is picked out


def test_backfill_step_gets_the_dates_every_upstream_finished_ok(scratch):
    summary = "[produce_range] summary dates=3 ok={ok} failed={bad} ok_dates={oks} failed_dates={bads} seconds=1.0"
    facts = describe(
        scratch, {"PIPELINE_RUNNER": "local"}, "--logical-date", "2026-11-30T10:00:00+00:00", *RANGE,
        "--xcom", "producer_server0=" + summary.format(ok=2, bad=1, oks="2026-01-02,2026-01-04", bads="2026-01-03"),
        "--xcom", "producer_server1=" + summary.format(ok=3, bad=0, oks="2026-01-02,2026-01-03,2026-01-04", bads=""),
        "--xcom", "batch_to_bronze=[batch_to_bronze] summary dates=2 ok=1 failed=1 ok_dates=2026-01-04 "
                  "failed_dates=2026-01-02 seconds=3.0")
    tasks = facts["tasks"]
    assert tasks["batch_to_bronze"]["argv"][2:4] == ["--dates", "2026-01-02,2026-01-04"]
    assert tasks["etl_to_gold"]["argv"][2:4] == ["--dates", "2026-01-04"]


RUNNERS_SCRIPT = """
import json, os
from types import SimpleNamespace
from unittest import mock
from airflow.exceptions import AirflowException
from airflow.providers.docker.operators.docker import DockerOperator
from orchestration import runners

def local_step(overrides):
    log = mock.MagicMock()
    with mock.patch.object(runners.Variable, "get", return_value=overrides), \\
         mock.patch.object(runners.LocalStepOperator, "log", new_callable=mock.PropertyMock, return_value=log):
        env = runners.LocalStepOperator(task_id="step", argv=["-V"])._child_environment()
    return {"env": env, "errors": [call.args for call in log.error.call_args_list]}

class FakeDocker:
    def __init__(self, listed=()):
        self.listed, self.removed = list(listed), []
    def containers(self, all, filters):  # the prune's listing; no earlier try of this run exists
        return self.listed if filters.get("status") == "exited" else []
    def inspect_container(self, cid):
        return {"State": {"FinishedAt": next(c["FinishedAt"] for c in self.listed if c["Id"] == cid)}}
    def remove_container(self, cid, force=False):
        self.removed.append(cid)

def step_container(secrets, exit_code=None, listed=()):
    docker = FakeDocker(listed)
    op = runners.StepDockerOperator(task_id="load_to_postgres", image="spark-job:1", secrets=secrets,
                                    keep_failed_hours=72, stop_timeout=10)
    def run(self, context):
        self.container = {"Id": "this-try"}
        if exit_code:
            raise AirflowException(f"Docker container failed: {exit_code}")
        return "done"
    connection = SimpleNamespace(login="key-id", password="secret")
    with mock.patch.object(DockerOperator, "cli", new_callable=mock.PropertyMock, return_value=docker), \\
         mock.patch.object(DockerOperator, "execute", run), \\
         mock.patch.object(runners.BaseHook, "get_connection", return_value=connection):
        try:
            op.execute({"ti": SimpleNamespace(try_number=1), "dag_run": SimpleNamespace(run_id="run1")})
        except AirflowException:
            pass
    return {"removed": docker.removed, "labels": op.labels}

os.environ.update({"AIRFLOW__CORE__FERNET_KEY": "fernet", "AIRFLOW_CONN_X": "conn", "SSH_AUTH_SOCK": "/agent",
                   "POSTGRES_RO_PASSWORD": "ro", "SUPERSET_SECRET_KEY": "superset", "POSTGRES_PASSWORD": "loader",
                   "KAFKA_TOPIC": "worker_topic", "SPARK_LOCAL_DIRS": "/scratch", "LC_ALL": "C.UTF-8"})
recent, old = "2999-01-01T00:00:00.000000000Z", "2020-01-01T00:00:00.000000000Z"
leftovers = [{"Id": "dead-worker", "Names": ["/a"], "Labels": {runners.SECRETS_LABEL: "true"}, "FinishedAt": recent},
             {"Id": "producer-recent", "Names": ["/b"], "Labels": {}, "FinishedAt": recent},
             {"Id": "producer-old", "Names": ["/c"], "Labels": {}, "FinishedAt": old}]
print(json.dumps({
    "local": local_step({"KAFKA_TOPIC": "override_topic", "PATH": "/evil", "AIRFLOW_DB_PASSWORD": "x"}),
    "local_no_variable": local_step({}),
    "failed_with_secrets": step_container(runners.SPARK_JOB_SECRETS, exit_code=1),
    "failed_without_secrets": step_container({}, exit_code=1),
    "succeeded_without_secrets": step_container({}),
    "prune": step_container({}, listed=leftovers),
}))
"""


@pytest.fixture(scope="module")
def runner_facts(tmp_path_factory):
    home = tmp_path_factory.mktemp("runners")
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS and not k.startswith("AIRFLOW")}
    run = subprocess.run([str(AIRFLOW_PYTHON), "-c", RUNNERS_SCRIPT],
                         env={**clean, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
                         capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_local_step_gets_the_allow_list_only_and_the_variable_sets_settings_only(runner_facts):
    local = runner_facts["local"]
    env = local["env"]
    allowed = LOCAL_STEP_SETTINGS | LOCAL_PROCESS_VARIABLES | {"PYTHONUNBUFFERED"}
    assert [name for name in env if name not in allowed and not name.startswith(LOCAL_PROCESS_PREFIXES)] == []
    assert not {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_CONN_X", "SSH_AUTH_SOCK", "POSTGRES_RO_PASSWORD",
                "SUPERSET_SECRET_KEY", "AIRFLOW_DB_PASSWORD"} & env.keys()
    assert (env["KAFKA_TOPIC"], env["POSTGRES_PASSWORD"], env["SPARK_LOCAL_DIRS"]) == ("override_topic", "loader",
                                                                                         "/scratch")
    assert env["PATH"] != "/evil" and env["PYTHONUNBUFFERED"] == "1"
    ((message, variable, refused),) = local["errors"]
    assert variable == "tripclick_local_env" and refused == "AIRFLOW_DB_PASSWORD, PATH" and "refused" in message
    assert runner_facts["local_no_variable"]["errors"] == []


def test_a_failed_step_container_holding_secrets_is_removed_at_once(runner_facts):
    assert runner_facts["failed_with_secrets"]["removed"] == ["this-try"]
    assert runner_facts["failed_with_secrets"]["labels"]["org.tripclick.holds-secrets"] == "true"
    # A producer holds none: its failed container stays for inspection, pruned after keep_failed_hours.
    assert runner_facts["failed_without_secrets"]["removed"] == []
    assert "org.tripclick.holds-secrets" not in runner_facts["failed_without_secrets"]["labels"]
    assert runner_facts["succeeded_without_secrets"]["removed"] == ["this-try"]


def test_the_prune_removes_old_failed_containers_and_any_left_with_secrets(runner_facts):
    assert runner_facts["prune"]["removed"] == ["dead-worker", "producer-old", "this-try"]
