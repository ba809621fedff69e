"""tripclick_daily_pipeline: the seed's day, one date per run (clock times in PIPELINE_TZ).

- 15:00 `streaming_to_silver` starts: it warms its JVM up, then writes Silver and the live marts from Kafka
  until 16:00 (plus a drain margin). Once it reports ready (`wait_for_stream`), `producer_server0` and
  `producer_server1` replay the date's click logs into Kafka for an hour.
- 17:00 `batch_to_bronze`: the date's messages from Kafka to Bronze.
- 18:00 `etl_to_gold` (exact Silver, Gold marts) -> `check_lake` (the gate) -> `load_to_postgres` -> `reconcile`.

The run processes the date of its logical date in PIPELINE_TZ (the 15:00 trigger of day D processes day D),
or the `date` param of a manual trigger. `time_scale` compresses the clock (60 = the day in three minutes);
the timeline is anchored at the moment the run started. What each step runs and where is
orchestration.steps.STEPS (the table below); PIPELINE_RUNNER=docker|local makes each a container on its
host's Docker API or a local process. A task that fails for good, and a `reconcile` later than
ALERT_DAY_DEADLINE, send an e-mail and a Slack message (orchestration.alerts). Parsing reads the process
environment only: no I/O, no Variable.get.
"""
from __future__ import annotations

import os

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.empty import EmptyOperator
from airflow.timetables.trigger import CronTriggerTimetable

from orchestration.config import dag_config
from orchestration.runners import dag_arguments, daily_macros, finished, step_task, wait_until
from orchestration.steps import DAG_ID, STEPS, markdown_table
from orchestration.timeline import DATE_PATTERN

CFG = dag_config(dict(os.environ))
MACROS = daily_macros(CFG)

with DAG(
    dag_id=DAG_ID,
    description="TripClick click logs: Kafka -> Silver/Bronze -> Gold marts -> PostgreSQL, one day per run",
    doc_md=f"{__doc__}\n{markdown_table(STEPS)}",
    # Production (docker runner): a trigger timetable's logical date is the trigger time, so the run starting
    # at 15:00 of day D processes day D. Local mode is demo/test only: runs are triggered for a chosen date,
    # so an unpaused DAG never starts "today".
    schedule=CronTriggerTimetable("0 15 * * *", timezone=CFG.pipeline_tz) if CFG.runner == "docker" else None,
    params={
        "date": Param(None, type=["null", "string"], pattern=DATE_PATTERN,
                      description="Date to process (YYYY-MM-DD); empty = the logical date in PIPELINE_TZ"),
        "time_scale": Param(CFG.time_scale, type="number", exclusiveMinimum=0,
                            description="Timeline compression: 1 = real clock, 60 = 15:00-18:00 in 3 minutes"),
    },
    user_defined_macros=MACROS,
    tags=["tripclick", "daily", f"runner:{CFG.runner}"],
    **dag_arguments(CFG, MACROS["pipeline_date"]),
) as dag:
    # The day must be reconciled by ALERT_DAY_DEADLINE, counted from its 15:00 trigger. Airflow checks the SLAs
    # of scheduled runs only (the docker runner's); a miss is alerted like a failure (dag_arguments).
    step = {s.task_id: step_task(s, CFG, sla=CFG.day_sla if s.task_id == "reconcile" else None) for s in STEPS}

    # 15:00, the run's start: streaming starts; the producers replay the day into Kafka once it is ready, or once
    # wait_for_stream gave up (a stream that never comes up must not hold up the day).
    producers = [step["producer_server0"], step["producer_server1"]]
    streaming = step["streaming_to_silver"]
    finished(step["wait_for_stream"]) >> producers

    # 17:00: Bronze, once both producers succeeded and streaming has finished in any state. Bronze alone
    # rebuilds the exact Silver, so a failed stream does not stop the day; it fails the run at `end`.
    [*producers, finished(streaming)] >> wait_until("17:00") >> step["batch_to_bronze"]

    # 18:00: exact Silver and the Gold marts, the gate (a mismatch keeps the day out of PostgreSQL, so the
    # dashboard keeps the previous numbers), the load, and PostgreSQL checked against Gold.
    (step["batch_to_bronze"] >> wait_until("18:00")
     >> step["etl_to_gold"] >> step["check_lake"] >> step["load_to_postgres"] >> step["reconcile"])

    [step["reconcile"], streaming] >> EmptyOperator(
        task_id="end", doc_md="The day is in PostgreSQL and reconciled, and every step succeeded (also streaming, "
                              "which the day did not wait for: its failure fails `end`, so the run ends failed).")
