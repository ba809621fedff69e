"""Each expectation builder of processing/quality.py on tiny DataFrames: it passes on good rows and fails (with
its severity) on rows that carry exactly the fault it guards against. One GE validation per test."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from gold import marts
from processing import quality as q

pytestmark = pytest.mark.unit
DAY = date(2031, 6, 2)


def outcome(spark, rows, schema, specs) -> dict[str, tuple[bool, str]]:
    frame = spark.createDataFrame(rows, schema)
    return {r.expectation: (r.success, r.severity) for r in q.validate(frame, "t", specs)}


def test_schema_types_and_exact_columns(spark):
    specs = q.schema_specs({"DocumentId": "LongType"}, exact=("DocumentId", "x"))
    assert outcome(spark, [(1, "a")], "DocumentId long, x string", specs) == {
        "columns_match": (True, "fail"), "type:DocumentId": (True, "fail")}
    assert outcome(spark, [("1", "a", 1)], "DocumentId string, x string, extra int", specs) == {
        "columns_match": (False, "fail"), "type:DocumentId": (False, "fail")}


def test_keys_never_null_and_unique(spark):
    specs = q.not_null_specs(("k",)) + q.unique_specs(("k",))
    assert outcome(spark, [("a",), ("b",)], "k string", specs) == {
        "not_null:k": (True, "fail"), "unique:k": (True, "fail")}
    assert outcome(spark, [("a",), ("a",), (None,)], "k string", specs) == {
        "not_null:k": (False, "fail"), "unique:k": (False, "fail")}


def test_event_date_must_be_the_run_date(spark):
    rows = [(datetime(2031, 6, 1, 16, 0, tzinfo=timezone.utc),),  # 01:00 on 06-02 in Seoul
            (datetime(2031, 6, 2, 16, 0, tzinfo=timezone.utc),)]  # 01:00 on 06-03 in Seoul: another date
    frame = q.silver_frame(spark.createDataFrame(rows, "event_ts timestamp"), "Asia/Seoul")
    good = {r.expectation: r.success for r in q.validate(frame.limit(1), "t", q.event_date_specs(DAY))}
    bad = q.validate(frame, "t", q.event_date_specs(DAY))
    assert good == {"event_date_is_run_date": True}
    assert [(r.success, r.severity) for r in bad] == [(False, "fail")] and "2031-06-03" in bad[0].observed


def test_document_id_positive_and_vocabulary_warns(spark):
    specs = q.document_id_specs("d") + q.vocabulary_specs("area", ("Oncology",))
    assert outcome(spark, [(1, "Oncology")], "d long, area string", specs) == {
        "positive:d": (True, "fail"), "known_vocabulary:area": (True, "warn")}
    assert outcome(spark, [(0, "Xenobiology")], "d long, area string", specs) == {
        "positive:d": (False, "fail"), "known_vocabulary:area": (False, "warn")}


def test_volume_band_fails_with_a_full_history_and_warns_before(spark):
    frame_rows = [(i,) for i in range(10)]
    full = q.volume_specs([100] * q.TRAILING_DAYS, 0.5)
    young = q.volume_specs([100, 100], 0.5)
    assert outcome(spark, frame_rows, "i int", full) == {"volume_in_trailing_band": (False, "fail")}
    assert outcome(spark, frame_rows, "i int", young) == {"volume_in_trailing_band": (False, "warn")}
    assert outcome(spark, frame_rows, "i int", q.volume_specs([12] * 7, 0.5)) == {
        "volume_in_trailing_band": (True, "fail")}
    assert q.volume_specs([], 0.5)[0].severity == "warn"


def test_load_time_must_lie_within_the_day_producer_runs(spark):
    manifests = [{"started_at": "2031-06-02T06:00:00Z", "finished_at": "2031-06-02T07:00:00Z"},
                 {"started_at": "2031-06-02T06:05:00+00:00", "finished_at": "2031-06-02T07:30:00Z"}, {}]
    window = q.load_window(manifests, timedelta(minutes=30))
    assert window == (datetime(2031, 6, 2, 5, 30, tzinfo=timezone.utc), datetime(2031, 6, 2, 8, tzinfo=timezone.utc))
    inside, replayed = datetime(2031, 6, 2, 7, 50, tzinfo=timezone.utc), datetime(2031, 6, 5, 7, tzinfo=timezone.utc)
    specs = q.load_time_specs(window)
    assert outcome(spark, [(inside,)], "kafka_timestamp timestamp", specs) == {
        "load_time_within_window": (True, "warn")}
    assert outcome(spark, [(inside,), (replayed,)], "kafka_timestamp timestamp", specs) == {
        "load_time_within_window": (False, "warn")}
    assert q.load_window([{}], timedelta(0)) is None  # no manifest: recorded, not compared
    assert outcome(spark, [(replayed,)], "kafka_timestamp timestamp", q.load_time_specs(None)) == {
        "load_time_within_window": (True, "warn")}


def test_a_mart_suite_gives_the_same_verdicts_on_pandas_and_on_spark(spark):
    rows = [(1, 6, 3, 4), (3, 7, 2, 2), (4, 6, 1, 1)]  # rank gap at 2, sessions 4 > clicks 3
    frame = spark.createDataFrame(rows, "rank int, total long, clicks long, sessions long")
    specs = q.rank_specs(3) + q.sum_specs("clicks_sum", "clicks", 6, "g") + q.le_specs("sessions", "clicks")
    on_spark = {r.expectation: r.success for r in q.validate(frame, "t", specs)}
    table, rows_seen = q.mart_frame(frame, 3)
    assert rows_seen == 3 and not hasattr(table, "rdd")  # small: validated on pandas
    assert {r.expectation: r.success for r in q.validate(table, "t", specs)} == on_spark == {
        "unique:rank": True, "min:rank": True, "max:rank": False, "clicks_sum": True, "sessions_le_clicks": False}


def test_failed_expectations_carry_a_sample_of_what_was_unexpected(spark):
    frame = spark.createDataFrame([("a",), ("a",), ("b",)], "k string")
    (result,) = q.validate(frame, "t", q.unique_specs(("k",)))
    assert not result.success and result.observed.startswith("2 unexpected of 3") and "'a'" in result.observed


def test_ranks_gold_totals_and_counts(spark):
    schema = "rank int, total long, clicks long, sessions long"
    specs = (q.rank_specs(3) + q.equals_specs("total_eq_silver", "total", 6, "g")
             + q.sum_specs("clicks_sum_eq_silver", "clicks", 6, "g") + q.le_specs("sessions", "clicks"))
    good = outcome(spark, [(1, 6, 3, 1), (2, 6, 2, 2), (3, 6, 1, 1)], schema, specs)
    assert all(ok for ok, _ in good.values()), good
    bad = outcome(spark, [(1, 6, 3, 4), (3, 7, 2, 2), (4, 6, 1, 1)], schema, specs)  # gap at 2, total 7, 4 > 3
    assert {k for k, (ok, _) in bad.items() if not ok} == {
        "max:rank", "total_eq_silver", "sessions_le_clicks"}, bad


@pytest.mark.slow  # building the specs imports Great Expectations: seconds on its own
def test_every_mart_has_a_suite_and_severities_are_known():
    for mart in marts.NAMES:
        specs = q.mart_specs(mart, 10, 3)
        assert specs and {s.severity for s in specs} <= set(q.SEVERITIES), mart
        assert len({s.name for s in specs}) == len(specs), mart
        assert all(s.guards for s in specs), mart
    with pytest.raises(ValueError):
        q.spec("x", "critical", "g", "ExpectColumnToExist", column="a")


def test_trailing_volumes_and_data_docs(tmp_path):
    published = {date(2031, 6, 1): 10, date(2031, 5, 30): 20}
    assert q.trailing_volumes(published.get, DAY) == [10, 20]
    results = [q.Result("silver", "unique:dedup_key", "fail", False, "1 unexpected <b>", "dup"),
               q.Result("mart_clinical_areas", "known_vocabulary:clinical_area", "warn", False, "x", "new")]
    page = q.render_html(DAY, results, datetime(2031, 6, 2, 9, tzinfo=timezone.utc))
    assert "STOP: the load does not run" in page and "1 failed" in page and "1 warnings" in page
    assert "&lt;b&gt;" in page and "<b>STOP" in page
    assert q.docs_path("s3a://b/lake/", DAY) == "s3a://b/lake/quality/docs/event_date=2031-06-02/index.html"


def test_load_lateness_setting():
    from infrastructure.settings import ConfigError

    assert q.load_lateness_minutes({"ENV_FILE": "/nonexistent"}) == 180
    assert q.load_lateness_minutes({"ENV_FILE": "/nonexistent", "QUALITY_LOAD_LATENESS_MINUTES": "0"}) == 0
    for bad in ("x", "-5", "1.5"):
        with pytest.raises(ConfigError):
            q.load_lateness_minutes({"ENV_FILE": "/nonexistent", "QUALITY_LOAD_LATENESS_MINUTES": bad})


def test_volume_band_setting(monkeypatch):
    from infrastructure.settings import ConfigError

    assert q.volume_band({"ENV_FILE": "/nonexistent"}) == 0.5
    assert q.volume_band({"ENV_FILE": "/nonexistent", "QUALITY_VOLUME_BAND": "0.2"}) == 0.2
    for bad in ("x", "0", "-1"):
        with pytest.raises(ConfigError):
            q.volume_band({"ENV_FILE": "/nonexistent", "QUALITY_VOLUME_BAND": bad})
