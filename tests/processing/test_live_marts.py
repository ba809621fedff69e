"""Live marts on real Kafka, Spark and PostgreSQL, read from the local-mode world (tests/processing/local_day.py):
the stream fills schema `live` within seconds, a PostgreSQL outage pauses only the live query (Silver continues,
nothing lost), a kill -9 and restarts do not double a count, and the day's load replaces the live rows by the
exact marts, which agree with them."""
from __future__ import annotations

import time
from collections import Counter
from datetime import date, timedelta

import pytest

from gold.database import connect_loader
from processing import live_sink
from tests.processing.local_day import DAY, OUTAGE_EVENTS, minute_of, query

pytestmark = pytest.mark.integration


def on_time(world) -> list[dict]:
    """The distinct valid events of DAY the stream saw in time (all but the late ones)."""
    scenario = world["scenario"]
    return [e for k, e in scenario.valid.items() if k not in scenario.late_keys]


def test_live_marts_fill_within_seconds_on_a_fresh_lake(local_day):
    assert local_day["catch_up_s"] is not None, local_day["running_log"][-3000:]
    # Phase B1 is in PostgreSQL within seconds of its last click being produced. The bound is loose because the
    # suite shares 2 cores; `make bench-processing` measures the freshness (processing/README.md).
    assert local_day["fresh_s"] is not None and local_day["fresh_s"] < 60, local_day["running_log"][-3000:]
    # duplicates and empty triggers add nothing
    assert local_day["total_while_running"] == local_day["live_after_b1"]


def test_a_postgres_outage_pauses_the_live_marts_only(local_day):
    log = local_day["outage_log"]
    assert local_day["outage_exit"] == 0, log[-3000:]
    assert "live marts not written (failures=1): psycopg2.OperationalError" in log, log[-3000:]
    assert "Silver continues" in log
    summary = [line for line in log.splitlines() if "] summary " in line][-1]
    assert "live_batches=0" in summary, summary
    assert int(summary.split("silver_rows=")[1].split()[0]) >= OUTAGE_EVENTS, summary  # phase C at least
    assert int(summary.split("live_failures=")[1].split()[0]) >= 1
    assert local_day["live_after_outage"] == local_day["live_before_outage"]


def test_nothing_is_lost_or_doubled_by_the_outage_a_kill_and_restarts(local_day):
    events = on_time(local_day)
    assert local_day["restart_exit"] == 0, local_day["restart_log"][-3000:]
    assert local_day["total_after_restart"] == len(events)
    expected = Counter((minute_of(r), r["source_server"]) for r in events)
    assert [((m, s), n) for m, s, n in local_day["per_minute"]] == sorted(expected.items())


def test_the_15_minute_views_cover_the_newest_15_minutes(local_day):
    """Read while the stream ran (phases A and B1 in, all of DAY): the newest 15 minutes of what was live."""
    events = local_day["view_events"]
    last = max(minute_of(r) for r in events)
    window = [r for r in events if minute_of(r) > last - timedelta(minutes=15)]
    clicks = Counter(r["DocumentId"] for r in window)
    expected = sorted(clicks.items(), key=lambda kv: (-kv[1], kv[0]))
    top = local_day["top_documents"]
    assert [(d, n, rank) for _, _, _, d, n, rank in top] == [(d, n, i + 1) for i, (d, n) in enumerate(expected)]
    window_bounds = (DAY, last - timedelta(minutes=14), last + timedelta(minutes=1))
    assert {(row[0], row[1], row[2]) for row in top} == {window_bounds}
    assert sum(n for _, _, n, _ in local_day["top_areas"]) >= len(window)  # multi-area clicks count per area
    assert [rank for *_, rank in local_day["top_areas"]] == list(range(1, len(local_day["top_areas"]) + 1))


def test_the_load_replaces_the_live_rows_and_the_exact_marts_agree(local_day):
    # The stream saw every distinct event but the late ones, which only Bronze brings in.
    late = len(local_day["scenario"].late_keys)
    assert local_day["exact_total"] == local_day["total_after_restart"] + late == len(local_day["scenario"].valid)
    assert local_day["live_after_load"] == 0


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
