"""What the shared monitoring must show after a scenario world's day (called from that world's test, so no day
is built for monitoring alone): the day's pushed figures, Airflow's StatsD metrics, and data behind every
Grafana panel's query."""
from __future__ import annotations

import time

import requests

from infrastructure.settings import Settings
from monitoring import inbox
from monitoring import local as monitoring
from monitoring.dashboards import panel_queries

STEPS = ("batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile")


def query(settings: Settings, promql: str, since: float | None = None) -> list[dict]:
    """Instant query, or with `since` a range query from then to now (every series seen in between)."""
    base = f"http://127.0.0.1:{settings.prometheus_port}/api/v1"
    if since is None:
        answer = requests.get(f"{base}/query", params={"query": promql}, timeout=10).json()
    else:
        answer = requests.get(f"{base}/query_range", timeout=10, params={
            "query": promql, "start": since, "end": time.time(), "step": settings.prometheus_scrape_seconds}).json()
    assert answer["status"] == "success", (promql, answer)
    return answer["data"]["result"]


def values(settings: Settings, promql: str, label: str, timeout: float = 60) -> dict[str, float]:
    """label -> value of an instant query, once every wanted series has been scraped (waits up to timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {r["metric"].get(label, ""): float(r["value"][1]) for r in query(settings, promql)}
        if found or time.monotonic() > deadline:
            return found
        time.sleep(2)


def assert_day_metrics(settings: Settings, day: str, events: int) -> None:
    """The day's producers, steps and checks as the pipeline pushed them (their last attempt's figures)."""
    time.sleep(settings.prometheus_scrape_seconds + 1)  # the last push, scraped
    acknowledged = values(settings, f'tripclick_producer_events_acknowledged{{date="{day}"}}', "server")
    assert sum(acknowledged.values()) == events and set(acknowledged) == {"server0", "server1"}, acknowledged
    assert values(settings, f'tripclick_producer_complete{{date="{day}"}}', "server") == {"server0": 1, "server1": 1}
    success = values(settings, f'tripclick_job_success{{date="{day}"}}', "step")
    assert {step: success.get(step) for step in STEPS} == dict.fromkeys(STEPS, 1.0), success
    rows = values(settings, f'tripclick_job_rows{{date="{day}"}}', "step")
    # Bronze keeps every message, replays included (a cleared run sends a file twice): at least the day's events.
    assert rows["batch_to_bronze"] >= events and rows["etl_to_gold"] > 0 and rows["load_to_postgres"] > 0, rows
    failed = values(settings, f'tripclick_reconcile_checks_failed{{date="{day}"}}', "stage")
    assert set(failed) == {"lake", "postgres"} and set(failed.values()) == {0.0}, failed


def assert_stream_and_airflow_metrics(settings: Settings, since: float) -> None:
    """The streaming listener's pushes during the day, and the failed then successful DAG run (StatsD)."""
    read = query(settings, "max_over_time(tripclick_stream_rows_total[1h])")
    assert any(float(r["value"][1]) > 0 for r in read), read
    runs = values(settings, 'airflow_dagrun_duration_seconds_count{dag_id="tripclick_daily_pipeline"}', "state")
    assert runs.get("failed", 0) >= 1 and runs.get("success", 0) >= 1, runs


def assert_every_panel_has_data(settings: Settings, since: float) -> None:
    """Every Grafana panel's query returns at least one series over the day: none is misspelt or empty."""
    empty = [(dashboard, panel, promql) for dashboard, panel, promql in panel_queries()
             if not query(settings, promql, since)]
    assert not empty, f"{len(empty)} panel queries without data: {empty}"


def assert_run_failure_reached_people(settings: Settings, dag_id: str) -> None:
    """Alertmanager's DagRunFailed for the DAG, by e-mail and on the Slack webhook, with the link to its runs."""
    link = f"{settings.airflow_url}/dags/{dag_id}/grid"
    for channel, text in (("email", lambda r: r["subject"] + r["body"]), ("webhook", lambda r: str(r["payload"]))):
        inbox.wait_for(monitoring.inbox_file(settings),
                       lambda r, c=channel, t=text: r["channel"] == c and "DagRunFailed" in t(r) and dag_id in t(r)
                       and link in t(r), 90, f"DagRunFailed {channel} for {dag_id}")
