"""The producer's validation (contract.validate) and Spark's read schema (contract.spark_schema) agree."""
from __future__ import annotations

import json

import pytest
from pyspark.sql import types as T

from messaging import contract

pytestmark = pytest.mark.unit

SPARK_TYPE_OF_KIND = {
    "string": T.StringType(),
    "long": T.LongType(),
    "string_list": T.ArrayType(T.StringType()),
    "iso_timestamp": T.StringType(),
    "iso_date": T.StringType(),
}
# One value of every JSON type; those a column's Spark type cannot hold must be refused.
OTHER_JSON_TYPES = ("text", 12, 1.5, True, ["a"], {"a": 1})


def valid_event() -> dict:
    event_ts = "2026-01-01T06:00:00.177Z"
    return {
        "DateCreated": "/Date(1420113600000)/", "SessionId": "k2fzq355xy0ab1cd2ef3gh45", "DocumentId": 4811207,
        "Url": "http://example.org/guideline.pdf", "Title": "Tissue morcellation", "DOI": "",
        "ClinicalAreas": ",Oncology,Surgery", "Keywords": "laparoscopic gynecology", "Documents": [],
        "event_ts": event_ts, "event_date": "2026-01-01",
        "dedup_key": contract.dedup_key("k2fzq355xy0ab1cd2ef3gh45", 4811207, event_ts), "source_server": "server0",
    }


def test_spark_schema_has_every_contract_field_in_order_with_its_kind():
    schema = contract.spark_schema()
    assert tuple(schema.fieldNames()) == contract.FIELD_NAMES
    for field, spark_field in zip(contract.FIELDS, schema.fields):
        assert spark_field.dataType == SPARK_TYPE_OF_KIND[field.kind], field.name
        assert spark_field.nullable  # nulls reach the quarantine as reasons, never a parse failure


def test_a_valid_event_passes_and_each_missing_required_field_is_named():
    event = valid_event()
    assert contract.validate(event) is None
    for field in contract.FIELDS:
        without = {k: v for k, v in event.items() if k != field.name}
        assert contract.validate(without) == (f"missing_field:{field.name}" if field.required else None)


@pytest.mark.parametrize("field", contract.FIELDS, ids=lambda f: f.name)
def test_validate_accepts_only_the_json_type_native_to_the_spark_column(field):
    """No accepted value relies on Spark's coercion: from_json turns 5 into '5' in a string column and
    '12' into null in a long column, so validate() refuses every JSON type but the column's own."""
    native = {
        T.StringType(): lambda value: isinstance(value, str),
        T.LongType(): lambda value: isinstance(value, int) and not isinstance(value, bool),
        T.ArrayType(T.StringType()): lambda value: isinstance(value, list),
    }[SPARK_TYPE_OF_KIND[field.kind]]
    for value in OTHER_JSON_TYPES:
        if not native(value):
            assert contract.validate({**valid_event(), field.name: value}) == f"wrong_type:{field.name}", value


def test_spark_parses_a_valid_event_into_exactly_the_values_the_producer_validated(spark):
    """Real from_json with the contract schema: nothing is lost or renamed between the two sides."""
    from pyspark.sql import functions as F

    event = {**valid_event(), "Documents": ["4811208", "4811209"]}
    wrong = {**valid_event(), "DocumentId": "4811207x", "Documents": "not-a-list"}
    coerced = {**valid_event(), "Title": 5}
    assert contract.validate(event) is None
    assert contract.validate(wrong) == "wrong_type:DocumentId"
    assert contract.validate(coerced) == "wrong_type:Title"
    frame = spark.createDataFrame([(json.dumps(r),) for r in (event, wrong, coerced)], ["value"])
    rows = frame.select(F.from_json("value", contract.spark_schema()).alias("e")).select("e.*").collect()
    assert rows[0].asDict() == event
    assert rows[1]["DocumentId"] is None and rows[1]["Documents"] is None
    assert rows[2]["Title"] == "5"  # Spark would coerce silently: why validate() is strict


@pytest.mark.parametrize("value, ok", [
    ("2026-01-01T06:00:00.177Z", True), ("2026-01-01T06:00:00.1Z", True), ("2026-01-01T06:00:00.123456Z", True),
    ("2026-01-01T06:00:00Z", False), ("2026-1-1T06:00:00.177Z", False), ("2026-02-30T06:00:00.177Z", False),
    ("2026-01-01 06:00:00.177", False), (1767247200177, False), ("2024-02-29T23:59:59.999Z", True),
    ("2025-02-29T06:00:00.177Z", False), ("2026-04-31T06:00:00.177Z", False), ("2026-12-31T06:00:00.177Z", True),
    ("2026-13-01T06:00:00.177Z", False), ("2026-01-01T24:00:00.177Z", False), ("2026-01-01T06:60:00.177Z", False),
    ("0000-01-01T06:00:00.177Z", False), ("2026-01-01T06:00:00.1234567Z", False),
    ("2026-01-01T06:00:00.177+00:00", False),
])
def test_event_ts_spelling(value, ok):
    day = value[:10] if ok else "2026-01-01"  # a consistent event_date (UTC) for the well-spelled ones
    assert (contract.validate({**valid_event(), "event_ts": value, "event_date": day}, pipeline_tz="UTC") is None) is ok
    if ok:
        assert contract.parse_event_ts(value).tzinfo is not None


@pytest.mark.parametrize("value, ok", [
    ("2026-01-01", True), ("2024-02-29", True), ("2025-02-29", False), ("2026-06-31", False), ("2026-1-01", False),
    ("20260101", False), ("2026-01-01T00:00", False), ("0000-01-01", False), (20260101, False),
])
def test_event_date_spelling(value, ok):
    ts = f"{value}T06:00:00.000Z" if ok else "2026-01-01T06:00:00.000Z"
    assert (contract.validate({**valid_event(), "event_date": value, "event_ts": ts}) is None) is ok


def test_dotnet_dates_and_event_ts_round_trip():
    assert contract.parse_dotnet_date("/Date(1420113600000)/").isoformat() == "2015-01-01T12:00:00+00:00"
    assert contract.parse_dotnet_date("/Date(1420113600000+0100)/").isoformat() == "2015-01-01T12:00:00+00:00"
    for bad in ("/Date(abc)/", "1420113600000", "/Date(99999999999999999)/", None):
        with pytest.raises(ValueError):
            contract.parse_dotnet_date(bad)
        assert contract.validate({**valid_event(), "DateCreated": bad}) in (
            "bad_date:DateCreated", "missing_field:DateCreated", "wrong_type:DateCreated")
    moment = contract.parse_event_ts("2026-01-01T06:59:59.999Z")
    assert contract.format_event_ts(moment) == "2026-01-01T06:59:59.999Z"


def test_dedup_key_is_the_seed_recipe():
    import xxhash

    assert contract.dedup_key("s", 7, "2026-01-01T06:00:00.000Z") == xxhash.xxh64_hexdigest(
        b"s|7|2026-01-01T06:00:00.000Z")
    assert len(contract.dedup_key("s", 7, "t")) == 16


def test_prepared_fields_are_the_contract_minus_what_the_producer_adds():
    prepared = {k: v for k, v in valid_event().items() if k not in ("dedup_key", "source_server")}
    assert contract.validate(prepared, contract.PREPARED_FIELDS) is None
    assert contract.validate(prepared) == "missing_field:dedup_key"
    assert contract.validate({**valid_event(), "source_server": "server9"}) == "bad_value:source_server"


def test_dedup_key_is_pinned_to_a_literal():
    """Computed once by hand (xxhash.xxh64_hexdigest of the joined bytes, seed 0) and hard-coded: a change
    of separator, field order, encoding, seed or hash would silently re-key every record in Silver."""
    assert contract.dedup_key("k2fzq355xy0ab1cd2ef3gh45", 4811207, "2026-01-01T06:00:00.177Z") == "4537282096525513"
    one_ms_apart = ("2026-01-01T06:00:00.000Z", "2026-01-01T06:00:00.001Z")
    assert contract.dedup_key("s", 7, one_ms_apart[0]) != contract.dedup_key("s", 7, one_ms_apart[1])


# ---- bad input: one test per kind, each with its exact reason token

@pytest.mark.parametrize("field, value", [
    ("Title", "Tissue\x00morcellation"), ("Title", "bell\x07"), ("Url", "http://x/\x1f"), ("SessionId", "ab\x0bcd"),
    ("Keywords", "a\x0cb"), ("DOI", "\x1b[31m"), ("ClinicalAreas", ",Onc\x08ology"),
])
def test_control_characters_in_text_fields_are_rejected(field, value):
    assert contract.validate({**valid_event(), field: value}) == f"control_char:{field}"
    raw = json.dumps({**valid_event(), field: value}).encode()  # how they reach us: as \u00XX / \b / \f escapes
    assert contract.validate(json.loads(raw), raw=raw) == f"control_char:{field}"


def test_tab_newline_carriage_return_del_and_c1_are_allowed():
    event = {**valid_event(), "Title": "a\tb\nc\rd\x7fe\x85f", "Keywords": "back\\slash \"quoted\""}
    raw = json.dumps(event).encode()
    assert contract.validate(event) is None
    assert contract.validate(json.loads(raw), raw=raw) is None


def test_control_characters_in_documents_elements_are_rejected():
    assert contract.validate({**valid_event(), "Documents": ["1", "2\x00"]}) == "control_char:Documents"


@pytest.mark.parametrize("value", [[{"id": 1}], ["1", ["2"]], [[]], [{}]])
def test_non_scalar_documents_elements_are_rejected(value):
    assert contract.validate({**valid_event(), "Documents": value}) == "non_scalar:Documents"


def test_scalar_documents_elements_are_kept():
    assert contract.validate({**valid_event(), "Documents": ["1", "2", None]}) is None


@pytest.mark.parametrize("value", [0, -1, -(2**63)])
def test_document_id_must_be_positive(value):
    assert contract.validate({**valid_event(), "DocumentId": value}) == "not_positive:DocumentId"


@pytest.mark.parametrize("value", [" ", "\t", "   \u3000 "])
def test_blank_session_id_is_rejected(value):
    assert contract.validate({**valid_event(), "SessionId": value}) == "blank:SessionId"


@pytest.mark.parametrize("event_ts, event_date, tz, ok", [
    # PIPELINE_TZ Asia/Seoul (UTC+9): the day 2026-01-01 runs 2025-12-31T15:00Z .. 2026-01-01T15:00Z
    ("2025-12-31T15:00:00.000Z", "2026-01-01", "Asia/Seoul", True),
    ("2025-12-31T14:59:59.999Z", "2026-01-01", "Asia/Seoul", False),
    ("2026-01-01T14:59:59.999999Z", "2026-01-01", "Asia/Seoul", True),
    ("2026-01-01T15:00:00.0Z", "2026-01-01", "Asia/Seoul", False),
    ("2026-01-01T15:00:00.0Z", "2026-01-02", "Asia/Seoul", True),
    ("2026-01-01T20:00:00.000Z", "2026-01-01", "UTC", True),
    ("2026-01-01T20:00:00.000Z", "2026-01-01", "Asia/Seoul", False),
    # a DST day of 23 hours: 2026-03-08 in New York runs 05:00Z .. next 04:00Z
    ("2026-03-09T03:59:59.999Z", "2026-03-08", "America/New_York", True),
    ("2026-03-09T04:00:00.000Z", "2026-03-08", "America/New_York", False),
    ("2026-03-08T04:59:59.999Z", "2026-03-08", "America/New_York", False),
])
def test_event_date_must_be_the_date_of_event_ts_in_the_pipeline_zone(event_ts, event_date, tz, ok):
    event = {**valid_event(), "event_ts": event_ts, "event_date": event_date}
    assert contract.validate(event, pipeline_tz=tz) == (None if ok else "inconsistent:event_date")


def test_day_bounds_at_the_edges_of_the_calendar():
    assert contract.day_bounds("2026-01-01", "Asia/Seoul") == ("2025-12-31T15:00:00", "2026-01-01T15:00:00")
    assert contract.day_bounds("0001-01-01", "Asia/Seoul")[0] == ""  # before year 1: nothing is earlier
    assert contract.day_bounds("9999-12-31", "UTC")[1] == "~"  # after 9999: every timestamp is earlier
    event = {**valid_event(), "event_ts": "9999-12-31T23:59:59.999Z", "event_date": "9999-12-31"}
    assert contract.validate(event, pipeline_tz="UTC") is None


def test_records_above_max_event_bytes_are_rejected():
    event = valid_event()
    raw = json.dumps(event).encode()
    assert contract.validate(event, raw=raw, max_bytes=len(raw)) is None
    assert contract.validate(event, raw=raw, max_bytes=len(raw) - 1) == "too_large:record"
    huge = {**event, "Title": "x" * contract.DEFAULT_MAX_EVENT_BYTES}
    assert contract.validate(huge, raw=json.dumps(huge).encode(), max_bytes=contract.DEFAULT_MAX_EVENT_BYTES) == (
        "too_large:record")
    assert contract.DEFAULT_MAX_EVENT_BYTES < 1_000_000  # below the broker's message.max.bytes default


def test_the_escape_shortcut_never_hides_a_control_character():
    """With raw bytes the scan runs only when they hold a backslash; JSON cannot carry a raw control
    character inside a string, so every way to spell one is an escape."""
    for spelling in (b"\\u0000", b"\\u001f", b"\\b", b"\\f", b"\\u001F"):
        raw = json.dumps(valid_event()).encode().replace(b'"Tissue', b'"Tissue' + spelling, 1)
        assert contract.validate(json.loads(raw), raw=raw) == "control_char:Title", spelling


def test_an_unknown_pipeline_zone_fails_at_once():
    with pytest.raises(KeyError, match="Mars/Olympus"):  # zoneinfo's ZoneInfoNotFoundError
        contract.validator(contract.FIELDS, "Mars/Olympus")
