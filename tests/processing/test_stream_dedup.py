"""transforms.stream_dedup as a real streaming query (file source -> memory sink), micro-batch by micro-batch."""
from __future__ import annotations

import json
import os

import pytest

from processing import transforms

pytestmark = pytest.mark.unit
SCHEMA = "dedup_key string, event_ts timestamp, n int"


def drop_file(folder, name: str, rows: list[tuple[str, str, int]]) -> None:
    """Write a JSON-lines file next to the watched folder, then move it in (the source never sees half)."""
    temp = folder.parent / f".{name}"
    temp.write_text("".join(json.dumps({"dedup_key": k, "event_ts": ts, "n": n}) + "\n" for k, ts, n in rows))
    os.replace(temp, folder / name)


def test_duplicates_within_and_across_batches_once_and_late_events_dropped(spark, tmp_path):
    watched = tmp_path / "in"
    watched.mkdir()
    source = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(watched))
    query = (transforms.stream_dedup(source, "10 minutes").writeStream.format("memory").queryName("dedup_unit")
             .option("checkpointLocation", str(tmp_path / "checkpoint")).outputMode("append").start())
    try:
        drop_file(watched, "1.json", [("k1", "2031-03-01T06:00:00Z", 1), ("k1", "2031-03-01T06:00:00Z", 2),
                                      ("k2", "2031-03-01T06:05:00Z", 3), ("k3", "2031-03-01T07:00:00Z", 4)])
        query.processAllAvailable()
        first = sorted(r.dedup_key for r in spark.table("dedup_unit").collect())
        # watermark now 07:00 - 10 min = 06:50
        drop_file(watched, "2.json", [("k3", "2031-03-01T07:00:00Z", 5),   # duplicate, still in state
                                      ("k4", "2031-03-01T06:55:00Z", 6),   # new, within the watermark
                                      ("k5", "2031-03-01T06:00:00Z", 7)])  # new but late: dropped
        query.processAllAvailable()
        rows = sorted((r.dedup_key, r.n) for r in spark.table("dedup_unit").collect())
    finally:
        query.stop()
    assert first == ["k1", "k2", "k3"]
    assert [k for k, _ in rows] == ["k1", "k2", "k3", "k4"]
    assert ("k3", 4) in rows  # the first copy of k3 stays, the second batch's copy was a duplicate
