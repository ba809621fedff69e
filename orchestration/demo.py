"""`make demo`: one day through the whole pipeline, driven by the real Airflow scheduler.

    .venv/bin/python -m orchestration.demo [--date 2026-01-01] [--days 1] [--time-scale 60] [--events-per-day N]

Expects `make up` to have run (the Makefile target does setup and up first). Steps: day files for the
date (prepared real logs when present, else generated) -> local Airflow up -> trigger the DAG run for
the date at TIME_SCALE 60 -> progress lines -> Gold summary per mart, the data quality
gate's verdict (gold.dq_results), the reconcile table, URLs.
Superset (`make superset`) is provisioned in the background meanwhile. Re-running for the same date is
safe: each run replays the day and every job replaces the date's partitions and rows.
With --days N > 1 (make demo DAYS=N) the first date runs under the daily DAG as above and the next N-1
dates by the DAG tripclick_backfill (no real-time replay); then one Gold line per date of the range.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg2

from gold import marts
from gold.database import connect_reader, rows_of_date
from infrastructure.settings import REPO_ROOT, Settings, load
from messaging.contract import SOURCE_SERVERS as SERVERS
from monitoring import inbox
from monitoring import local as monitoring
from orchestration import airflow_local
from orchestration.airflow_api import AirflowApi
from orchestration.steps import BACKFILL_DAG_ID, DAG_ID, OUTPUT_PREFIX
from gold.superset.provision import HEALTH_DASHBOARD_SLUG
from processing.quality import docs_path

PY = str(REPO_ROOT / ".venv" / "bin" / "python")
RUN_TIMEOUT_S = 1800
_RECONCILE_LINE = re.compile(r"\[reconcile\] ((?:OK|FAIL)\s+.*|count .*|summary .*)$")


def log(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def day_files(s: Settings, day: str) -> list[Path]:
    return [s.data_dir / server / f"date={day}" / "events.json" for server in SERVERS]


def ensure_day_files(s: Settings, day: str, events_per_day: int | None) -> None:
    files = day_files(s, day)
    if all(f.is_file() for f in files):
        log(f"using the day files present in {s.data_dir} for {day}")
        return
    log(f"no day files for {day} in {s.data_dir}: generating them")
    command = [PY, "-m", "ingestion.generate", "--prepared", "--days", "1", "--start", day, "--out", str(s.data_dir)]
    if events_per_day:
        command += ["--events-per-day", str(events_per_day)]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise RuntimeError(f"the generator did not write {missing}")


def line_count(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


# Per mart of gold/marts.py: the headline of the date (a query returning one row) and how to print it.
HEADLINES = {
    "mart_daily_traffic": ("SELECT total_events, unique_sessions, unique_documents, peak_hour FROM {table} "
                           "WHERE event_date = %s",
                           "total_events={} unique_sessions={} unique_documents={} peak_hour={}"),
    "mart_session_analysis": ("SELECT round(avg(click_count), 2), round(avg(session_duration_sec)::numeric, 1) "
                              "FROM {table} WHERE event_date = %s", "avg_clicks={} avg_real_duration_s={}"),
    "mart_clinical_areas": ("SELECT clinical_area, click_count FROM {table} WHERE event_date = %s "
                            "ORDER BY click_count DESC, clinical_area LIMIT 1", "top area={} ({} clicks)"),
    "mart_popular_documents": ("SELECT document_id, view_count FROM {table} WHERE event_date = %s "
                               "ORDER BY rank LIMIT 1", "rank 1=document {} ({} views)"),
    "mart_search_keywords": ("SELECT query, sessions FROM {table} WHERE event_date = %s "
                             "ORDER BY sessions DESC, query LIMIT 1", "top query={!r} ({} sessions)"),
    "mart_search_terms": ("SELECT term, sessions FROM {table} WHERE event_date = %s "
                          "ORDER BY sessions DESC, term LIMIT 1", "top term={!r} ({} sessions)"),
}


def gold_summary(s: Settings, day: str) -> list[str]:
    """One line per mart: rows of the date and its headline, read as the read-only role."""
    lines = []
    conn = connect_reader(s, "demo")
    try:
        with conn.cursor() as cur:
            for mart, rows in rows_of_date(cur, day).items():
                query, template = HEADLINES[mart]
                cur.execute(query.format(table=marts.BY_NAME[mart].table), (day,))
                row = cur.fetchone()
                headline = template.format(*row) if rows and row else "-"
                lines.append(f"  {mart:<24} rows={rows:<8} {headline}")
    finally:
        conn.close()
    return lines


def quality_summary(s: Settings, day: str) -> list[str]:
    """The data quality gate's verdict of the date from gold.dq_results: totals, then every failed or warned
    expectation (the gate ran in check_lake; its Data Docs page path is in that task's log)."""
    conn = connect_reader(s, "demo")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT suite, expectation, severity, success, observed_value FROM gold.dq_results "
                        "WHERE event_date = %s ORDER BY severity, suite, expectation", (day,))
            rows = cur.fetchall()
    finally:
        conn.close()
    failed = [r for r in rows if r[2] == "fail" and not r[3]]
    warned = [r for r in rows if r[2] == "warn" and not r[3]]
    lines = [f"  expectations={len(rows)} passed={sum(1 for r in rows if r[3])} failed={len(failed)} "
             f"warnings={len(warned)} verdict={'STOP' if failed else 'PASS' if rows else 'no results'}"]
    lines += [f"  {sev.upper():<4} {suite}/{name}: {observed}" for suite, name, sev, _, observed in failed + warned]
    return lines + [f"  data docs: {docs_path(s.lake_root, date.fromisoformat(day))}"]


def reconcile_table(api: AirflowApi, run_id: str, task_id: str, try_number: int) -> list[str]:
    """The OK/FAIL lines a reconcile stage printed in its task log (check_lake: lake, reconcile: PostgreSQL)."""
    text = api.task_log(DAG_ID, run_id, task_id, try_number)
    lines = []
    for raw in text.splitlines():
        _, _, output = raw.partition(OUTPUT_PREFIX)
        match = _RECONCILE_LINE.search(output)
        if match:
            lines.append(f"  {match.group(1)}")
    return lines


def range_summary(s: Settings, days: list[str]) -> list[str]:
    """One line per date of the range from mart_daily_traffic (read as the read-only role), then the total."""
    conn = connect_reader(s, "demo")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT event_date::text, total_events, unique_sessions, unique_documents, peak_hour "
                        "FROM gold.mart_daily_traffic WHERE event_date BETWEEN %s AND %s", (days[0], days[-1]))
            found = {row[0]: row[1:] for row in cur.fetchall()}
    finally:
        conn.close()
    lines = [f"  {'date':<10}  {'total_events':>12}  {'sessions':>8}  {'documents':>9}  peak_hour"]
    for day in days:
        row = found.get(day)
        lines.append(f"  {day:<10}  {row[0]:>12}  {row[1]:>8}  {row[2]:>9}  {row[3]}" if row
                     else f"  {day:<10}  {'(not loaded)':>12}")
    lines.append(f"  {len(found)} of {len(days)} dates loaded, {sum(r[0] for r in found.values())} events")
    return lines


def run_backfill(api: AirflowApi, inst, days: list[str]) -> tuple[str, str]:
    """The dates after the first by the backfill DAG; (run id, final state)."""
    api.wait_for_dag(BACKFILL_DAG_ID)
    api.set_paused(BACKFILL_DAG_ID, False)
    run_id = f"demo_backfill__{days[0]}__{days[-1]}__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    api.trigger(BACKFILL_DAG_ID, run_id, {"start": days[0], "end": days[-1]})
    log(f"triggered {run_id}: {len(days)} dates {days[0]}..{days[-1]} by backfill")
    state = api.wait_for_run(BACKFILL_DAG_ID, run_id, RUN_TIMEOUT_S,
                             on_change=lambda t, task, st: st != "none" and log(f"+{t:5.0f}s {task:<20} {st}"))
    log(f"run {run_id} finished: {state}")
    if state != "success":
        tis = api.task_instances(BACKFILL_DAG_ID, run_id)
        if "report" in tis and tis["report"]["state"] == "failed":
            tail = api.task_log(BACKFILL_DAG_ID, run_id, "report", tis["report"]["try_number"]).splitlines()[-5:]
            log("--- backfill report ---\n" + "\n".join(tail))
    log(f"Airflow UI : {inst.base_url}/dags/{BACKFILL_DAG_ID}/grid?dag_run_id={run_id}")
    return run_id, state


def start_superset(s: Settings) -> subprocess.Popen:
    out = open(s.run_dir / "demo-superset.log", "w")
    return subprocess.Popen(["make", "--no-print-directory", "superset"], cwd=REPO_ROOT, stdout=out,
                            stderr=subprocess.STDOUT)


def superset_result(s: Settings, process: subprocess.Popen) -> list[str]:
    """The dashboards' URLs `make superset` printed (the main one first), or one line saying why there are none."""
    code = process.wait(timeout=600)
    text = (s.run_dir / "demo-superset.log").read_text()
    found = re.search(r"dashboards (http\S+(?: http\S+)*)", text)
    if code == 0 and found:
        return found.group(1).split()
    return [f"(make superset failed with exit {code}; see {s.run_dir / 'demo-superset.log'})"]


def print_monitoring(s: Settings) -> None:
    """Where the day's metrics and alerts are: the monitoring group `make up` started."""
    alerts = inbox.messages(monitoring.inbox_file(s))
    print(f"Metrics    : http://127.0.0.1:{s.prometheus_port}  (Prometheus; try tripclick_job_rows; Grafana "
          "dashboards as code in monitoring/grafana/)")
    print(f"Alerts     : http://127.0.0.1:{s.alertmanager_port}  (Alertmanager) -> e-mail and Slack stand-in "
          f"messages in {monitoring.inbox_file(s)} ({len(alerts)} so far)")


def run_demo(day: str, time_scale: float, events_per_day: int | None, days: int = 1) -> int:
    started = time.monotonic()
    s = load()
    rest = [(date.fromisoformat(day) + timedelta(days=i)).isoformat() for i in range(1, days)]
    for other in [day, *rest]:
        ensure_day_files(s, other, events_per_day)
    events = sum(line_count(f) for f in day_files(s, day))
    superset = start_superset(s)
    inst = airflow_local.local_instance(s)
    airflow_local.up(inst)
    api = AirflowApi(inst.base_url, inst.admin_user, inst.admin_password)
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)
    run_id = f"demo__{day}__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    api.trigger(DAG_ID, run_id, {"date": day, "time_scale": time_scale})
    log(f"triggered {run_id}: date={day} time_scale={time_scale:g} events={events} "
        f"(the 15:00-18:00 day takes {180 / time_scale:.1f} min)")
    run_started = time.monotonic()
    state = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT_S,
                             on_change=lambda t, task, st: st != "none" and log(f"+{t:5.0f}s {task:<20} {st}"))
    run_seconds = time.monotonic() - run_started
    log(f"run {run_id} finished: {state} in {run_seconds:.0f}s")
    tis = api.task_instances(DAG_ID, run_id)
    if state != "success":
        failed = [t for t, ti in tis.items() if ti["state"] == "failed"]
        for task_id in failed:
            tail = api.task_log(DAG_ID, run_id, task_id, tis[task_id]["try_number"]).splitlines()[-15:]
            log(f"--- last log lines of {task_id} ---\n" + "\n".join(tail))
        try:
            print(f"\nData quality gate for {day} (gold.dq_results):\n" + "\n".join(quality_summary(s, day)))
        except psycopg2.Error as exc:
            log(f"no data quality results: {exc}")
        superset.terminate()
        log(f"demo FAILED: date={day} failed_tasks={','.join(failed) or '-'} elapsed={time.monotonic() - started:.0f}s")
        return 1
    print(f"\nGold marts in PostgreSQL for {day}:")
    print("\n".join(gold_summary(s, day)))
    print("\nData quality gate (gold.dq_results):")
    print("\n".join(quality_summary(s, day)))
    for task_id, title in (("check_lake", "Lake gate before the load"), ("reconcile", "PostgreSQL after the load")):
        print(f"\nReconcile, {title} ({task_id}):")
        print("\n".join(reconcile_table(api, run_id, task_id, tis[task_id]["try_number"])))
    backfill_state = "success"
    if rest:
        _, backfill_state = run_backfill(api, inst, rest)
        print(f"\nGold for the range {day}..{rest[-1]} (mart_daily_traffic; {day} by the daily DAG, "
              "the rest by backfill):")
        print("\n".join(range_summary(s, [day, *rest])))
    dashboards = superset_result(s, superset)
    print(f"\nAirflow UI : {inst.base_url}/dags/{DAG_ID}/grid?dag_run_id={run_id}  ({inst.admin_user}/****)")
    print(f"Superset   : {dashboards[0]}")
    print(f"Health     : {next((url for url in dashboards if HEALTH_DASHBOARD_SLUG in url), dashboards[0])}  "
          "(Superset: each step's outcome, rows and seconds per date, quality failures, Gold freshness)")
    print_monitoring(s)
    if backfill_state != "success":
        log(f"demo FAILED: the backfill of {rest[0]}..{rest[-1]} ended {backfill_state} "
            f"elapsed={time.monotonic() - started:.0f}s")
        return 1
    log(f"demo OK: date={day} days={days} events={events} run_s={run_seconds:.0f} "
        f"elapsed_s={time.monotonic() - started:.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one day through the pipeline under the local Airflow")
    parser.add_argument("--date", default="2026-01-01", help="pipeline date YYYY-MM-DD (default 2026-01-01)")
    parser.add_argument("--days", type=int, default=1,
                        help="dates from --date on: the first under the daily DAG, the rest by backfill (default 1)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="timeline compression (default 60)")
    parser.add_argument("--events-per-day", type=int, help="events to generate when the day is absent "
                                                           "(default: the generator's)")
    args = parser.parse_args(argv)
    try:
        datetime.strptime(args.date, "%Y-%m-%d")
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {args.date!r}")
    if not 1 <= args.days <= 366:
        parser.error(f"--days must be 1..366, got {args.days}")
    try:
        return run_demo(args.date, args.time_scale, args.events_per_day, args.days)
    except (RuntimeError, subprocess.CalledProcessError, psycopg2.Error) as error:
        log(f"ERROR: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
