"""The one declarative list of the pipeline's steps: what each runs (argv) and where (host, image).

Both runners are built from `STEPS`: the docker runner starts `image:IMAGE_TAG` on the step's host
through that host's remote Docker API with `python <argv>` as the command; the local runner runs
`.venv/bin/python <argv>` as a subprocess of the Airflow worker. This module is pure (no Airflow
import) so other layers' static checks can import it from any environment.

`argv` may contain these placeholders, filled in per run:
  {date}            the processed pipeline date, YYYY-MM-DD
  {data_dir}        the producer input root (DATA_DIR locally, the read-only mount in a container)
  {speed}           the run's TIME_SCALE (the producers replay at the same compression as the timeline)
  {stream_seconds}  seconds the streaming job still has until the 16:00 point of the run's timeline
                    plus the drain margin STREAM_DRAIN_SECONDS (see orchestration.timeline)
  {warm_up_rows}    STREAM_WARM_UP_ROWS: synthetic clicks the streaming job warms up on (processing/warm_up.py)
  {run}             a short hash of the Airflow run (id and start): the token of the streaming job's ready
                    marker that `wait_for_stream` waits for (processing/stream_ready.py)
  {dates}           backfill only: comma list of the dates this step works on (the requested range for
                    the first steps, else the dates every step it comes after finished ok; see
                    orchestration.backfill)

When a daily step runs is the DAG's business: dags/tripclick_daily_pipeline.py states the day's order
and clock times. `BACKFILL_STEPS` is the second list, for the DAG `tripclick_backfill` and `make backfill`:
the same jobs over a range of dates without the real-time replay (producers in batch mode, no streaming,
no clock), ordered by `after`, which also decides which dates each step takes.

`markdown_table` renders a list for people: the DAGs' doc_md and orchestration/README.md (kept equal by
`python -m orchestration.doc_tables`) show it rather than a retyped copy.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

DAG_ID = "tripclick_daily_pipeline"
BACKFILL_DAG_ID = "tripclick_backfill"
# The local runner prefixes each output line of a step with this in the task log (how readers find them).
OUTPUT_PREFIX = "| "
HOSTS = ("webserver0", "webserver1", "spark")
PRODUCER_IMAGE = "tripclick-pipeline/producer"
SPARK_JOB_IMAGE = "tripclick-pipeline/spark-job"
IMAGES = (PRODUCER_IMAGE, SPARK_JOB_IMAGE)
PLACEHOLDERS = frozenset({"date", "data_dir", "speed", "stream_seconds", "warm_up_rows", "run", "dates"})


@dataclass(frozen=True)
class Step:
    task_id: str
    host: str  # one of HOSTS: whose Docker API runs the container in docker mode
    image: str  # one of IMAGES, without tag
    argv: tuple[str, ...]  # the command after `python`, with {placeholders}
    # Backfill only: the steps this one comes after; it takes the dates all of them finished ok. The daily
    # DAG states its own order and clock times (dags/tripclick_daily_pipeline.py).
    after: tuple[str, ...] = ()
    retries: int = 2
    doc: str = ""

    def __post_init__(self) -> None:
        if self.host not in HOSTS:
            raise ValueError(f"{self.task_id}: host {self.host!r} is not one of {HOSTS}")
        if self.image not in IMAGES:
            raise ValueError(f"{self.task_id}: image {self.image!r} is not one of {IMAGES}")
        unknown = self.placeholders() - PLACEHOLDERS
        if unknown:
            raise ValueError(f"{self.task_id}: unknown placeholders {sorted(unknown)} in argv")

    def placeholders(self) -> set[str]:
        return {name for arg in self.argv for _, name, _, _ in string.Formatter().parse(arg) if name}

    @property
    def module(self) -> str:
        """The Python module the step runs (`-m <module>`)."""
        return self.argv[self.argv.index("-m") + 1]

    def image_ref(self, registry: str, tag: str) -> str:
        """`<IMAGE_REGISTRY><image>:<tag>`; the registry prefix is empty or ends with '/'."""
        return f"{registry}{self.image}:{tag}"

    def render_argv(self, values: dict[str, str]) -> list[str]:
        """argv with every placeholder replaced; a missing value is an error, never an empty string."""
        missing = self.placeholders() - values.keys()
        if missing:
            raise KeyError(f"{self.task_id}: no value for placeholders {sorted(missing)}")
        return [arg.format(**values) for arg in self.argv]


def _producer(server: str, host: str) -> Step:
    return Step(
        task_id=f"producer_{server}",
        host=host,
        image=PRODUCER_IMAGE,
        argv=("-m", "ingestion.producer", "--file", f"{{data_dir}}/{server}/date={{date}}/events.json",
              "--server", server, "--mode", "realtime", "--speed", "{speed}"),
        doc=f"Replays {server}'s click log of the processed date into Kafka at its event_ts "
            "pacing (compressed by TIME_SCALE). A retry replays the whole file; Silver/Gold stay exact "
            "because the processing jobs deduplicate on dedup_key.",
    )


def _spark_job(job: str, *extra: str, task_id: str | None = None, **fields) -> Step:
    return Step(task_id=task_id or job, host="spark", image=SPARK_JOB_IMAGE,
                argv=("-m", f"processing.spark.jobs.{job}", "--date", "{date}", *extra), **fields)


STEPS: tuple[Step, ...] = (
    _spark_job(
        "streaming_to_silver", "--warm-up-rows", "{warm_up_rows}", "--ready-token", "{run}",
        "--max-runtime", "{stream_seconds}",
        retries=1,
        doc="Structured Streaming Kafka -> Silver and the live marts. Warms its JVM up on synthetic clicks, "
            "starts its queries and writes its ready marker; stops by itself at the 16:00 point of the run's "
            "timeline plus a drain margin, counted from that moment (a retry resumes from its checkpoint).",
    ),
    Step(
        task_id="wait_for_stream", host="spark", image=SPARK_JOB_IMAGE,
        argv=("-m", "processing.stream_ready", "--token", "{run}"),
        retries=0,
        doc="Waits (up to 5 minutes) for the streaming job's ready marker, so the producers' first clicks "
            "meet a warm stream. Fails after the timeout, and the producers start anyway: a stream that "
            "never came up must not hold up the day (Bronze rebuilds Silver).",
    ),
    _producer("server0", "webserver0"),
    _producer("server1", "webserver1"),
    _spark_job(
        "batch_to_bronze",
        doc="The processed date's messages from Kafka -> Bronze (raw value + Kafka metadata). The first "
            "run records the Kafka offset range per partition that holds the date; a rerun reads exactly "
            "those ranges (and refuses if Kafka no longer holds them).",
    ),
    _spark_job(
        "etl_to_gold",
        doc="Exact Silver (stream rows, if any, UNION Bronze, deduplicated), quarantine and the five "
            "Gold marts (Parquet) for the processed date.",
    ),
    _spark_job(
        "reconcile", "--stage", "lake", task_id="check_lake", retries=0,
        doc="The one gate before serving, two kinds of checks. Counts: producer manifests complete and "
            "balanced, acknowledged <= Bronze per server, Kafka (recorded offsets) = Bronze, valid + "
            "quarantined = Bronze, exact Silver, Gold = Silver. Data quality (Great Expectations suites of "
            "processing/quality.py on the exact Silver and every Gold mart): results replace the date's rows of "
            "gold.dq_results and a Data Docs page under <LAKE_ROOT>/quality/docs/ (path in the task log). On "
            "any mismatch or failed 'fail' expectation the load never runs, so the dashboard keeps the previous "
            "numbers; 'warn' expectations are recorded and the day loads.",
    ),
    _spark_job(
        "load_to_postgres",
        doc="Gold marts of the processed date -> PostgreSQL schema gold (replaces the date's rows).",
    ),
    _spark_job(
        "reconcile", "--stage", "postgres", retries=0,
        doc="After the load: PostgreSQL rows = Gold rows for every mart of the date; fails on any mismatch "
            "(a retry cannot fix a mismatch, so none is configured).",
    ),
)

STEPS_BY_ID = {step.task_id: step for step in STEPS}


# ---- the backfill: the same jobs for a range of dates, one run of each job for all its dates --------------------

PRODUCERS = ("producer_server0", "producer_server1")

def _range_producer(server: str, host: str) -> Step:
    return Step(
        task_id=f"producer_{server}", host=host, image=PRODUCER_IMAGE,
        argv=("-m", "ingestion.produce_range", "--server", server, "--data-dir", "{data_dir}", "--dates", "{dates}",
              "--keep-going"),
        retries=1,
        doc=f"{server}'s prepared file of every date of the range -> Kafka in batch mode (no real-time pacing), "
            "one producer run per date with its own manifest; a date whose file is missing or corrupt is "
            "reported and left out of the following steps.",
    )


def _range_job(job: str, *extra: str, task_id: str | None = None, **fields) -> Step:
    return Step(task_id=task_id or job, host="spark", image=SPARK_JOB_IMAGE,
                argv=("-m", f"processing.spark.jobs.{job}", "--dates", "{dates}", "--keep-going", *extra), **fields)


BACKFILL_STEPS: tuple[Step, ...] = (
    _range_producer("server0", "webserver0"),
    _range_producer("server1", "webserver1"),
    _range_job("batch_to_bronze", after=PRODUCERS, retries=1,
               doc="Bronze of every date both producers sent: dates without an offsets record share ONE "
                   "discovery scan of the topic, each date is published and recorded on its own; dates "
                   "with a record are reread from it (as a daily rerun)."),
    _range_job("etl_to_gold", after=("batch_to_bronze",), retries=1,
               doc="Exact Silver (from Bronze; the stream's rows if any), quarantine and Gold marts, per date, "
                   "in one Spark application."),
    _range_job("reconcile", "--stage", "lake", task_id="check_lake", after=("etl_to_gold",), retries=0,
               doc="The gate of every date (count checks + data quality suites, gold.dq_results); only the "
                   "dates that pass are loaded."),
    _range_job("load_to_postgres", after=("check_lake",), retries=1,
               doc="Gold -> PostgreSQL for the dates that passed the gate, one transaction per date."),
    _range_job("reconcile", "--stage", "postgres", after=("load_to_postgres",), retries=0,
               doc="PostgreSQL = Gold per mart for every loaded date."),
)
BACKFILL_STEPS_BY_ID = {step.task_id: step for step in BACKFILL_STEPS}


def markdown_table(steps: tuple[Step, ...]) -> str:
    """One row per step: task, host, image, command, retries (and `after` when the list has an order)."""
    ordered = any(step.after for step in steps)
    head = ["task", "host", "image", "command (after `python`)", *(["after"] if ordered else []), "retries"]
    rows = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}"]
    for step in steps:
        cells = [f"`{step.task_id}`", step.host, f"`{step.image}`", f"`{' '.join(step.argv)}`",
                 *([", ".join(f"`{t}`" for t in step.after) or "-"] if ordered else []), str(step.retries)]
        rows.append(f"| {' | '.join(cells)} |")
    return "\n".join(rows)
