"""The producer completeness manifest schema (messaging/manifest.py), shared with the reconcile."""
from __future__ import annotations

import orjson
import pytest

from messaging import manifest as m

pytestmark = pytest.mark.unit


def sample(**changes) -> dict:
    manifest = {
        "event_date": "2026-01-01", "server": "server0", "file": "ingestion/data/server0/date=2026-01-01/events.json",
        "mode": "batch", "run_id": "0123456789abcdef0123456789abcdef", "started_at": "2026-01-01T06:00:00.000Z",
        "finished_at": "2026-01-01T07:00:00.500Z", "lines_read": 110, "blank_lines": 2, "sent": 100,
        "acknowledged": 100, "dead_lettered": 8, "delivery_failed": 0,
        "rejected_by_reason": {"invalid_json": 5, "too_large:record": 3}, "complete": True, "exit_code": 5,
    }
    return {**manifest, **changes}


def test_field_list_is_exactly_the_agreed_schema():
    assert m.FIELDS == ("event_date", "server", "file", "mode", "run_id", "started_at", "finished_at", "lines_read",
                        "blank_lines", "sent", "acknowledged", "dead_lettered", "delivery_failed",
                        "rejected_by_reason", "complete", "exit_code")


def test_round_trip_and_key():
    value = m.encode_manifest(sample())
    assert list(orjson.loads(value)) == list(m.FIELDS)
    assert m.parse_manifest(value) == sample()
    assert m.manifest_key("2026-01-01", "server0") == b"2026-01-01|server0"
    assert m.parse_key(b"2026-01-01|server1") == ("2026-01-01", "server1")
    assert m.manifest_key(None, "server1") == b"|server1" and m.parse_key(b"|server1") == (None, "server1")


def test_balanced_counts():
    assert m.manifest_balanced(sample())
    assert m.not_sent(sample()) == 0
    # an interrupted run may have read lines it never sent; it is then not complete
    assert m.manifest_balanced(sample(lines_read=115, complete=False))
    assert not m.manifest_balanced(sample(lines_read=115))  # complete, yet 5 lines unaccounted
    assert not m.manifest_balanced(sample(lines_read=105))  # more accounted for than read
    assert not m.manifest_balanced(sample(acknowledged=99, delivery_failed=0))  # sent != acked + failed
    assert not m.manifest_balanced(sample(dead_lettered=7, lines_read=109))  # reasons do not sum up
    assert not m.manifest_balanced(sample(acknowledged=99, delivery_failed=1))  # complete with a failure
    assert m.manifest_balanced(sample(acknowledged=99, delivery_failed=1, complete=False))
    assert not m.manifest_balanced({"lines_read": 1})


@pytest.mark.parametrize("value, message", [
    (b"not json", "not UTF-8 JSON"),
    (b"[1]", "not a JSON object"),
    (orjson.dumps({k: v for k, v in sample().items() if k != "run_id"}), "missing \\['run_id'\\]"),
    (orjson.dumps({**sample(), "extra": 1}), "unexpected \\['extra'\\]"),
    (orjson.dumps(sample(event_date="01.01.2026")), "event_date"),
    (orjson.dumps(sample(sent="100")), "sent is not an integer"),
    (orjson.dumps(sample(complete=1)), "complete is not a boolean"),
    (orjson.dumps(sample(started_at="yesterday")), "started_at"),
    (orjson.dumps(sample(rejected_by_reason={"x": "1"})), "rejected_by_reason"),
])
def test_malformed_manifests_are_refused(value, message):
    with pytest.raises(m.ManifestError, match=message):
        m.parse_manifest(value)
    assert issubclass(m.ManifestError, ValueError)


def test_the_manifest_topic_is_a_compacted_pipeline_topic(tmp_path):
    from infrastructure.settings import load
    from messaging.topics import pipeline_topics

    settings = load({"ENV_FILE": str(tmp_path / "none")})
    specs = {spec.name: spec for spec in pipeline_topics(settings)}
    spec = specs["tripclick_producer_manifests"]
    assert (spec.partitions, spec.replication_factor, spec.min_insync_replicas) == (3, 3, 2)
    assert spec.config["cleanup.policy"] == "compact"
    assert specs["tripclick_raw_logs"].config["cleanup.policy"] == "delete"
