"""The producer's per-line parser (no Kafka): what becomes a message, what is blank, what is rejected."""
from __future__ import annotations

import orjson
import pytest

from infrastructure.settings import REPO_ROOT
from ingestion.producer import BLANK, BOM, line_parser
from messaging import contract

pytestmark = pytest.mark.unit
SAMPLE = REPO_ROOT / "ingestion" / "sample_data" / "prepared" / "server0" / "date=2026-01-01" / "events.json"


@pytest.fixture(scope="module")
def line() -> bytes:
    return SAMPLE.read_bytes().splitlines(keepends=True)[0]


def test_a_valid_line_becomes_the_line_plus_the_producer_fields(line):
    value, key, event_ts = line_parser("server1", "Asia/Seoul", 65_536)(line)
    record = orjson.loads(value)
    assert record == {**orjson.loads(line), "dedup_key": contract.dedup_key(key, record["DocumentId"], event_ts),
                      "source_server": "server1"}
    assert contract.validate(record, raw=value, pipeline_tz="Asia/Seoul") is None


@pytest.mark.parametrize("raw, expected", [
    (b"\n", BLANK), (b"   \r\n", BLANK), (BOM + b"\n", BLANK),
    (b"{not json\n", "invalid_json"), (b'{"Title":"\xff"}\n', "not_utf8"), (BOM + BOM + b"{}\n", "invalid_json"),
    (BOM * 5000 + b"{}\n", "invalid_json"), (b"[1]\n", "not_an_object"),
])
def test_lines_that_are_not_events(raw, expected):
    assert line_parser("server0", "Asia/Seoul", 65_536)(raw) == (None, expected, None)


def test_bom_and_crlf_are_tolerated(line):
    parse = line_parser("server0", "Asia/Seoul", 65_536)
    plain = parse(line)[0]
    assert parse(BOM + line)[0] == plain
    assert parse(line.rstrip(b"\n") + b"\r\n")[0] == plain


def test_the_size_rule_applies_to_the_message_value_spark_will_check(line):
    value = line_parser("server0", "Asia/Seoul", 65_536)(line)[0]
    assert line_parser("server0", "Asia/Seoul", len(value))(line)[0] == value
    # the line itself fits, the message with the producer fields does not: rejected, never quarantined later
    assert len(line) <= len(value) - 1
    assert line_parser("server0", "Asia/Seoul", len(value) - 1)(line) == (None, "too_large:record", None)
