"""tripclick_backfill: prepared day files of a range of dates -> PostgreSQL, without the real-time replay.

Trigger with `start` and `end` (YYYY-MM-DD, both included). Built from orchestration.steps.BACKFILL_STEPS
(the list `make backfill` runs too; the table below) with the same runners as the daily DAG
(PIPELINE_RUNNER=docker|local). Each step runs once for all its dates (one Spark application per step);
each date is still published, checked and loaded on its own. Its summary line (XCom) tells the next
step which dates finished ok, so a bad date is left out of what follows while the others load; `report`
fails naming every date that did not reach PostgreSQL. Reruns are idempotent, also with
`tripclick_daily_pipeline` for the same dates. Parsing reads the process environment only: no I/O, no
Variable.get.
"""
from __future__ import annotations

import os

from airflow import DAG
from airflow.models.param import Param
from airflow.utils.trigger_rule import TriggerRule

from orchestration.config import dag_config
from orchestration.runners import BackfillReportOperator, backfill_range, dag_arguments, step_dates, step_task
from orchestration.steps import BACKFILL_DAG_ID, BACKFILL_STEPS, markdown_table
from orchestration.timeline import DATE_PATTERN

CFG = dag_config(dict(os.environ))

with DAG(
    dag_id=BACKFILL_DAG_ID,
    description="TripClick: many dates from prepared files to PostgreSQL, one Spark application per step",
    doc_md=f"{__doc__}\n{markdown_table(BACKFILL_STEPS)}",
    schedule=None,  # manual triggers only (UI form or REST API with start/end)
    params={
        "start": Param("2026-01-01", type="string", pattern=DATE_PATTERN, description="first date (YYYY-MM-DD)"),
        "end": Param("2026-01-01", type="string", pattern=DATE_PATTERN,
                     description="last date (YYYY-MM-DD), included"),
    },
    user_defined_macros={"step_dates": step_dates},
    tags=["tripclick", "backfill", f"runner:{CFG.runner}"],
    **dag_arguments(CFG, backfill_range),
) as dag:
    tasks = {step.task_id: step_task(step, CFG) for step in BACKFILL_STEPS}
    for step in BACKFILL_STEPS:
        for upstream in step.after:
            tasks[upstream] >> tasks[step.task_id]
    report = BackfillReportOperator(
        task_id="report", steps=BACKFILL_STEPS, trigger_rule=TriggerRule.ALL_DONE,
        doc_md="Fails naming every date of the range that did not reach PostgreSQL and the step that failed it.")
    list(tasks.values()) >> report
