"""Exact expected rows of every pure transformation on tiny inputs."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from gold import marts
from processing import transforms as tf
from tests.processing.helpers import encode, make_event, utc

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


def test_exact_silver_is_bronze_union_stream_one_row_per_key(spark):
    one = make_event("s1", 7, utc(2030, 1, 2, 6, 30))
    two = make_event("s2", 8, utc(2030, 1, 2, 6, 31))
    late = make_event("s3", 9, utc(2030, 1, 2, 6, 32))  # behind the stream's watermark: only Bronze has it
    bronze = tf.parse_events(tf.bronze_rows(kafka_frame(spark, [encode(one), encode(two), b"{bad", encode(late),
                                                                  encode(one)]), "UTC"))
    # The stream committed s1 and s2 from the same messages (same coordinates) and a copy of s2 read earlier
    # from another partition, which ranks first.
    stream = tf.valid_events(bronze).where("SessionId != 's3' AND kafka_offset < 4")
    earlier = stream.where("SessionId = 's2'").withColumn("kafka_partition", F.lit(0)).withColumn("kafka_offset",
                                                                                                F.lit(-1).cast("long"))
    rows = sorted((r.SessionId, r.kafka_partition, r.kafka_offset)
                  for r in tf.exact_silver(bronze, stream.unionByName(earlier)).collect())
    assert rows == [("s1", 0, 0), ("s2", 0, -1), ("s3", 0, 3)]
    assert sorted(r.SessionId for r in tf.exact_silver(bronze).collect()) == ["s1", "s2", "s3"]
    assert tf.exact_silver(bronze).columns == list(tf.SILVER_COLUMNS)


def silver_of(spark, records: list[dict]):
    values = [encode(r) for r in records]
    return tf.valid_events(tf.parse_events(tf.bronze_rows(kafka_frame(spark, values), "UTC"), pipeline_tz="UTC"))


@pytest.fixture(scope="module")
def tiny_day(spark_session):
    hour = 3600 * 1000
    base = 1420070400000  # 2015-01-01T00:00Z (the original click time, DateCreated)
    records = [
        make_event("a", 1, utc(2030, 1, 2, 15, 0, 0), created_ms=base + 9 * hour, areas=",Oncology, Surgery,",
                   keywords="  Breast   Cancer ", title="Doc one"),
        make_event("a", 2, utc(2030, 1, 2, 15, 0, 30), created_ms=base + 9 * hour + 30_500,
                   areas=",Oncology,ONCOLOGY", keywords="breast cancer", title="Doc two"),
        make_event("a", 1, utc(2030, 1, 2, 15, 1, 0), created_ms=base + 10 * hour, areas=" , ", keywords="",
                   title=""),
        make_event("b", 1, utc(2030, 1, 2, 15, 10, 0), created_ms=base + 10 * hour, areas=None, keywords="asthma",
                   title="Doc one"),
        make_event("c", 3, utc(2030, 1, 2, 15, 20, 0), created_ms=base + 11 * hour, areas=",surgery ,OB-gyn",
                   keywords='  "Asthma"  (children) asthma', title="Doc three"),
    ]
    return silver_of(spark_session, records).cache()


def test_every_mart_has_a_builder_and_its_rows_have_the_defined_columns_and_types(tiny_day):
    assert set(tf.MART_BUILDERS) == set(marts.NAMES)
    for mart in marts.MARTS:
        rows = tf.mart_rows(mart.name, tiny_day)
        assert rows.dtypes == [(c.name, tf.SPARK_TYPES[c.type]) for c in mart.columns], mart.name
        assert rows.count() > 0, mart.name


def test_marts_of_several_dates_equal_each_date_alone(spark, tiny_day):
    # A backfill builds every mart of its dates in one pass: each date's rows must be those it has alone.
    base = 1420070400000
    next_day = silver_of(spark, [
        make_event("a", 1, utc(2030, 1, 3, 15, 0), created_ms=base + 20 * 3600_000, areas=",Surgery",
                   keywords="asthma"),
        make_event("d", 5, utc(2030, 1, 3, 15, 5), created_ms=base, areas=None, keywords="gout", title="Doc five"),
    ])
    both = tiny_day.unionByName(next_day)
    for mart in marts.NAMES:
        together = sorted(tuple(r) for r in tf.mart_rows(mart, both).collect())
        alone = sorted(tuple(r) for day in (tiny_day, next_day) for r in tf.mart_rows(mart, day).collect())
        assert together == alone, mart
        assert {r[0] for r in together} == {DAY, date(2030, 1, 3)}, mart


def test_daily_traffic_peak_hour_from_original_time(tiny_day):
    rows = [tuple(r) for r in tf.daily_traffic(tiny_day).collect()]
    assert rows == [(DAY, 5, 3, 3, 9)]  # hours 9 and 10 tie with 2 events each: lowest wins


def test_daily_traffic_of_an_empty_day_has_no_row(tiny_day):
    assert tf.daily_traffic(tiny_day.where("false")).count() == 0


def test_session_analysis_on_the_original_clock(tiny_day):
    # Replay times of "a" span 60 s (15:00:00-15:01:00); its original clicks span 1 h: real seconds.
    rows = sorted(tuple(r) for r in tf.session_analysis(tiny_day).collect())
    assert rows == [
        (DAY, "a", 3, 2, datetime(2015, 1, 1, 9, 0), datetime(2015, 1, 1, 10, 0), 3600.0),
        (DAY, "b", 1, 1, datetime(2015, 1, 1, 10, 0), datetime(2015, 1, 1, 10, 0), 0.0),
        (DAY, "c", 1, 1, datetime(2015, 1, 1, 11, 0), datetime(2015, 1, 1, 11, 0), 0.0),
    ]


def test_session_duration_keeps_milliseconds(spark):
    base = 1420070400000
    day = silver_of(spark, [make_event("s", 1, utc(2030, 1, 2, 6, 0), created_ms=base),
                            make_event("s", 2, utc(2030, 1, 2, 6, 1), created_ms=base + 1_250)])
    (row,) = tf.session_analysis(day).collect()
    assert row.session_duration_sec == 1.25


def test_clinical_areas_normalised_with_a_none_bucket(tiny_day):
    rows = sorted(tuple(r) for r in tf.clinical_areas(tiny_day).collect())
    assert rows == [
        (DAY, "(none)", 2, 2, 2.0),  # an empty list, one of only blanks and a null: no area
        (DAY, "Ob-Gyn", 1, 1, 0.5),
        (DAY, "Oncology", 2, 1, 1.5),  # "Oncology,ONCOLOGY" on one click counts once
        (DAY, "Surgery", 2, 2, 1.0),  # " Surgery" and "surgery " are one area
    ]
    assert sum(r[4] for r in rows) == 5  # click_share adds up to the day's clicks


def test_area_display_is_title_case_of_the_key(spark):
    frame = spark.createDataFrame([("primary  care ",), ("OB/GYN",), ("ear-nose throat",)], "a string")
    shown = [r[0] for r in frame.select(tf.area_display(tf.normalise_area(frame.a))).collect()]
    assert shown == ["Primary Care", "Ob/Gyn", "Ear-Nose Throat"]


def test_popular_documents_rank_every_document(tiny_day):
    rows = sorted(tuple(r) for r in tf.popular_documents(tiny_day).collect())
    assert rows == [(DAY, 1, "Doc one", 3, 2, 1), (DAY, 2, "Doc two", 1, 1, 2), (DAY, 3, "Doc three", 1, 1, 3)]


def test_popular_documents_ties_go_to_the_lower_id(spark):
    day = silver_of(spark, [make_event("s", 9, utc(2030, 1, 2, 6, 0)), make_event("t", 4, utc(2030, 1, 2, 6, 1))])
    assert sorted((r.document_id, r.rank) for r in tf.popular_documents(day).collect()) == [(4, 1), (9, 2)]


def test_search_keywords_are_whole_normalised_queries(tiny_day):
    rows = sorted(tuple(r) for r in tf.search_keywords(tiny_day).collect())
    assert rows == [(DAY, '"asthma" (children) asthma', 1, 1, 1), (DAY, "asthma", 1, 1, 1),
                    (DAY, "breast cancer", 1, 2, 2)]


def test_search_terms_split_queries_into_distinct_terms(tiny_day):
    rows = sorted(tuple(r) for r in tf.search_terms(tiny_day).collect())
    assert rows == [  # (date, term, sessions, clicks, queries, documents)
        (DAY, "asthma", 2, 2, 2, 2),  # twice in one query = once for that click
        (DAY, "breast", 1, 2, 1, 2),
        (DAY, "cancer", 1, 2, 1, 2),
        (DAY, "children", 1, 1, 1, 1),
    ]


# ---- the contract's bad-input rules apply on the Spark side too (quarantined with the contract's token)

def bad_inputs() -> dict[str, bytes]:
    """reason token -> a wire value that breaks exactly that rule (valid otherwise, at 15:30 in Seoul)."""
    good = make_event("s1", 7, utc(2030, 1, 2, 6, 30))
    return {
        "control_char:Title": encode({**good, "Title": "Doc\x00one"}),
        "too_large:record": encode({**good, "Title": "x" * 3000}),
        "not_positive:DocumentId": encode({**good, "DocumentId": 0}),
        "blank:SessionId": encode({**good, "SessionId": "  "}),
        "inconsistent:event_date": encode({**good, "event_date": "2030-01-01"}),
        "non_scalar:Documents": encode({**good, "Documents": [{"id": 7}]}),
    }


def test_validation_reason_applies_every_contract_rule():
    for reason, value in bad_inputs().items():
        assert tf.validation_reason(value, "Asia/Seoul", 2000) == reason
    good = encode(make_event("s1", 7, utc(2030, 1, 2, 6, 30)))
    assert tf.validation_reason(good, "Asia/Seoul", len(good)) is None
    assert tf.validation_reason(good, "Asia/Seoul", len(good) - 1) == "too_large:record"  # the raw value's bytes
    assert tf.validation_reason(encode({**make_event("s1", 7, utc(2030, 1, 2, 6, 30)), "Title": "x" * 70_000})) == (
        "too_large:record")  # default MAX_EVENT_BYTES


def test_each_bad_input_lands_in_quarantine_with_its_token(spark):
    bad = bad_inputs()
    good = encode(make_event("s2", 8, utc(2030, 1, 2, 6, 31)))
    values = [good, *bad.values()]
    parsed = tf.parse_events(tf.bronze_rows(kafka_frame(spark, values), "Asia/Seoul"), pipeline_tz="Asia/Seoul",
                             max_event_bytes=2000).cache()
    assert [r.SessionId for r in tf.valid_events(parsed).collect()] == ["s2"]
    quarantined = {r.kafka_offset: r for r in tf.quarantined(parsed).collect()}
    assert {offset: r.reason for offset, r in quarantined.items()} == dict(enumerate(bad, start=1))
    assert quarantined[1 + list(bad).index("inconsistent:event_date")].event_date == date(2030, 1, 1)
    assert all(r.value for r in quarantined.values())  # the raw value is kept for inspection
