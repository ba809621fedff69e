"""The streaming job's progress as `tripclick_stream_*` metrics, pushed after every micro-batch.

Spark keeps its Kafka offsets in the checkpoint, not in a consumer group, so no group-lag exporter can see how
far the query is behind: the lag here is, per micro-batch, the topic's latest offsets (what Spark saw available)
minus the offsets the batch ended at, summed over partitions. The pure parts (`lag_messages`, `progress_values`)
take the progress JSON Spark reports, so unit tests run them without a JVM.
"""
from __future__ import annotations

import json
import time

from pyspark.sql.streaming import StreamingQueryListener

from monitoring import metrics


def _offsets(value: dict | str | None) -> dict:
    """A Kafka source's offsets, {"topic": {"0": 12, ...}}: embedded in the progress JSON, or as a JSON string
    (the Python progress object's fields); a file source's {"logOffset": N} has no partitions and counts 0."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def lag_messages(sources: list[dict]) -> int:
    """Messages available in Kafka beyond the batch's end offsets, over every Kafka source and partition."""
    total = 0
    for source in sources:
        latest, end = _offsets(source.get("latestOffset")), _offsets(source.get("endOffset"))
        for topic, partitions in latest.items():
            if isinstance(partitions, dict):
                total += sum(max(0, int(offset) - int(end.get(topic, {}).get(p, offset)))
                             for p, offset in partitions.items())
    return total


def progress_values(progress: dict, now: float, rows_before: float = 0.0) -> dict[str, float]:
    """Catalogue suffix -> value for one progress report (StreamingQueryProgress.json parsed); `rows_before` is
    what the query's earlier micro-batches read, so `rows_total` only grows while the query runs."""
    return {
        "rows_total": rows_before + float(progress.get("numInputRows") or 0),
        "input_rows_per_second": float(progress.get("inputRowsPerSecond") or 0.0),
        "processed_rows_per_second": float(progress.get("processedRowsPerSecond") or 0.0),
        "batch_duration_seconds": (progress.get("durationMs") or {}).get("triggerExecution", 0) / 1000.0,
        "state_rows": float(sum(op.get("numRowsTotal", 0) for op in progress.get("stateOperators") or [])),
        "lag_messages": float(lag_messages(progress.get("sources") or [])),
        "last_progress_timestamp_seconds": now,
        "running": 1.0,
    }


class MetricsListener(StreamingQueryListener):
    """Registered with spark.streams.addListener by the streaming job; named queries only."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        # A rate pushed per micro-batch is overwritten by the next idle one before a scrape may see it; the
        # cumulative count is what survives between scrapes.
        self.rows: dict[str, float] = {}

    def onQueryStarted(self, event) -> None:  # noqa: N802 (Spark's names)
        if event.name:
            self.names[str(event.id)] = event.name
            metrics.push("stream", {"query": event.name},
                         {"running": 1.0, "last_progress_timestamp_seconds": time.time()})

    def onQueryProgress(self, event) -> None:  # noqa: N802
        progress = json.loads(event.progress.json)
        name = progress.get("name")
        if name:
            values = progress_values(progress, time.time(), self.rows.get(name, 0.0))
            self.rows[name] = values["rows_total"]
            metrics.push("stream", {"query": name}, values)

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        name = self.names.pop(str(event.id), None)
        if name:
            self.rows.pop(name, None)
            metrics.delete("stream", {"query": name})

    def close(self) -> None:
        """At the job's end: remove the groups whose termination event has not been delivered (the driver may
        exit first), so a finished stream never looks stalled."""
        for name in set(self.names.values()):
            metrics.delete("stream", {"query": name})
        self.names.clear()
        self.rows.clear()
