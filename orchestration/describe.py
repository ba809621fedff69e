"""Dry-run view of the DAG: what a run for a given date would execute, as JSON, with no database.

    .venvs/airflow/bin/python -m orchestration.describe --logical-date 2026-01-01T15:00:00+09:00 \
        [--start ISO] [--date YYYY-MM-DD] [--time-scale N] [--dag-id tripclick_backfill --param start=D ...]

Loads the DAG folder in a DagBag (the runner comes from PIPELINE_RUNNER), renders each task's command
and each sensor's target for that run, and prints the structure: schedule, timezone, dependencies,
retries, alert callbacks and SLAs, Docker parameters (unrendered where they come from Connections). The
structure tests and operators reading a plan use it; it needs AIRFLOW_HOME pointing at a scratch folder,
never a live one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pendulum

from orchestration.steps import BACKFILL_DAG_ID, DAG_ID

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"


def _render(task, value, context):
    return task.render_template(value, context)


def _task_facts(task, context) -> dict:
    facts = {
        "operator": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "retries": task.retries,
        "retry_delay_s": task.retry_delay.total_seconds(),
        "trigger_rule": str(task.trigger_rule),
        "has_doc": bool(task.doc_md),
        "on_failure_callback": _name(task.on_failure_callback),
        "sla_s": task.sla.total_seconds() if task.sla else None,
    }
    if hasattr(task, "argv"):
        facts["argv"] = _render(task, task.argv, context)
    if hasattr(task, "target_time"):
        facts["target_time"] = _render(task, task.target_time, context)
    if type(task).__name__.endswith("DockerOperator"):
        facts.update(
            image=task.image, command=_render(task, task.command, context), docker_url=task.docker_url,
            tls_ca_cert=task.tls_ca_cert, tls_client_cert=task.tls_client_cert,
            tls_client_key=task.tls_client_key, tls_verify=task.tls_verify, mount_tmp_dir=task.mount_tmp_dir,
            mounts=[{"source": m["Source"], "target": m["Target"], "type": m["Type"], "read_only": m["ReadOnly"]}
                    for m in task.mounts],
            network_mode=task.network_mode, environment=task.environment, auto_remove=task.auto_remove,
            xcom_all=task.xcom_all,
        )
    return facts


def _name(callback) -> str | None:
    return getattr(callback, "__qualname__", None)


class _XComs:
    """What the run's finished steps handed on (task id -> XCom); by default nothing: backfill steps after
    the producers then render no dates."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def xcom_pull(self, task_ids=None, **_):
        return self.values.get(task_ids)


def describe(logical_date: pendulum.DateTime, start: pendulum.DateTime, date: str | None,
             time_scale: float | None, dag_id: str = DAG_ID, extra_params: dict | None = None,
             xcoms: dict[str, str] | None = None) -> dict:
    from airflow.models import DagBag
    from airflow.serialization.serialized_objects import SerializedDAG
    from airflow.timetables.base import TimeRestriction

    bag = DagBag(str(DAGS_FOLDER), include_examples=False, read_dags_from_db=False)
    if bag.import_errors:
        return {"import_errors": bag.import_errors}
    dag = bag.dags[dag_id]
    params = {name: param.value for name, param in dag.params.items()}
    params.update({k: v for k, v in {"date": date, "time_scale": time_scale}.items() if v is not None})
    params.update(extra_params or {})
    context = {"logical_date": logical_date, "params": params, "ti": _XComs(xcoms or {}),
               "dag_run": SimpleNamespace(run_id=f"describe__{logical_date.isoformat()}", start_date=start),
               **dag.user_defined_macros}
    timetable = dag.timetable
    # Where the schedule places its first run at or after the given logical date.
    next_run = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=logical_date, latest=None, catchup=True))
    return {
        "import_errors": {},
        "dag": {
            "dag_id": dag.dag_id, "timetable": type(timetable).__name__,
            "cron": getattr(timetable, "_expression", None), "timezone": str(dag.timezone.name),
            "timetable_timezone": str(getattr(timetable, "_timezone", "")),
            "max_active_runs": dag.max_active_runs, "catchup": dag.catchup, "tags": sorted(dag.tags),
            "params": {name: param.value for name, param in dag.params.items()},
            "has_doc": bool(dag.doc_md),
            "sla_miss_callback": _name(dag.sla_miss_callback),
        },
        "next_scheduled_logical_date": next_run.logical_date.isoformat() if next_run else None,
        "tasks": {task.task_id: _task_facts(task, context) for task in dag.tasks},
        "serialized": json.dumps(SerializedDAG.to_dict(dag), default=str),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logical-date", required=True, help="the run's logical date, ISO-8601 with offset")
    parser.add_argument("--start", help="when the run started (default: the logical date)")
    parser.add_argument("--date", help="a manual trigger's date param")
    parser.add_argument("--time-scale", type=float, help="a manual trigger's time_scale param")
    parser.add_argument("--dag-id", default=DAG_ID, choices=(DAG_ID, BACKFILL_DAG_ID))
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="another param of the trigger (e.g. start=2026-01-02 for the backfill)")
    parser.add_argument("--xcom", action="append", default=[], metavar="TASK=VALUE",
                        help="what a finished task handed on (a backfill step's summary line)")
    args = parser.parse_args()
    logical_date = pendulum.parse(args.logical_date)
    start = pendulum.parse(args.start) if args.start else logical_date
    # One line, last on stdout: Airflow itself logs to stdout while loading the DagBag.
    extra = dict(item.split("=", 1) for item in args.param)
    xcoms = dict(item.split("=", 1) for item in args.xcom)
    print(json.dumps(describe(logical_date, start, args.date, args.time_scale, args.dag_id, extra, xcoms),
                     default=str))


if __name__ == "__main__":
    main()
