"""Command-line plumbing shared by the jobs: date options, grep-able logging, failure -> exit 1.

Every batch job takes one date (`--date D`, the DAG's daily step) or several (`--date` repeated, `--dates`,
`--start/--end`; see infrastructure.dates): `run_per_date` then runs the job's per-date body for each date in
ONE process and SparkSession, each date still published, checked or loaded as its own unit; a date that fails
is reported and the others go on; the last line names the good and the bad dates. Each date's outcome (rows,
seconds, success) is pushed to the Pushgateway as the `tripclick_job_*` metrics (monitoring/metrics.py) and
upserted into gold.pipeline_runs (one row per step and date, the last attempt's; the Pipeline health dashboard).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
import traceback
from datetime import date, datetime, timezone
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2

from gold import database
from infrastructure import dates
from infrastructure.settings import ConfigError, Settings, load
from monitoring import metrics

OptionsT = TypeVar("OptionsT")
PIPELINE_RUNS_TIMEOUT_SECONDS = 5  # connect timeout of the pipeline_runs write: an unreachable database costs this


class DateParser(argparse.ArgumentParser):
    """An ArgumentParser whose parse_args also resolves the date selection (args.dates, args.range_mode)."""

    def parse_args(self, args=None, namespace=None):  # noqa: D102 - argparse's own contract
        return dates.resolve(self, super().parse_args(args, namespace))


def parser(job: str, description: str, several: bool = False) -> argparse.ArgumentParser:
    """`--date D` (required); with several=True the date-range options of infrastructure.dates instead."""
    prog = f"python -m processing.spark.jobs.{job}"
    if not several:
        p = argparse.ArgumentParser(prog=prog, description=description)
        p.add_argument("--date", required=True, type=date.fromisoformat, help="pipeline date YYYY-MM-DD")
        return p
    p = DateParser(prog=prog, description=description)
    dates.add_date_arguments(p)
    return p


def options(kind: type[OptionsT], args: argparse.Namespace, **given: Any) -> OptionsT:
    """A job's typed options (a dataclass) from its parsed arguments: each field reads the argument of its
    name, unless `given` sets it."""
    return kind(**{f.name: given[f.name] if f.name in given else getattr(args, f.name)
                   for f in dataclasses.fields(kind)})


def log(job: str, message: str) -> None:
    print(f"[{job}] {message}", flush=True)


_rows: dict[tuple[str, date], int] = {}  # (job, date) -> rows its summary reported, until the date's push


def summary(job: str, day: date, rows: int, /, **fields: object) -> None:
    """The date's grep-able last line, `summary date=D k=v ...`; `rows` is what the job's metrics report."""
    _rows[(job, day)] = rows
    log(job, f"summary date={day} " + " ".join(f"{k}={v}" for k, v in fields.items()))


def report_date(job: str, settings: Settings, day: date, code: int, seconds: float) -> None:
    """The date's outcome, once per (job, date) when the job is done with it: pushed as metrics and upserted into
    gold.pipeline_runs (the last attempt's row). Neither can fail the job: a failed write is one warning line."""
    rows, finished = _rows.pop((job, day), 0), time.time()
    metrics.push("job", {"step": job, "date": str(day)},
                 {"rows": rows, "duration_seconds": seconds, "success": float(code == 0),
                  "finished_timestamp_seconds": finished})
    try:
        conn = database.connect_loader(settings, f"{job} pipeline_runs", timeout=PIPELINE_RUNS_TIMEOUT_SECONDS)
        try:
            with conn, conn.cursor() as cur:  # one short transaction
                database.record_run(cur, job, day, code == 0, rows, seconds,
                                    datetime.fromtimestamp(finished, timezone.utc))
        finally:
            conn.close()
    except (psycopg2.Error, OSError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        log(job, f"WARNING pipeline_runs not written: {type(exc).__name__}: {detail}")


def run(job: str, body: Callable[[Settings], int]) -> int:
    """Run a job body with settings; any exception becomes one clear error line and exit code 1."""
    started = time.monotonic()
    settings = None
    try:
        settings = load()
        log(job, f"master={settings.spark_master} lake={settings.lake_root} topic={settings.kafka_topic}")
        code = body(settings)
    except ConfigError as exc:
        log(job, f"ERROR configuration: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the job boundary: report and fail, never hide
        traceback.print_exc(file=sys.stderr)
        log(job, f"ERROR {error_line(exc, settings)}")
        return 1
    log(job, f"finished exit={code} in {time.monotonic() - started:.1f}s")
    return code


# What py4j says when the JVM behind the Python driver is gone.
JVM_LOST = ("does not exist in the JVM", "Answer from Java side is empty", "Error while sending or receiving",
            "Connection refused")


def error_line(exc: BaseException, settings: Settings | None) -> str:
    """The exception in one line; a JVM out of heap (anywhere in Spark's long text), or a driver JVM that died
    under Python (the usual cause: its heap), names the setting to raise."""
    text = str(exc)
    memory = settings.spark_driver_memory if settings else "?"
    advice = (f"raise SPARK_DRIVER_MEMORY (now {memory}; local mode runs every task in the driver) "
              "or run fewer dates at once")
    if "java.lang.OutOfMemoryError" in text:
        return f"OutOfMemoryError: the work does not fit in Spark's heap: {advice}"
    if type(exc).__name__.startswith("Py4J") and any(sign in text for sign in JVM_LOST):
        return f"{type(exc).__name__}: the Spark driver JVM died (its log says why, most often its heap): {advice}"
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def run_per_date(job: str, args: argparse.Namespace, body: Callable[..., int],
                 setup: Callable[[Settings, list], Any] | None = None) -> int:
    """Run `body(settings, day)` for the dates `args` selected: one date, exactly `run(job, ...)` (the daily
    step); several, each date in this one process, with `body(settings, day, context)` when the optional
    context manager `setup(settings, dates)` yields something shared by the whole range (e.g. one Kafka read).
    The body gets no argument namespace: a job binds its typed options (see `options`) before calling this.
    A date whose body raises or returns non-zero is logged and the next date runs; exit 1 if any failed
    (0 with --keep-going), the last line is infrastructure.dates' summary line."""
    if not args.range_mode:
        def one_date(settings: Settings) -> int:
            started, code = time.monotonic(), 1
            try:
                code = body(settings, args.date, None) if setup else body(settings, args.date)
            finally:
                report_date(job, settings, args.date, code, time.monotonic() - started)
            return code

        return run(job, one_date)
    started = time.monotonic()
    days: list = args.dates
    failed: dict = {}
    attempted: set = set()
    settings = None
    try:
        settings = load()
        log(job, f"master={settings.spark_master} lake={settings.lake_root} topic={settings.kafka_topic} "
                 f"dates={len(days)}" + (f" ({days[0]}..{days[-1]})" if days else ""))
        with (setup(settings, days) if setup and days else contextlib.nullcontext()) as context:
            for i, day in enumerate(days, 1):
                day_started = time.monotonic()
                log(job, f"date {day} ({i}/{len(days)}) started")
                attempted.add(day)
                try:
                    code = body(settings, day, context) if setup else body(settings, day)
                    reason = f"exit code {code}"
                except Exception as exc:  # noqa: BLE001 - one bad date must not stop the others
                    traceback.print_exc(file=sys.stderr)
                    code, reason = 1, error_line(exc, settings)
                seconds = time.monotonic() - day_started
                report_date(job, settings, day, code, seconds)
                if code:
                    failed[day] = reason
                    log(job, f"date {day} FAILED in {seconds:.1f}s: {reason}")
                else:
                    log(job, f"date {day} ok in {seconds:.1f}s")
    except ConfigError as exc:
        log(job, f"ERROR configuration: {exc}")
        failed.update({d: "configuration" for d in days if d not in attempted})
    except Exception as exc:  # noqa: BLE001 - the range's shared setup failed: every date not attempted fails
        traceback.print_exc(file=sys.stderr)
        log(job, f"ERROR {error_line(exc, settings)}")
        failed.update({d: error_line(exc, settings) for d in days if d not in attempted})
    log(job, f"{dates.summary_line(days, failed)} seconds={time.monotonic() - started:.1f}")
    return 1 if failed and not args.keep_going else 0
