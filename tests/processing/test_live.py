"""Live marts: the pure per-minute aggregations (processing/live.py) on a tiny micro-batch, exact rows."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from processing import live
from processing import transforms as tf
from processing.live_sink import upsert_sql
from tests.processing.helpers import encode, make_event, utc

pytestmark = pytest.mark.unit
DAY = date(2030, 1, 2)


@pytest.fixture(scope="module")
def batch(spark_session):
    """Four committed Silver rows of one micro-batch (06:00 UTC = 15:00 in Asia/Seoul)."""
    events = [
        make_event("s1", 7, utc(2030, 1, 2, 6, 0, 10), areas=",Oncology,Surgery", title="T7", server="server0"),
        make_event("s2", 7, utc(2030, 1, 2, 6, 0, 50), areas=" oncology , ONCOLOGY", title="", server="server1"),
        make_event("s1", 8, utc(2030, 1, 2, 6, 1, 5), areas="", title="B", server="server0"),
        make_event("s3", 7, utc(2030, 1, 2, 6, 1, 30), areas=",Surgery", title="A7", server="server0"),
    ]
    rows = [(b"k", encode(e), "t", 0, i, datetime(2030, 1, 2, 6, 2)) for i, e in enumerate(events)]
    kafka = spark_session.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long, "
                                        "timestamp timestamp")
    return tf.valid_events(tf.parse_events(tf.bronze_rows(kafka, "Asia/Seoul"))).cache()


def rendered(frame, table):
    return sorted(tuple(r) for r in live.for_postgres(frame, table).collect())


M0, M1 = "2030-01-02 06:00:00+00:00", "2030-01-02 06:01:00+00:00"


def test_clicks_per_minute_per_server(batch):
    assert rendered(live.clicks_per_minute(batch), "clicks_per_minute") == [
        (DAY, M0, "server0", 1), (DAY, M0, "server1", 1), (DAY, M1, "server0", 2)]


def test_document_minutes_count_clicks_and_keep_the_greatest_non_empty_title(batch):
    assert rendered(live.document_minutes(batch), "document_minutes") == [
        (DAY, M0, 7, "T7", 2), (DAY, M1, 7, "A7", 1), (DAY, M1, 8, "B", 1)]


def test_area_minutes_follow_the_clinical_area_rules(batch):
    # 06:00: s1 splits between Oncology and Surgery; s2 lists oncology twice -> once, whole click.
    # 06:01: an empty ClinicalAreas -> (none).
    assert rendered(live.area_minutes(batch), "area_minutes") == [
        (DAY, M0, "Oncology", 2, 1.5), (DAY, M0, "Surgery", 1, 0.5),
        (DAY, M1, "(none)", 1, 1.0), (DAY, M1, "Surgery", 1, 1.0)]


def test_an_empty_batch_gives_no_rows(batch):
    empty = batch.limit(0)
    assert all(live.BUILDERS[t](empty).count() == 0 for t in live.TABLES)


def test_upserts_add_counts_and_keep_the_greatest_title():
    sql = upsert_sql("document_minutes")
    assert sql.startswith("INSERT INTO live.document_minutes AS document_minutes "
                          "(event_date, minute, document_id, title, clicks, updated_at) VALUES %s "
                          "ON CONFLICT (event_date, minute, document_id) DO UPDATE SET ")
    assert "clicks = document_minutes.clicks + EXCLUDED.clicks" in sql
    assert "title = GREATEST(document_minutes.title, EXCLUDED.title)" in sql


def test_a_failed_live_write_is_reported_by_its_python_error():
    from processing.spark.jobs.streaming_to_silver import failure_reason

    wrapped = ("An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):\n"
               '  File "x.py", line 1, in write_batch\n'
               'psycopg2.OperationalError: connection to server at "127.0.0.1", port 4444 failed: Connection refused\n'
               "\n=== Streaming Query ===\n")
    assert failure_reason(wrapped) == ('psycopg2.OperationalError: connection to server at "127.0.0.1", port 4444 '
                                       'failed: Connection refused')
    assert failure_reason(None) == "stopped"
