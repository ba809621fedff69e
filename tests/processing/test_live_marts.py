"""Live marts on real Kafka, Spark and PostgreSQL: the stream fills schema `live` within seconds, a
PostgreSQL outage pauses only the live query (Silver continues, nothing lost), a kill -9 and restart do
not double a count, and the day's load replaces the live rows by the exact marts, which agree with them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock
from pathlib import Path

import pytest

from gold.database import connect_loader
from processing import live_sink
from tests.processing.helpers import delete_day, delete_topic, encode, job_env, new_topic, produce, \
    produce_paced, run_in_process
from tests.processing.scenario import generate_events

pytestmark = pytest.mark.integration
# Later than the dates of the other tests that write live rows (the 15-minute views show the newest live date),
# earlier than test_superset's live rows (2099-12-31).
DAY = date(2098, 5, 7)


def query(settings, sql, params=()):
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def live_total(settings) -> int:
    return query(settings, "SELECT COALESCE(SUM(clicks), 0) FROM live.clicks_per_minute WHERE event_date = %s",
                 (DAY,))[0][0]


def discard(settings) -> None:
    with connect_loader(settings) as conn, conn.cursor() as cur:
        live_sink.discard_date(cur, DAY)
    conn.close()
    delete_day(settings, DAY)


def minute_of(record) -> datetime:
    ts = datetime.fromisoformat(record["event_ts"].replace("Z", "+00:00"))
    return ts.astimezone(timezone.utc).replace(second=0, microsecond=0)


def start_stream(env, log: Path, *args):
    return subprocess.Popen([sys.executable, "-m", "processing.spark.jobs.streaming_to_silver", "--date",
                             DAY.isoformat(), "--trigger", "2", "--quarantine-trigger", "2", "--live-trigger", "1",
                             "--live-retry", "3", *args],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, process=None) -> float | None:
    """Seconds until predicate() holds (polled every 0.2 s), None on timeout or when the process ended."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        if process is not None and process.poll() is not None:
            return None
        time.sleep(0.2)
    return None


@pytest.fixture(scope="module")
def live_run(platform, spark, tmp_path_factory):
    settings = platform
    topic = new_topic(settings, "live-marts")
    root = str(tmp_path_factory.mktemp("lake-live"))
    logs = tmp_path_factory.mktemp("live-logs")
    env = job_env(settings, root, topic)
    discard(settings)
    first = generate_events(DAY, 300, seed=5, prefix="a")
    second = generate_events(DAY, 300, seed=6, prefix="b", start_utc=clock(6, 8))
    third = generate_events(DAY, 200, seed=7, prefix="c", start_utc=clock(6, 16))
    distinct = {r["dedup_key"]: r for r in first + second + third}
    out = {"settings": settings, "distinct": distinct, "first_two": len(first) + len(second), "root": root}

    # 1. A fresh lake: the stream fills the live tables, more clicks (with duplicates) follow; then kill -9.
    produce(settings, topic, [encode(r) for r in first])
    running = start_stream(env, logs / "running.log", "--max-runtime", "600")
    out["catch_up_s"] = wait_for(lambda: live_total(settings) == len(first), 300, running)
    produce_paced(settings, topic, [encode(r) for r in second + first[:40]], seconds=8, chunks=8)
    out["fresh_s"] = wait_for(lambda: live_total(settings) == len(first) + len(second), 120, running)
    time.sleep(3)  # a few more (empty) triggers: nothing may be added twice
    out["total_while_running"] = live_total(settings)
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()
    out["running_log"] = (logs / "running.log").read_text()

    # 2. PostgreSQL unreachable for the live writer (a closed port): Silver must go on, the job exits 0.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    produce(settings, topic, [encode(r) for r in third + second[:20]])
    outage = start_stream({**env, "POSTGRES_PORT": str(closed_port)}, logs / "outage.log", "--max-runtime", "60")
    out["outage_exit"] = outage.wait(timeout=400)
    out["outage_log"] = (logs / "outage.log").read_text()
    out["live_after_outage"] = live_total(settings)

    # 3. PostgreSQL back: a restart replays what the live writer could not commit, drains and stops.
    restart = start_stream(env, logs / "restart.log", "--max-runtime", "1")
    out["restart_exit"] = restart.wait(timeout=400)
    out["restart_log"] = (logs / "restart.log").read_text()
    out["total_after_restart"] = live_total(settings)
    out["per_minute"] = query(settings, "SELECT minute, source_server, clicks FROM live.clicks_per_minute "
                                        "WHERE event_date = %s ORDER BY 1, 2", (DAY,))
    out["top_documents"] = query(settings, "SELECT event_date, window_start, window_end, document_id, clicks, rank "
                                           "FROM live.top_documents_15m ORDER BY rank")
    out["top_areas"] = query(settings, "SELECT event_date, clinical_area, clicks, rank "
                                       "FROM live.top_clinical_areas_15m ORDER BY rank")
    out["document_minutes"] = query(settings, "SELECT minute, document_id, clicks FROM live.document_minutes "
                                              "WHERE event_date = %s", (DAY,))

    # 4. The day's exact marts: Bronze, exact Silver, Gold, load (in process, on the test's SparkSession).
    for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres"):
        assert run_in_process(job, ["--date", DAY.isoformat()], env) == 0, job
    out["exact_total"] = query(settings, "SELECT total_events FROM gold.mart_daily_traffic WHERE event_date = %s",
                               (DAY,))[0][0]
    out["live_after_load"] = query(
        settings, "SELECT (SELECT count(*) FROM live.clicks_per_minute WHERE event_date = %s)"
                  " + (SELECT count(*) FROM live.document_minutes WHERE event_date = %s)"
                  " + (SELECT count(*) FROM live.area_minutes WHERE event_date = %s)", (DAY, DAY, DAY))[0][0]
    yield out
    discard(settings)
    delete_topic(settings, topic)


def test_live_marts_fill_within_seconds_on_a_fresh_lake(live_run):
    assert live_run["catch_up_s"] is not None, live_run["running_log"][-3000:]
    # The second phase is in PostgreSQL within seconds of its last click being produced. The bound is loose
    # because the suite shares 2 cores; `make bench-processing` measures the freshness (processing/README.md).
    assert live_run["fresh_s"] is not None and live_run["fresh_s"] < 60, live_run["running_log"][-3000:]
    assert live_run["total_while_running"] == live_run["first_two"]  # duplicates and empty triggers add nothing


def test_a_postgres_outage_pauses_the_live_marts_only(live_run):
    log = live_run["outage_log"]
    assert live_run["outage_exit"] == 0, log[-3000:]
    assert "live marts not written (failures=1): psycopg2.OperationalError" in log, log[-3000:]
    assert "Silver continues" in log
    summary = [line for line in log.splitlines() if "] summary " in line][-1]
    assert "silver_rows=200" in summary and "live_batches=0" in summary, summary
    assert int(summary.split("live_failures=")[1].split()[0]) >= 1
    assert live_run["live_after_outage"] == live_run["first_two"]


def test_nothing_is_lost_or_doubled_by_the_outage_a_kill_and_restarts(live_run):
    distinct = live_run["distinct"]
    assert live_run["restart_exit"] == 0, live_run["restart_log"][-3000:]
    assert live_run["total_after_restart"] == len(distinct)
    expected = Counter((minute_of(r), r["source_server"]) for r in distinct.values())
    assert [((m, s), n) for m, s, n in live_run["per_minute"]] == sorted(expected.items())


def test_the_15_minute_views_cover_the_newest_15_minutes(live_run):
    distinct = live_run["distinct"]
    last = max(minute_of(r) for r in distinct.values())
    window = [r for r in distinct.values() if minute_of(r) > last - timedelta(minutes=15)]
    clicks = Counter(r["DocumentId"] for r in window)
    expected = sorted(clicks.items(), key=lambda kv: (-kv[1], kv[0]))
    top = live_run["top_documents"]
    assert [(d, n, rank) for _, _, _, d, n, rank in top] == [(d, n, i + 1) for i, (d, n) in enumerate(expected)]
    window_bounds = (DAY, last - timedelta(minutes=14), last + timedelta(minutes=1))
    assert {(row[0], row[1], row[2]) for row in top} == {window_bounds}
    assert sum(n for _, _, n, _ in live_run["top_areas"]) >= len(window)  # multi-area clicks count per area
    assert [rank for *_, rank in live_run["top_areas"]] == list(range(1, len(live_run["top_areas"]) + 1))


def test_the_load_replaces_the_live_rows_and_the_exact_marts_agree(live_run):
    # No event was late for the stream's watermark, so the stream saw every distinct event: equal counts.
    assert live_run["exact_total"] == live_run["total_after_restart"] == len(live_run["distinct"])
    assert live_run["live_after_load"] == 0


def test_the_live_writer_skips_replays_replaces_on_batch_zero_and_ignores_loaded_dates(platform):
    settings = platform
    day, loaded_day = date(2098, 5, 8), date(2098, 5, 9)
    minute = "2098-05-08 06:00:00+00:00"
    query_id = f"test-{time.time_ns()}"
    rows = {"clicks_per_minute": [(day, minute, "server0", 2), (loaded_day, minute, "server0", 5)],
            "document_minutes": [(day, minute, 7, None, 2)], "area_minutes": [(day, minute, "(none)", 2, 2.0)]}
    with connect_loader(settings) as conn, conn.cursor() as cur:
        for d in (day, loaded_day):
            live_sink.discard_date(cur, d)
        cur.execute("DELETE FROM gold.mart_daily_traffic WHERE event_date = %s", (loaded_day,))
        cur.execute("INSERT INTO gold.mart_daily_traffic VALUES (%s, 1, 1, 1, 0)", (loaded_day,))
    try:
        conn = live_sink.connect(settings)
        outcomes = [live_sink.apply_batch(conn, query_id, batch, rows)[0] for batch in (0, 0, 1, 1, 2)]
        assert outcomes == ["applied", "replayed", "applied", "replayed", "applied"]
        assert query(settings, "SELECT event_date, clicks FROM live.clicks_per_minute WHERE event_date "
                               "IN (%s, %s)", (day, loaded_day)) == [(day, 6)]  # batches 0, 1, 2 once each
        assert query(settings, "SELECT title, clicks FROM live.document_minutes WHERE event_date = %s",
                     (day,)) == [(None, 6)]
        # A new checkpoint (new query id) starts at batch 0: its batch replaces the date's rows.
        live_sink.apply_batch(conn, f"{query_id}-new", 0, rows)
        assert query(settings, "SELECT clicks FROM live.clicks_per_minute WHERE event_date = %s", (day,)) == [(2,)]
        conn.close()
    finally:
        with connect_loader(settings) as conn, conn.cursor() as cur:
            for d in (day, loaded_day):
                live_sink.discard_date(cur, d)
            cur.execute("DELETE FROM gold.mart_daily_traffic WHERE event_date = %s", (loaded_day,))
            cur.execute("DELETE FROM live.applied_batches WHERE query_id LIKE %s", (f"{query_id}%",))
        conn.close()
