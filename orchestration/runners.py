"""The two runners of a Step: a DockerOperator on the step's host, or a local subprocess.

Both take the same Step and the same placeholder values (Jinja templates rendered per task
instance), so the command line a step runs cannot differ between them except for the data path.
Also what the two DAG files share: their common arguments, the macros the templates call, the daily
DAG's clock sensors and markers, the backfill's report. Imported by the DAGs only, inside Airflow's
environment.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections import deque
from datetime import datetime, timedelta, timezone

import pendulum
from airflow.exceptions import AirflowException
from airflow.hooks.base import BaseHook
from airflow.models import BaseOperator, Variable
from airflow.operators.empty import EmptyOperator
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sensors.date_time import DateTimeSensorAsync
from airflow.utils.trigger_rule import TriggerRule
from docker.types import Mount

from infrastructure import dates as date_options
from infrastructure.settings import REPO_ROOT
from orchestration import backfill, timeline
from orchestration.alerts import Alerts
from orchestration.config import SPARK_JOB_SECRETS, DagConfig, local_step_environment
from orchestration.steps import OUTPUT_PREFIX, PRODUCER_IMAGE, Step

PIPELINE_PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
# Local runner only: optional JSON object of setting overrides for every step, read when a task starts (e.g.
# {"KAFKA_BROKERS": "..."} to point a run at other services without restarting Airflow); config.LOCAL_STEP_SETTINGS
# only, any other name is refused.
LOCAL_ENV_VARIABLE = "tripclick_local_env"
CONTAINER_DATA_DIR = "/data"
SPARK_MASTER_IN_DOCKER = "spark://spark-master:7077"
_TAIL_LINES = 20
_KILL_GRACE_SECONDS = 30

# Container environment: every value is a template resolved from Airflow Connections/Variables when
# the task runs, so no secret is in the DAG file or its serialized form. Provisioned from .env by
# `python -m orchestration.provision`.
KAFKA_ENV = {
    "KAFKA_BROKERS": "{{ conn.tripclick_kafka.extra_dejson.brokers }}",
    "KAFKA_TOPIC": "{{ conn.tripclick_kafka.extra_dejson.topic }}",
    "KAFKA_DLQ_TOPIC": "{{ conn.tripclick_kafka.extra_dejson.dlq_topic }}",
}
SPARK_JOB_ENV = {
    **KAFKA_ENV,
    "SPARK_MASTER": SPARK_MASTER_IN_DOCKER,
    "LAKE_ROOT": "{{ var.value.tripclick_lake_root }}",
    "S3_ENDPOINT": "{{ conn.tripclick_s3.extra_dejson.endpoint_url }}",
    "POSTGRES_HOST": "{{ conn.tripclick_postgres.host }}",
    "POSTGRES_PORT": "{{ conn.tripclick_postgres.port }}",
    "POSTGRES_DB": "{{ conn.tripclick_postgres.schema }}",
    "POSTGRES_USER": "{{ conn.tripclick_postgres.login }}",
}
STEP_LABEL = "org.tripclick.step"
RUN_LABEL = "org.tripclick.dag-run"
TRY_LABEL = "org.tripclick.try"
SECRETS_LABEL = "org.tripclick.holds-secrets"  # "true" on a container whose environment holds secrets


class LocalStepOperator(BaseOperator):
    """Runs `.venv/bin/python <argv>` in the repository and streams its output into the task log."""

    template_fields = ("argv",)
    ui_color = "#e8f4ea"

    def __init__(self, *, argv: list[str], python: str = PIPELINE_PYTHON, **kwargs) -> None:
        super().__init__(**kwargs)
        self.argv = argv
        self.python = python
        self._process: subprocess.Popen | None = None

    def execute(self, context) -> None:
        command = [self.python, *self.argv]
        self.log.info("running: %s", " ".join(command))
        self._process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self._child_environment(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        summary = None
        for line in self._process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            summary = summary_of([line]) or summary
            self.log.info("%s%s", OUTPUT_PREFIX, line)
        code = self._process.wait()
        if code != 0:
            last = tail[-1] if tail else "(no output)"
            raise AirflowException(f"step {self.task_id} failed: exit code {code}; last output line: {last}")
        self.log.info("step %s succeeded", self.task_id)
        # A date-range step's summary line (ok/failed dates) is its XCom: the next backfill step reads it.
        return summary

    def _child_environment(self) -> dict[str, str]:
        """The allow-listed part of the worker's environment (orchestration.config.local_step_environment), then
        the overrides of the Variable that name settings a step may be given."""
        overrides = Variable.get(LOCAL_ENV_VARIABLE, default_var={}, deserialize_json=True)
        if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
            raise AirflowException(f"Variable {LOCAL_ENV_VARIABLE} must be a JSON object of strings")
        env, refused = local_step_environment(os.environ, overrides)
        if refused:
            self.log.error("Variable %s: refused %s: not a setting a step may be given (secrets and other "
                           "variables come from the worker or the .env only)", LOCAL_ENV_VARIABLE, ", ".join(refused))
        accepted = sorted(overrides.keys() - set(refused))
        if accepted:
            self.log.warning("environment overrides from Variable %s: %s", LOCAL_ENV_VARIABLE, ", ".join(accepted))
        return {**env, "PYTHONUNBUFFERED": "1"}

    def on_kill(self) -> None:
        """Stop the whole process group: SIGTERM first (the producer flushes, Spark stops cleanly)."""
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=_KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)


def summary_of(lines) -> str | None:
    """The last date-range summary line (infrastructure.dates) among a step's output lines, else None."""
    for line in reversed(lines or []):
        text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
        if date_options.parse_summary(text) is not None:
            return text.strip()
    return None


def placeholder_values(cfg: DagConfig, step: Step | None = None) -> dict[str, str]:
    """The Jinja templates that fill a Step's argv placeholders (macros: daily_macros, step_dates)."""
    values = {
        "date": "{{ pipeline_date(logical_date, params) }}",
        "speed": "{{ '%g' % params.time_scale }}",
        "stream_seconds": "{{ stream_seconds(dag_run, params) }}",
        "warm_up_rows": str(cfg.stream_warm_up_rows),
        "run": "{{ run_token(dag_run) }}",
        "data_dir": CONTAINER_DATA_DIR if cfg.runner == "docker" else cfg.local_data_dir,
    }
    if step is not None and "dates" in step.placeholders():
        # backfill: the range (first steps) or the dates every upstream step finished ok (its XCom summary)
        values["dates"] = f"{{{{ step_dates(ti, params, {list(step.after)!r}) }}}}"
    return values


def local_task(step: Step, cfg: DagConfig, **task_args) -> LocalStepOperator:
    return LocalStepOperator(task_id=step.task_id, argv=step.render_argv(placeholder_values(cfg, step)),
                             doc_md=step.doc, retries=cfg.retries(step.retries), **task_args)


def short_hash(text: str) -> str:
    """Safe in container names ([a-zA-Z0-9_.-]) and lake paths."""
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def container_name(task_id: str, run_id: str, try_number: int) -> str:
    """Deterministic per run and try."""
    return f"tripclick-{task_id.replace('_', '-')}-{short_hash(run_id)}-try{try_number}"


def run_token(dag_run) -> str:
    """The token of the stream's ready marker: its run id and start, so a cleared run (Airflow restarts its start
    date) never takes the marker of an earlier attempt, while a retry of the stream within the run keeps it."""
    return short_hash(f"{dag_run.run_id}|{dag_run.start_date.isoformat()}")


class StepDockerOperator(DockerOperator):
    """A Step's container on its host's Docker API, safe to retry.

    Before the container starts: any container of an earlier try of the same task and run that still
    runs is stopped and removed (a retry never races its stale first try), and failed step containers
    older than `keep_failed_hours` are pruned (kept that long for inspection). Secrets reach the
    container through the private environment, which `docker inspect` shows for as long as the container
    exists: so a container holding secrets is removed as soon as it ends, failed or not (its output is in the
    task log already), and one a dead worker left behind goes with the next prune. on_kill stops with
    `stop_timeout` seconds of grace.
    """

    def __init__(self, *, secrets: dict[str, tuple[str, str]], keep_failed_hours: float, stop_timeout: int,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.secrets = secrets
        self.keep_failed_hours = keep_failed_hours
        self.stop_timeout = stop_timeout

    def execute(self, context):
        ti = context["ti"]
        run_id = context["dag_run"].run_id
        self.container_name = container_name(self.task_id, run_id, ti.try_number)
        self.labels = {STEP_LABEL: self.task_id, RUN_LABEL: run_id, TRY_LABEL: str(ti.try_number),
                       **({SECRETS_LABEL: "true"} if self.secrets else {})}
        self._private_environment = {name: getattr(BaseHook.get_connection(conn_id), field) or ""
                                     for name, (conn_id, field) in self.secrets.items()}
        self._remove_earlier_tries(run_id)
        self._prune_failed()
        succeeded = False
        try:
            result = super().execute(context)
            succeeded = True
        finally:
            self._remove_ended_container(succeeded)
        # A date-range step (xcom_all) hands on only its summary line, never its whole log.
        return summary_of(result) if self.xcom_all else result

    def _remove_ended_container(self, succeeded: bool) -> None:
        """A container that succeeded goes; a failed one stays for inspection (pruned by age) unless it holds
        secrets."""
        if self.container is None:  # it failed before a container was created
            return
        if succeeded or self.secrets:
            self.cli.remove_container(self.container["Id"], force=True)
        if not succeeded and self.secrets:
            self.log.info("removed failed container %s: its environment holds secrets (its output is above)",
                          self.container_name)

    def _step_containers(self, *filters: str) -> list[dict]:
        return self.cli.containers(all=True, filters={"label": [f"{STEP_LABEL}={self.task_id}", *filters]})

    def _remove_earlier_tries(self, run_id: str) -> None:
        for container in self._step_containers(f"{RUN_LABEL}={run_id}"):
            name = container["Names"][0].lstrip("/")
            if container["State"] == "running":
                self.log.warning("stopping container %s of an earlier try (still running)", name)
                self.cli.stop(container["Id"], timeout=self.stop_timeout)
            if name == self.container_name or container["State"] != "exited":
                self.cli.remove_container(container["Id"], force=True)
                self.log.info("removed container %s of an earlier try", name)

    def _prune_failed(self) -> None:
        """Failed step containers older than keep_failed_hours, and any holding secrets (a worker that died
        before removing its container left it)."""
        cutoff = time.time() - self.keep_failed_hours * 3600
        for container in self.cli.containers(all=True, filters={"label": STEP_LABEL, "status": "exited"}):
            finished = self.cli.inspect_container(container["Id"])["State"]["FinishedAt"]
            holds_secrets = (container.get("Labels") or {}).get(SECRETS_LABEL) == "true"
            if holds_secrets or _docker_time(finished) < cutoff:
                self.cli.remove_container(container["Id"])
                self.log.info("pruned failed step container %s (finished %s%s)", container["Names"][0], finished,
                              ", held secrets" if holds_secrets else "")

    def on_kill(self) -> None:
        if self.hook.client_created and self.container is not None:
            self.log.info("stopping container %s (%s s grace)", self.container_name, self.stop_timeout)
            self.cli.stop(self.container["Id"], timeout=self.stop_timeout)


def _docker_time(value: str) -> float:
    """Docker's RFC 3339 with nanoseconds -> epoch seconds."""
    head = value.split(".")[0].rstrip("Z")
    return datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def docker_task(step: Step, cfg: DagConfig, **task_args) -> DockerOperator:
    host = cfg.docker_host(step.host)
    is_producer = step.image == PRODUCER_IMAGE
    mounts = [Mount(target=CONTAINER_DATA_DIR, source=cfg.producer_data_dir, type="bind", read_only=True)]
    environment = {**(KAFKA_ENV if is_producer else SPARK_JOB_ENV), "PIPELINE_TZ": cfg.pipeline_tz,
                   # the monitoring host's Pushgateway (monitoring/metrics.py); empty = no push
                   "PUSHGATEWAY_URL": "{{ var.value.tripclick_pushgateway_url }}"}
    if not is_producer:
        environment.update({name: value for name, value in (("SPARK_CORES_MAX", cfg.spark_cores_max),
                                                            ("SPARK_JAVA_OPTIONS", cfg.spark_java_options)) if value})
    return StepDockerOperator(
        task_id=step.task_id,
        image=step.image_ref(cfg.image_registry, cfg.image_tag),
        command=["python", *step.render_argv(placeholder_values(cfg, step))],
        xcom_all="dates" in step.placeholders(),  # execute() keeps the summary line of the range step
        docker_url=host.url,
        tls_ca_cert=host.ca_cert if host.tls else None,
        tls_client_cert=host.client_cert if host.tls else None,
        tls_client_key=host.client_key if host.tls else None,
        tls_verify=host.tls,
        mount_tmp_dir=False,  # the default bind-mounts a temp dir of the Airflow host: absent remotely
        mounts=mounts if is_producer else [],
        network_mode=cfg.docker_network,
        environment=environment,
        secrets={} if is_producer else SPARK_JOB_SECRETS,
        keep_failed_hours=cfg.keep_failed_hours,
        # Longer than the streaming job's drain margin, so a stopped job always finishes its batch.
        stop_timeout=cfg.stream_drain_seconds + 30,
        auto_remove="never",  # the provider's "success" removes failed containers too; execute() decides
        force_pull=False,
        doc_md=step.doc,
        retries=cfg.retries(step.retries),
        **task_args,
    )


def step_task(step: Step, cfg: DagConfig, **task_args) -> BaseOperator:
    return docker_task(step, cfg, **task_args) if cfg.runner == "docker" else local_task(step, cfg, **task_args)


def dag_arguments(cfg: DagConfig, processed) -> dict:
    """The DAG arguments both DAGs share: one run at a time, no catch-up, a 12 h limit, the retry delays, and
    the alerts (orchestration.alerts) naming what a run processes: `processed(logical_date, params)`."""
    alerts = Alerts(cfg.airflow_url, processed)
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz=cfg.pipeline_tz),
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": timedelta(hours=12),
        "sla_miss_callback": alerts.sla_missed,
        "default_args": {
            "on_failure_callback": alerts.task_failed,
            "owner": "tripclick-pipeline",
            # Retries wait PIPELINE_RETRY_DELAY_SECONDS (30), then twice that, ... (capped): transient faults (a
            # broker restart, a busy Spark) pass quickly at any TIME_SCALE; Airflow fixes these at parse time,
            # so they cannot follow a run's scale.
            "retry_delay": timedelta(seconds=cfg.retry_delay_seconds),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
        },
    }


# ---- the daily DAG's clock: the macros behind placeholder_values' templates, its waits -------------------------

def daily_macros(cfg: DagConfig) -> dict:
    def pipeline_date(logical_date, params) -> str:
        """The date whose files the run processes (see orchestration.timeline.processed_date)."""
        return timeline.processed_date(logical_date, cfg.pipeline_tz, params.get("date"))

    def stream_seconds(dag_run, params) -> int:
        """The streaming job's --max-runtime, evaluated when the task (or its retry) starts."""
        return timeline.stream_seconds(dag_run.start_date, pendulum.now("UTC"), float(params["time_scale"]),
                                       cfg.stream_drain_seconds)

    return {"pipeline_date": pipeline_date, "timeline_at": timeline_at, "stream_seconds": stream_seconds,
            "run_token": run_token}


def timeline_at(dag_run, params, clock: str) -> str:
    """ISO moment of a clock time of the seed's day on this run's (compressed) timeline."""
    return timeline.timeline_point(dag_run.start_date, clock, float(params["time_scale"])).isoformat()


def wait_until(clock: str) -> DateTimeSensorAsync:
    """`wait_until_1700` for '17:00': deferred to the triggerer, so the wait holds no worker slot."""
    timeline.clock_offset(clock)  # a clock time before the day's start fails the parse, not the run
    return DateTimeSensorAsync(
        task_id=f"wait_until_{clock.replace(':', '')}",
        target_time=f"{{{{ timeline_at(dag_run, params, '{clock}') }}}}",
        doc_md=f"Deferred (holds no worker slot) until {clock} of the run's timeline.")


def finished(task: BaseOperator) -> EmptyOperator:
    """A marker that succeeds once `task` has finished in any state (all_done): what waits for the marker
    goes on when `task` fails."""
    marker = EmptyOperator(task_id=f"{task.task_id}_finished", trigger_rule=TriggerRule.ALL_DONE,
                           doc_md=f"Succeeds once `{task.task_id}` has finished in any state (all_done).")
    task >> marker
    return marker


class BackfillReportOperator(BaseOperator):
    """The backfill's last task: names every date that did not reach PostgreSQL and the step that failed it
    (from the steps' summary XComs); fails when there is any, so the run ends failed naming the bad dates."""

    ui_color = "#fbe9e7"

    def __init__(self, *, steps: tuple[Step, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps = steps

    def execute(self, context) -> str:
        requested = requested_dates(context["params"])
        ti = context["ti"]
        outcomes = {step.task_id: step_outcome(ti, step.task_id) for step in self.steps}
        for step in self.steps:
            ok, bad = outcomes[step.task_id] or ([], [])
            self.log.info("%s: ok=%d failed=%d %s", step.task_id, len(ok), len(bad),
                          ",".join(d.isoformat() for d in bad) if outcomes[step.task_id] else "(did not finish)")
        reasons = backfill.failed_dates(requested, self.steps, outcomes)
        started = getattr(context.get("dag_run"), "start_date", None)
        seconds = (datetime.now(timezone.utc) - started).total_seconds() if started else 0.0
        line = backfill.report_line(requested, reasons, seconds)
        self.log.info("%s", line)
        if reasons:
            raise AirflowException(f"backfill: {len(reasons)} of {len(requested)} dates failed: "
                                   + ", ".join(f"{d} ({why})" for d, why in sorted(reasons.items())))
        return line


def backfill_range(logical_date, params) -> str:
    """What a backfill run processes, for its alerts: 'start..end'."""
    return f"{params['start']}..{params['end']}"


def requested_dates(params) -> list:
    """The dates of a backfill run's params (start..end, both included)."""
    from datetime import date

    return date_options.date_range(date.fromisoformat(params["start"]), date.fromisoformat(params["end"]))


def step_outcome(ti, task_id: str):
    """(ok, failed) dates of a finished range step from its XCom summary; None when it did not succeed."""
    return date_options.parse_summary(ti.xcom_pull(task_ids=task_id))


def step_dates(ti, params, upstream: list[str]) -> str:
    """Macro of the backfill DAG: the comma list of dates a step works on (orchestration.backfill.step_dates)."""
    requested = requested_dates(params)
    outcomes = {task_id: step_outcome(ti, task_id) for task_id in upstream}
    return ",".join(d.isoformat() for d in backfill.step_dates(requested, tuple(upstream), outcomes))
