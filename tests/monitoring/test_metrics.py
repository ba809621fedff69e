"""The metric catalogue and the streaming listener's pure parts, on exact inputs."""
from __future__ import annotations

import json

import pytest

from infrastructure.settings import REPO_ROOT
from monitoring import metrics
from monitoring.stream_listener import lag_messages, progress_values

pytestmark = pytest.mark.unit


def test_the_readme_table_is_the_catalogue():
    assert metrics.markdown_table() in (REPO_ROOT / "monitoring" / "README.md").read_text()
    assert all(name.startswith("tripclick_") for name in metrics.CATALOGUE)


def test_lag_is_latest_minus_end_over_every_partition():
    sources = [{"endOffset": json.dumps({"raw": {"0": 10, "1": 5, "2": 7}}),
                "latestOffset": json.dumps({"raw": {"0": 15, "1": 5, "2": 9}})},
               {"endOffset": None, "latestOffset": None},  # a file source reports no offsets
               # no readable end offsets: no lag claimed for it
               {"endOffset": "not json", "latestOffset": json.dumps({"other": {"0": 3}})}]
    assert lag_messages(sources) == 5 + 0 + 2


def test_progress_values_from_a_progress_report():
    progress = {"name": "silver_stream", "numInputRows": 180, "inputRowsPerSecond": 120.5,
                "processedRowsPerSecond": 300.0,
                "durationMs": {"triggerExecution": 1500}, "stateOperators": [{"numRowsTotal": 40}, {"numRowsTotal": 2}],
                # as StreamingQueryProgress.json embeds them: objects, not strings
                "sources": [{"endOffset": {"t": {"0": 1}}, "latestOffset": {"t": {"0": 4}}},
                            {"endOffset": {"logOffset": 3}, "latestOffset": {"logOffset": 3}}]}
    assert progress_values(progress, 1000.0, rows_before=20.0) == {
        "rows_total": 200.0, "input_rows_per_second": 120.5, "processed_rows_per_second": 300.0,
        "batch_duration_seconds": 1.5,
        "state_rows": 42.0, "lag_messages": 3.0, "last_progress_timestamp_seconds": 1000.0, "running": 1.0}
    idle = progress_values({"name": "idle"}, 5.0, rows_before=7.0)
    assert (idle["batch_duration_seconds"], idle["rows_total"]) == (0.0, 7.0)


def test_no_url_pushes_nothing_and_an_unreachable_one_does_not_raise(monkeypatch):
    monkeypatch.setenv("PUSHGATEWAY_URL", "")
    assert metrics.push("job", {"step": "etl_to_gold", "date": "2026-01-01"}, {"rows": 1}) is False
    monkeypatch.setenv("PUSHGATEWAY_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    assert metrics.push("job", {"step": "etl_to_gold", "date": "2026-01-01"}, {"rows": 1}) is False
    with pytest.raises(KeyError):
        metrics.push("job", {"step": "x", "date": "d"}, {"not_in_catalogue": 1})
