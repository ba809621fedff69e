"""Exact expected rows of every pure transformation on tiny inputs."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from processing import transforms as tf
from tests.processing.conftest import encode, make_event, utc

pytestmark = pytest.mark.unit
DAY = date(2030, 1, 2)
KAFKA_TS = datetime(2030, 1, 2, 6, 0)  # naive = UTC in the session; 15:00 in Asia/Seoul


def kafka_frame(spark, values: list[bytes | None]):
    rows = [(b"k", v, "t", i % 3, i, KAFKA_TS) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long, "
                                       "timestamp timestamp")


@pytest.mark.parametrize("value, reason", [
    (None, "empty_value"),
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "not_an_object"),
])
def test_validation_reason_for_broken_values(value, reason):
    assert tf.validation_reason(value) == reason


def test_validation_reason_uses_contract_tokens():
    record = make_event("s1", 7, utc(2030, 1, 2, 6, 0))
    assert tf.validation_reason(encode(record)) is None
    assert tf.validation_reason(encode({**record, "SessionId": ""})) == "missing_field:SessionId"
    assert tf.validation_reason(encode({**record, "DocumentId": "7"})) == "wrong_type:DocumentId"
    assert tf.validation_reason(encode({**record, "DateCreated": "yesterday"})) == "bad_date:DateCreated"


def test_parse_splits_valid_and_quarantined_with_dates(spark):
    good = make_event("s1", 7, utc(2030, 1, 2, 6, 30), created_ms=1420113600000)
    values = [encode(good), b"{broken", encode({**good, "DocumentId": None}),
              encode({**good, "event_date": "2030-01-05", "SessionId": ""})]
    parsed = tf.parse_events(tf.bronze_rows(kafka_frame(spark, values), "Asia/Seoul")).cache()
    valid = [r.asDict() for r in tf.valid_events(parsed).collect()]
    assert len(valid) == 1
    row = valid[0]
    assert (row["SessionId"], row["DocumentId"], row["event_date"]) == ("s1", 7, DAY)
    assert row["event_ts"] == datetime(2030, 1, 2, 6, 30)
    assert row["original_ts"] == datetime(2015, 1, 1, 12, 0)
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("t", 0, 0)
    assert list(row) == list(tf.SILVER_COLUMNS)
    bad = sorted((r.kafka_offset, r.reason, r.event_date, r.value[:7]) for r in tf.quarantined(parsed).collect())
    assert bad == [
        (1, "malformed_json", DAY, "{broken"),  # no usable event_date: Kafka timestamp's date in Seoul
        (2, "missing_field:DocumentId", DAY, '{"DateC'),
        (3, "missing_field:SessionId", date(2030, 1, 5), '{"DateC'),  # the value's own event_date
    ]


def test_exact_dedup_keeps_lowest_offset_copy(spark):
    one = make_event("s1", 7, utc(2030, 1, 2, 6, 30))
    two = make_event("s2", 8, utc(2030, 1, 2, 6, 31))
    values = [encode(one), encode(two), encode(one), encode(one)]
    parsed = tf.parse_events(tf.bronze_rows(kafka_frame(spark, values), "UTC"))
    rows = sorted((r.SessionId, r.kafka_offset) for r in tf.exact_dedup(tf.valid_events(parsed)).collect())
    assert rows == [("s1", 0), ("s2", 1)]


def silver_of(spark, records: list[dict]):
    values = [encode(r) for r in records]
    return tf.valid_events(tf.parse_events(tf.bronze_rows(kafka_frame(spark, values), "UTC")))


@pytest.fixture(scope="module")
def tiny_day(spark):
    hour = 3600 * 1000
    base = 1420070400000  # 2015-01-01T00:00Z
    records = [
        make_event("a", 1, utc(2030, 1, 2, 15, 0, 0), created_ms=base + 9 * hour, areas=",Oncology, Surgery,",
                   keywords="  Breast   Cancer ", title="Doc one"),
        make_event("a", 2, utc(2030, 1, 2, 15, 0, 30), created_ms=base + 9 * hour, areas=",Oncology,Oncology",
                   keywords="breast cancer", title="Doc two"),
        make_event("a", 1, utc(2030, 1, 2, 15, 1, 0), created_ms=base + 10 * hour, areas="", keywords="",
                   title=""),
        make_event("b", 1, utc(2030, 1, 2, 15, 10, 0), created_ms=base + 10 * hour, areas=None, keywords="asthma",
                   title="Doc one"),
        make_event("c", 3, utc(2030, 1, 2, 15, 20, 0), created_ms=base + 11 * hour, areas=",Surgery",
                   keywords="ASTHMA", title="Doc three"),
    ]
    return silver_of(spark, records).cache()


def test_daily_traffic_peak_hour_from_original_time(tiny_day):
    rows = [tuple(r) for r in tf.daily_traffic(tiny_day, DAY).collect()]
    assert rows == [(DAY, 5, 3, 3, 9)]  # hours 9 and 10 tie with 2 events each: lowest wins


def test_daily_traffic_of_an_empty_day_has_no_row(tiny_day):
    assert tf.daily_traffic(tiny_day.where("false"), DAY).count() == 0


def test_session_analysis(tiny_day):
    rows = sorted(tuple(r) for r in tf.session_analysis(tiny_day, DAY).collect())
    assert rows == [
        (DAY, "a", 3, 2, datetime(2030, 1, 2, 15, 0), datetime(2030, 1, 2, 15, 1), 60.0),
        (DAY, "b", 1, 1, datetime(2030, 1, 2, 15, 10), datetime(2030, 1, 2, 15, 10), 0.0),
        (DAY, "c", 1, 1, datetime(2030, 1, 2, 15, 20), datetime(2030, 1, 2, 15, 20), 0.0),
    ]


def test_clinical_areas(tiny_day):
    rows = sorted(tuple(r) for r in tf.clinical_areas(tiny_day, DAY).collect())
    assert rows == [(DAY, "Oncology", 2, 1), (DAY, "Surgery", 2, 2)]


def test_popular_documents_rank_every_document(tiny_day):
    rows = sorted(tuple(r) for r in tf.popular_documents(tiny_day, DAY).collect())
    assert rows == [(DAY, 1, "Doc one", 3, 2, 1), (DAY, 2, "Doc two", 1, 1, 2), (DAY, 3, "Doc three", 1, 1, 3)]


def test_search_keywords_normalised(tiny_day):
    rows = sorted(tuple(r) for r in tf.search_keywords(tiny_day, DAY).collect())
    assert rows == [(DAY, "asthma", 2, 2, 2), (DAY, "breast cancer", 1, 2, 2)]
