"""tripclick_daily_pipeline: the seed's day, 15:00 producers + streaming -> 17:00 Bronze -> 18:00 Gold.

Built entirely from orchestration.steps.STEPS; the runner (PIPELINE_RUNNER=docker|local) decides whether
a step is a DockerOperator on its host's remote Docker API or a local `.venv` process. Parsing reads the
process environment only (see orchestration.config): no I/O, no Variable.get.
"""
from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.models.param import Param
from airflow.operators.empty import EmptyOperator
from airflow.sensors.date_time import DateTimeSensorAsync
from airflow.timetables.trigger import CronTriggerTimetable
from airflow.utils.trigger_rule import TriggerRule

from orchestration import timeline
from orchestration.config import dag_config
from orchestration.runners import step_task
from orchestration.steps import DAG_ID, DAY_START, STEPS, waits

CFG = dag_config(dict(os.environ))
TZ = pendulum.timezone(CFG.pipeline_tz)


def _time_scale(params) -> float:
    return float(params["time_scale"])


def pipeline_date(logical_date, params) -> str:
    """Macro: the date whose files the run processes (see orchestration.timeline.processed_date)."""
    return timeline.processed_date(logical_date, CFG.pipeline_tz, params.get("date"))


def timeline_at(dag_run, params, clock: str) -> str:
    """Macro: ISO moment of a clock time of the seed's day on this run's (compressed) timeline."""
    return timeline.timeline_point(dag_run.start_date, clock, _time_scale(params)).isoformat()


def stream_seconds(dag_run, params) -> int:
    """Macro: the streaming job's --max-runtime, evaluated when the task (or its retry) starts."""
    return timeline.stream_seconds(dag_run.start_date, pendulum.now("UTC"), _time_scale(params))


def _sensor_id(clock: str) -> str:
    return f"wait_until_{clock.replace(':', '')}"


DOC = f"""
### TripClick daily pipeline ({CFG.runner} runner)

| clock ({CFG.pipeline_tz}) | tasks |
|---|---|
| 15:00 | `producer_server0`, `producer_server1` replay the day's files; `streaming_to_silver` starts |
| 16:00 | producers have replayed their hour; streaming stops at its runtime limit (+ drain margin) |
| 17:00 | `batch_to_bronze` |
| 18:00 | `etl_to_gold` -> `check_lake` (gate) -> `load_to_postgres` -> `reconcile` -> `end` |

The run processes the date of its logical date in {CFG.pipeline_tz} (the 15:00 trigger of day D processes
day D), or the `date` param of a manual trigger. `time_scale` compresses the clock (60 = the day in three
minutes); the timeline is anchored at the moment the run started.
"""

with DAG(
    dag_id=DAG_ID,
    description="TripClick click logs: Kafka -> Silver/Bronze -> Gold marts -> PostgreSQL, one day per run",
    doc_md=DOC,
    # Production (docker runner): every day at 15:00 PIPELINE_TZ, logical date = trigger time. Local mode
    # is demo/test only: runs are triggered for a chosen date, so an unpaused DAG never starts "today".
    schedule=(CronTriggerTimetable(f"{int(DAY_START[3:])} {int(DAY_START[:2])} * * *", timezone=TZ)
              if CFG.runner == "docker" else None),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    params={
        "date": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$",
                      description="Date to process (YYYY-MM-DD); empty = the logical date in PIPELINE_TZ"),
        "time_scale": Param(CFG.time_scale, type="number", exclusiveMinimum=0,
                            description="Timeline compression: 1 = real clock, 60 = 15:00-18:00 in 3 minutes"),
    },
    user_defined_macros={"pipeline_date": pipeline_date, "timeline_at": timeline_at,
                         "stream_seconds": stream_seconds},
    default_args={
        "owner": "tripclick-pipeline",
        # Retries wait 30 s, then 60 s, ... (capped): transient faults (a broker restart, a busy Spark) pass
        # quickly at any TIME_SCALE; Airflow fixes these at parse time, so they cannot follow a run's scale.
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["tripclick", "daily", f"runner:{CFG.runner}"],
) as dag:
    tasks = {step.task_id: step_task(step, CFG) for step in STEPS}
    sensors = {
        clock: DateTimeSensorAsync(
            task_id=_sensor_id(clock),
            target_time=f"{{{{ timeline_at(dag_run, params, '{clock}') }}}}",
            doc_md=f"Deferred (holds no worker slot) until {clock} of the run's timeline.",
        )
        for clock in waits()
    }
    finished = {
        # A step that may fail without stopping the day (see Step.after_finished): its dependants wait
        # for this marker, which succeeds once the step has finished in any state.
        task_id: EmptyOperator(task_id=f"{task_id}_finished", trigger_rule=TriggerRule.ALL_DONE,
                               doc_md=f"Succeeds once `{task_id}` has finished in any state (all_done).")
        for task_id in sorted({t for step in STEPS for t in step.after_finished})
    }
    for task_id, marker in finished.items():
        tasks[task_id] >> marker
    for step in STEPS:
        gate = sensors.get(step.starts_at)  # a step that starts later waits behind its clock's sensor
        for upstream in step.after:
            tasks[upstream] >> (gate or tasks[step.task_id])
        for upstream in step.after_finished:
            finished[upstream] >> (gate or tasks[step.task_id])
        if gate:
            gate >> tasks[step.task_id]
    end = EmptyOperator(task_id="end", doc_md="The day is in PostgreSQL and reconciled, and every step succeeded "
                                              "(also the ones the day did not wait for, e.g. streaming: their "
                                              "failure fails `end`, so the run ends failed).")
    [task for task in tasks.values() if not task.downstream_list] >> end
    [tasks[task_id] for task_id in finished] >> end
