"""tripclick_backfill: prepared day files of a range of dates -> PostgreSQL, without the real-time replay.

Built from orchestration.steps.BACKFILL_STEPS (the list `make backfill` runs too) with the same runners as
the daily DAG (PIPELINE_RUNNER=docker|local). Each step is one process / Spark application for all its
dates; its summary line (XCom) tells the next step which dates finished ok, so a bad date is left out of
what follows while the others load; `report` fails naming every date that did not reach PostgreSQL.
Parsing reads the process environment only (see orchestration.config): no I/O, no Variable.get.
"""
from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.models.param import Param
from airflow.utils.trigger_rule import TriggerRule

from orchestration.config import dag_config
from orchestration.runners import BackfillReportOperator, step_dates, step_task
from orchestration.steps import BACKFILL_DAG_ID, BACKFILL_STEPS

CFG = dag_config(dict(os.environ))
TZ = pendulum.timezone(CFG.pipeline_tz)
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

DOC = f"""
### TripClick backfill ({CFG.runner} runner)

Trigger with `start` and `end` (YYYY-MM-DD, both included). For every date of the range:
`producer_server0`/`producer_server1` send the prepared files in batch mode -> `batch_to_bronze` ->
`etl_to_gold` -> `check_lake` (gate) -> `load_to_postgres` -> `reconcile` -> `report`.
Each step runs once for all its dates (one Spark application per step); each date is still published,
checked and loaded on its own. A date that fails a step is left out of the next ones; `report` fails
and names it. Reruns are idempotent, also with `tripclick_daily_pipeline` for the same dates.
"""

with DAG(
    dag_id=BACKFILL_DAG_ID,
    description="TripClick: many dates from prepared files to PostgreSQL, one Spark application per step",
    doc_md=DOC,
    schedule=None,  # manual triggers only (UI form or REST API with start/end)
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    params={
        "start": Param("2026-01-01", type="string", pattern=DATE_PATTERN, description="first date (YYYY-MM-DD)"),
        "end": Param("2026-01-01", type="string", pattern=DATE_PATTERN,
                     description="last date (YYYY-MM-DD), included"),
    },
    user_defined_macros={"step_dates": step_dates},
    default_args={
        "owner": "tripclick-pipeline",
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["tripclick", "backfill", f"runner:{CFG.runner}"],
) as dag:
    tasks = {step.task_id: step_task(step, CFG) for step in BACKFILL_STEPS}
    for step in BACKFILL_STEPS:
        for upstream in step.after:
            tasks[upstream] >> tasks[step.task_id]
    report = BackfillReportOperator(
        task_id="report", steps=BACKFILL_STEPS, trigger_rule=TriggerRule.ALL_DONE,
        doc_md="Fails naming every date of the range that did not reach PostgreSQL and the step that failed it.")
    list(tasks.values()) >> report
