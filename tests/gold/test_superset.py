"""Real Superset 3.1.0 provisioned from the committed assets, over marts of generated days built and loaded
by the pipeline's own code (`make sample-marts`) in the shared PostgreSQL: idempotent provisioning, every
chart's query through the REST API against direct SQL, and the dashboards rendered by headless Chromium
(TripClick Pipeline health over gold.pipeline_runs rows of the same dates, written as the jobs write them).

Superset runs as a private instance (own RUN_DIR with its SQLite metadata, own free port), so the
test never touches a Superset someone started with `make superset`.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from gold.database import connect_loader, connect_reader, delete_dates, record_run
from gold.superset import screenshots
from gold.superset.provision import ASSETS_DIR, DASHBOARD_SLUG, HEALTH_DASHBOARD_SLUG, LIVE_DASHBOARD_SLUG, \
    MASKED_PASSWORD, client_for, export
from infrastructure.settings import REPO_ROOT, load
from processing.sample_marts import load_days
from tests.gold.superset_helpers import ASSET_COUNTS, run_saved_query

pytestmark = pytest.mark.integration

# Dates nobody else loads; the charts are asked for exactly this range, so other rows never interfere.
DAYS = [date(2031, 3, 1) + timedelta(days=n) for n in range(3)]
RANGE = f"{DAYS[0]} : {DAYS[-1] + timedelta(days=1)}"
EMPTY_RANGE = "1999-01-01 : 1999-01-02"
ARTIFACTS = REPO_ROOT / "test-artifacts"
# Live rows written by the test on a date later than any other test's: the live views show the newest date.
LIVE_DAY = date(2099, 12, 31)
# Live chart -> the same numbers from the live views: (SQL, key column, metric ordering the top 10).
LIVE_EXPECTED = {
    "Live clicks per minute": ("SELECT minute, source_server, SUM(clicks) AS clicks FROM live.clicks_per_minute_newest "
                               "GROUP BY 1, 2", None, None),
    "Live top documents (last 15 min)": ("SELECT document_id, MAX(title) AS doc_title, SUM(clicks) AS clicks, "
                                         "MIN(rank) AS window_rank FROM live.top_documents_15m GROUP BY 1",
                                         "document_id", "window_rank"),
    "Live top clinical areas (last 15 min)": ("SELECT clinical_area, SUM(clicks) AS clicks FROM "
                                              "live.top_clinical_areas_15m GROUP BY 1", "clinical_area", "clicks"),
}

# Chart -> the same numbers straight from PostgreSQL over RANGE: (SQL, key columns, top-N limit or None).
WHERE = "WHERE event_date >= %(start)s AND event_date < %(end)s"
EXPECTED = {
    "Click events": (f"SELECT SUM(total_events) AS events FROM gold.mart_daily_traffic {WHERE}", (), None),
    "Search sessions": (f"SELECT COUNT(DISTINCT session_id) AS sessions FROM gold.mart_session_analysis {WHERE}",
                        (), None),
    "Documents clicked": (f"SELECT COUNT(DISTINCT document_id) AS documents FROM gold.mart_popular_documents "
                          f"{WHERE}", (), None),
    "Daily traffic": (f"SELECT event_date, SUM(total_events) AS events, SUM(unique_sessions) AS daily_sessions "
                      f"FROM gold.mart_daily_traffic {WHERE} GROUP BY 1", ("event_date",), None),
    "Peak hour by day": (f"SELECT event_date, MAX(peak_hour) AS peak_hour FROM gold.mart_daily_traffic {WHERE} "
                         f"GROUP BY 1", ("event_date",), None),
    "Top clinical areas": (f"SELECT clinical_area, SUM(click_count) AS clicks FROM gold.mart_clinical_areas "
                           f"{WHERE} GROUP BY 1", ("clinical_area",), 10),
    "Top documents": (f"SELECT document_id, SUM(view_count) AS views, MAX(title) AS doc_title, "
                      f"SUM(unique_sessions) AS daily_sessions, "
                      f"ROW_NUMBER() OVER (ORDER BY SUM(view_count) DESC, document_id) AS range_rank "
                      f"FROM gold.mart_popular_documents {WHERE} GROUP BY 1", ("document_id",), 10),
    "Top search queries": (f"SELECT query, SUM(sessions) AS session_days, SUM(clicks) AS clicks, "
                           f"SUM(unique_documents) AS daily_documents FROM gold.mart_search_keywords {WHERE} "
                           f"GROUP BY 1", ("query",), 10),
    "Top search terms": (f"SELECT term, SUM(sessions) AS session_days, SUM(clicks) AS clicks "
                         f"FROM gold.mart_search_terms {WHERE} GROUP BY 1", ("term",), 10),
    "Session length distribution": (f"SELECT LEAST(click_count, 20) AS clicks_bucket, COUNT(*) AS session_days "
                                    f"FROM gold.mart_session_analysis {WHERE} GROUP BY 1", ("clicks_bucket",), None),
    "Session duration distribution": ("SELECT LEAST(FLOOR(session_duration_sec / 60), 30)::integer "
                                      "AS duration_bucket, "
                                      f"COUNT(*) AS session_days FROM gold.mart_session_analysis {WHERE} GROUP BY 1",
                                      ("duration_bucket",), None),
    "Data quality": (f"SELECT event_date, COUNT(*) FILTER (WHERE severity = 'fail' AND NOT success) AS failed_checks, "
                     f"COUNT(*) FILTER (WHERE severity = 'warn' AND NOT success) AS warnings "
                     f"FROM gold.dq_results {WHERE} GROUP BY 1", ("event_date",), None),
}
# Pipeline health chart -> its rows from PostgreSQL over RANGE as (key..., value) tuples; None: the freshness
# numbers, which show the newest Gold date whatever the range (checked on their own).
STEPS = ("batch_to_bronze", "etl_to_gold", "reconcile", "load_to_postgres")
HEALTH_EXPECTED = {
    "Step outcomes by date": f"SELECT step, event_date, MIN(CASE WHEN success THEN 1 ELSE 0 END) FROM "
                             f"gold.pipeline_runs {WHERE} GROUP BY 1, 2",
    "Rows per step and date": f"SELECT step, event_date, SUM(rows) FROM gold.pipeline_runs {WHERE} GROUP BY 1, 2",
    "Step duration (s)": f"SELECT step, event_date, SUM(seconds) FROM gold.pipeline_runs {WHERE} GROUP BY 1, 2",
    "Data quality failures by date": f"SELECT event_date, severity, suite, expectation, observed_value FROM "
                                     f"gold.dq_results {WHERE} AND NOT success ORDER BY 1 DESC, 2, 3, 4",
    "Newest Gold date": None,
    "Hours since the newest Gold date": None,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def provision(env: dict[str, str], command: str) -> str:
    result = subprocess.run([sys.executable, "-m", "infrastructure.local.services", command, "superset"], env=env,
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def sql_rows(settings, sql: str) -> list[dict]:
    conn = connect_reader(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, {"start": DAYS[0], "end": DAYS[-1] + timedelta(days=1)})
            names = [c.name for c in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        conn.close()


def as_superset_value(value):
    """Superset's JSON spelling of a SQL value: dates become epoch milliseconds (UTC midnight)."""
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=timezone.utc).timestamp() * 1000
    return value


@pytest.fixture(scope="module")
def marts(platform, spark_session):
    """The test dates' marts as `make sample-marts` makes them: generated days through the pipeline's code."""
    loaded = load_days(spark_session, platform, DAYS, events_per_day=400, seed=2031)
    replace_dq_results(platform, DAYS, with_rows=True)
    replace_pipeline_runs(platform, {day: sum(rows.values()) for day, rows in loaded.items()})
    yield platform
    with connect_loader(platform) as conn, conn.cursor() as cur:
        delete_dates(cur, DAYS)
    conn.close()
    replace_dq_results(platform, DAYS, with_rows=False)
    replace_pipeline_runs(platform, dict.fromkeys(DAYS), with_rows=False)


def replace_pipeline_runs(settings, gold_rows: dict, with_rows: bool = True) -> None:
    """gold.pipeline_runs rows of the test dates, upserted as report_date does (record_run, as the loader), matching
    replace_dq_results: day 0's gate (reconcile) failed, so it was not loaded; days 1 and 2 ran every step."""
    conn = connect_loader(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM gold.pipeline_runs WHERE event_date = ANY(%s)", (list(gold_rows),))
            for n, (day, rows) in enumerate(gold_rows.items() if with_rows else ()):
                finished = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=9)
                for k, (step, step_rows) in enumerate(zip(STEPS, (400, rows, 20 + n, rows))):
                    if n == 0 and step == "load_to_postgres":
                        continue
                    record_run(cur, step, day, not (n == 0 and step == "reconcile"), step_rows, 2.5 * (k + 1) + n,
                               finished + timedelta(minutes=k))
    finally:
        conn.close()


def replace_dq_results(settings, days, with_rows: bool) -> None:
    """Quality gate results of the test dates (gold.dq_results, written as the loader like the gate does):
    day 0 stopped by a failed check, day 1 loaded with a warning, day 2 clean."""
    conn = connect_loader(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM gold.dq_results WHERE event_date = ANY(%s)", (list(days),))
            for n, day in enumerate(days if with_rows else []):
                for name, severity, success in (("unique:dedup_key", "fail", n != 0),
                                                ("known_vocabulary:clinical_area", "warn", n != 1),
                                                ("not_null:SessionId", "fail", True)):
                    cur.execute("INSERT INTO gold.dq_results VALUES (%s, 'silver', %s, %s, %s, '-', now())",
                                (day, name, severity, success))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def live_rows(platform):
    """A few live rows (as the stream writes them, as the loader) on LIVE_DAY: 20 minutes, two servers."""
    from processing.live_sink import discard_date

    def write(with_rows: bool) -> None:
        conn = connect_loader(platform)
        try:
            with conn, conn.cursor() as cur:
                discard_date(cur, LIVE_DAY)
                for m in range(20 if with_rows else 0):
                    minute = datetime(2099, 12, 31, 6, m, tzinfo=timezone.utc)
                    for server, clicks in (("server0", 10 + m), ("server1", 3 + m % 4)):
                        cur.execute("INSERT INTO live.clicks_per_minute VALUES (%s, %s, %s, %s, now())",
                                    (LIVE_DAY, minute, server, clicks))
                    for doc in range(m % 7, m % 7 + 12):
                        cur.execute("INSERT INTO live.document_minutes VALUES (%s, %s, %s, %s, %s, now())",
                                    (LIVE_DAY, minute, doc, f"Doc {doc}", 1 + (doc * m) % 5))
                    for area, clicks in (("Oncology", 4 + m % 3), ("(none)", 2), (f"Area {m % 13}", 1)):
                        cur.execute("INSERT INTO live.area_minutes VALUES (%s, %s, %s, %s, %s, now())",
                                    (LIVE_DAY, minute, area, clicks, float(clicks)))
        finally:
            conn.close()

    write(True)
    yield platform
    write(False)


@pytest.fixture(scope="module")
def superset(marts, live_rows):
    run_dir = Path(tempfile.mkdtemp(prefix="tripclick-superset-"))
    env = {**os.environ, "RUN_DIR": str(run_dir), "SUPERSET_PORT": str(free_port())}
    settings = load(env)
    try:
        first_output = provision(env, "up")
        client = client_for(settings)
        first_counts = client.counts()
        second_output = provision(env, "up")
        yield SimpleNamespace(settings=settings, base=f"http://127.0.0.1:{settings.superset_port}", client=client,
                              first_counts=first_counts,
                              second_counts=client.counts(), outputs=(first_output, second_output))
    finally:
        provision(env, "down")
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def charts(superset):
    """slice_name -> chart id, for the charts placed on the dashboard."""
    return {c["slice_name"]: c["id"] for c in superset.client.dashboard_charts(DASHBOARD_SLUG)}


def test_provisioning_from_scratch_then_again_duplicates_nothing(superset):
    assert superset.first_counts == ASSET_COUNTS
    assert superset.second_counts == ASSET_COUNTS
    assert "databases=1(+0) datasets=12(+0) charts=21(+0) dashboards=3(+0)" in superset.outputs[1]


def test_gold_database_is_registered_as_the_read_only_role(superset):
    databases = superset.client.get("/api/v1/database/")["result"]
    (gold,) = [d for d in databases if d["database_name"] == "tripclick_gold"]
    uri = superset.client.get(f"/api/v1/database/{gold['id']}/connection")["result"]["sqlalchemy_uri"]
    ro = superset.settings
    assert uri == (f"postgresql+psycopg2://{ro.postgres_ro_user}:{MASKED_PASSWORD}@{ro.postgres_host}:"
                   f"{ro.postgres_port}/{ro.postgres_db}")


def test_every_chart_saved_query_succeeds(superset, charts):
    assert sorted(charts) == sorted(EXPECTED)
    for name, chart_id in charts.items():
        results = superset.client.chart_data(chart_id)["result"]
        assert [r["status"] for r in results] == ["success"], name
        assert all(not r.get("error") for r in results), name


def test_chart_numbers_match_postgres(superset, charts):
    for name, (sql, keys, limit) in EXPECTED.items():
        result = run_saved_query(superset.client, charts[name], RANGE)
        assert result["status"] == "success" and not result.get("error"), name
        expected = {tuple(as_superset_value(row[k]) for k in keys):
                    {k: as_superset_value(v) for k, v in row.items()} for row in sql_rows(superset.settings, sql)}
        got = {tuple(row[k] for k in keys): row for row in result["data"]}
        assert got, name
        for key, row in got.items():  # every number shown equals the database's
            assert row == expected[key], (name, key)
        if limit is None:
            assert len(got) == len(expected), name
        else:  # a top-N chart shows the N largest values
            metric = EXPECTED[name][0].split(" AS ")[1].split()[0].rstrip(",")
            assert sorted((r[metric] for r in got.values()), reverse=True) == \
                sorted((r[metric] for r in expected.values()), reverse=True)[:limit], name
    # One row per document over the range (a title is not part of the key), ranks 1..10 in order.
    shown = run_saved_query(superset.client, charts["Top documents"], RANGE)["data"]
    assert [r["range_rank"] for r in shown] == list(range(1, 11))
    assert len({r["document_id"] for r in shown}) == len(shown)
    assert shown[0]["views"] == max(r["views"] for r in sql_rows(superset.settings, EXPECTED["Top documents"][0]))


def health_rows(name: str, data: list[dict]) -> list[tuple]:
    """A Pipeline health chart's rows as the tuples of its HEALTH_EXPECTED query (the failures in their order)."""
    if name == "Data quality failures by date":
        return [tuple(row[c] for c in ("event_date", "severity", "suite", "expectation", "observed_value"))
                for row in data]
    if name == "Step outcomes by date":
        return sorted((row["step"], row["event_date"], row["succeeded"]) for row in data)
    # a bar chart, one series per step
    return sorted((step, row["event_date"], row[step]) for row in data for step in STEPS if row.get(step) is not None)


def test_pipeline_health_charts_show_pipeline_runs_quality_failures_and_the_newest_gold_date(superset):
    charts = {c["slice_name"]: c["id"] for c in superset.client.dashboard_charts(HEALTH_DASHBOARD_SLUG)}
    assert sorted(charts) == sorted(HEALTH_EXPECTED)
    shown = {}
    for name, sql in HEALTH_EXPECTED.items():
        (result,) = superset.client.chart_data(charts[name])["result"]  # the saved query, every date
        assert result["status"] == "success" and not result.get("error"), name
        if sql is None:
            continue
        result = run_saved_query(superset.client, charts[name], RANGE)
        assert result["status"] == "success" and not result.get("error"), name
        rows = [tuple(as_superset_value(v) for v in row.values()) for row in sql_rows(superset.settings, sql)]
        shown[name] = health_rows(name, result["data"])
        assert shown[name] and shown[name] == (rows if name == "Data quality failures by date" else sorted(rows)), name
    # what replace_pipeline_runs wrote: day 0 stopped at its gate (no load), every other step ok
    outcomes = {(step, day): ok for step, day, ok in shown["Step outcomes by date"]}
    first = as_superset_value(DAYS[0])
    assert outcomes.pop(("reconcile", first)) == 0 and ("load_to_postgres", first) not in outcomes
    assert len(outcomes) == len(STEPS) * len(DAYS) - 2 and set(outcomes.values()) == {1}
    # Freshness: the newest Gold date of every date (not only the range), and the hours since its 00:00 UTC.
    newest_sql = "SELECT max(event_date) AS newest FROM gold.mart_daily_traffic"
    before = sql_rows(superset.settings, newest_sql)[0]["newest"]
    (newest,) = run_saved_query(superset.client, charts["Newest Gold date"], EMPTY_RANGE)["data"]
    (hours,) = run_saved_query(superset.client, charts["Hours since the newest Gold date"], EMPTY_RANGE)["data"]
    after = sql_rows(superset.settings, newest_sql)[0]["newest"]  # another worker may load or delete a date
    assert newest["newest_date"] in (as_superset_value(before), as_superset_value(after))
    assert abs(hours["hours_since_newest"] - (time.time() * 1000 - newest["newest_date"]) / 3_600_000) < 0.05


def test_export_of_the_provisioned_dashboard_reproduces_the_committed_assets(superset, tmp_path):
    # The documented edit-in-the-UI workflow relies on this: an unchanged dashboard exports to no diff.
    export(superset.settings, tmp_path / "assets")
    exported = {p.relative_to(tmp_path / "assets").as_posix(): yaml.safe_load(p.read_text())
                for p in (tmp_path / "assets").rglob("*.yaml")}
    committed = {p.relative_to(ASSETS_DIR).as_posix(): yaml.safe_load(p.read_text())
                 for p in ASSETS_DIR.rglob("*.yaml")}
    for files in (exported, committed):
        files["metadata.yaml"].pop("timestamp")
        # Provisioning writes the URI from settings (host, port): the committed one is only a default.
        files["databases/tripclick_gold.yaml"].pop("sqlalchemy_uri")
    assert sorted(exported) == sorted(committed)
    assert [name for name in committed if exported[name] != committed[name]] == []


def test_live_charts_show_the_live_views(superset):
    charts = {c["slice_name"]: c["id"] for c in superset.client.dashboard_charts(LIVE_DASHBOARD_SLUG)}
    assert sorted(charts) == sorted(LIVE_EXPECTED)
    for name, (sql, key, order) in LIVE_EXPECTED.items():
        (result,) = superset.client.chart_data(charts[name])["result"]
        assert result["status"] == "success" and not result.get("error"), name
        expected = sql_rows(superset.settings, sql)
        assert expected, name
        if key is None:  # pivoted by server: one row per minute, one column per server
            got = {(row["minute"], server): row[f"clicks, {server}"] for row in result["data"]
                   for server in ("server0", "server1") if row.get(f"clicks, {server}") is not None}
            assert got == {(r["minute"].timestamp() * 1000, r["source_server"]): r["clicks"] for r in expected}
            continue
        by_key = {r[key]: r for r in expected}
        assert len(result["data"]) == min(10, len(expected)), name
        for row in result["data"]:  # every number shown equals the view's
            assert row == by_key[row[key]], (name, row)
        shown, best = [r[order] for r in result["data"]], sorted(r[order] for r in expected)
        assert sorted(shown) == (best[:10] if order == "window_rank" else best[::-1][:10][::-1]), name
    board = superset.client.get(f"/api/v1/dashboard/{LIVE_DASHBOARD_SLUG}")["result"]
    assert json.loads(board["json_metadata"])["refresh_frequency"] == 10  # auto-refresh every 10 s


def test_an_empty_date_range_gives_no_error(superset, charts):
    for name, chart_id in charts.items():
        result = run_saved_query(superset.client, chart_id, EMPTY_RANGE)
        assert result["status"] == "success" and not result.get("error"), name
        values = [v for row in result["data"] for v in row.values()]
        assert all(v in (None, 0) for v in values), (name, result["data"])


@pytest.fixture(scope="module")
def browser(superset):
    """Headless Chromium logged in to the private Superset."""
    driver = screenshots.chromium()
    try:
        screenshots.login(driver, superset.base, superset.settings.superset_admin_user,
                          superset.settings.superset_admin_password)
        yield driver
    finally:
        driver.quit()


def open_dashboard(driver, base: str, time_range: str, screenshot: str) -> tuple[list[dict], str]:
    """Open the dashboard with its date filter set, wait for every chart, save a screenshot."""
    shot = screenshots.open_dashboard(driver, base, DASHBOARD_SLUG, ARTIFACTS / screenshot, len(EXPECTED),
                                      time_range=time_range)
    assert shot.errors == []
    return shot.states, shot.body


def test_dashboard_renders_every_chart_in_chromium(superset, browser):
    states, body = open_dashboard(browser, superset.base, RANGE, "gold_dashboard.png")
    assert sorted(s["title"] for s in states) == sorted(EXPECTED), states
    assert [s for s in states if not s["drawn"] or s["empty"] or s["loading"] or s["error"]] == [], states
    (events,) = sql_rows(superset.settings, EXPECTED["Click events"][0])
    assert f"{events['events']:,}" in body  # the KPI shows the filtered total, not all data


def test_dashboard_shows_no_error_on_an_empty_date_range(superset, browser):
    states, _ = open_dashboard(browser, superset.base, EMPTY_RANGE, "gold_dashboard_empty_range.png")
    assert len(states) == len(EXPECTED)
    assert [s for s in states if s["loading"] or s["error"] or not (s["drawn"] or s["empty"])] == [], states


def test_pipeline_health_dashboard_renders_every_chart_in_chromium(superset, browser):
    shot = screenshots.open_dashboard(browser, superset.base, HEALTH_DASHBOARD_SLUG,
                                      ARTIFACTS / "pipeline_health_dashboard.png", len(HEALTH_EXPECTED),
                                      time_range=RANGE)
    assert shot.errors == []
    assert sorted(s["title"] for s in shot.states) == sorted(HEALTH_EXPECTED), shot.states
    assert [s for s in shot.states if not s["drawn"] or s["empty"] or s["loading"] or s["error"]] == [], shot.states
    assert "unique:dedup_key" in shot.body and "load_to_postgres" in shot.body  # the range's failure and its steps


def test_live_dashboard_renders_in_chromium(superset, browser):
    shot = screenshots.open_dashboard(browser, superset.base, LIVE_DASHBOARD_SLUG, ARTIFACTS / "live_dashboard.png",
                                      len(LIVE_EXPECTED), need_data=True)
    states = shot.states
    assert sorted(s["title"] for s in states) == sorted(LIVE_EXPECTED), states
    assert [s for s in states if not s["drawn"] or s["empty"] or s["loading"] or s["error"]] == [], states
    assert "Provisional live counts" in shot.body
