"""Warming the streaming job's JVM up before its queries start, on synthetic clicks (no I/O but Spark's).

A fresh JVM runs Spark's generated code interpreted until HotSpot has compiled it, so the stream's first
micro-batches took 12.7-17 s against 3-4 s later (BENCHMARKS.md, "warm-up"). Running the job's own
transformations on synthetic clicks into Spark's `noop` sink before the queries start compiles that code
while no real click waits; the DAG starts the producers only once the stream says it is ready
(processing/stream_ready.py).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import orjson

from messaging import contract
from processing import live, transforms

# A date no other part of the pipeline uses: nothing of the warm-up is written anywhere.
SYNTHETIC_DAY = date(2031, 6, 4)
SYNTHETIC_DOCUMENT = 900_000_000
AREAS = (",Oncology", ",Cardiology,Oncology", ",Primary care", "", ",Surgery, Paediatrics")
PASSES = 2  # measured: the second pass still sped up the first real batches; a third did not


def synthetic_clicks(day: date, document: int, title: str, size: int, total: int, offset: int) -> Iterator[bytes]:
    """`size` valid wire messages of `day` on one document, numbered from `offset` of `total`, with
    event_ts spread evenly over 15:00-16:00 Asia/Seoul (06:00-07:00 UTC)."""
    start = datetime(day.year, day.month, day.day, 6, tzinfo=timezone.utc)
    for n in range(offset, offset + size):
        session = f"live-{n // 5}"
        event_ts = contract.format_event_ts(start + timedelta(milliseconds=n * 3_600_000 / max(total, 1)))
        yield orjson.dumps({
            "DateCreated": f"/Date({1420070400000 + n * 997 % 86_400_000})/", "SessionId": session,
            "DocumentId": document, "Url": f"https://www.tripdatabase.com/doc/{document}", "Title": title,
            "DOI": "", "ClinicalAreas": AREAS[n % len(AREAS)], "Keywords": "synthetic", "Documents": [],
            "event_ts": event_ts, "event_date": day.isoformat(),
            "dedup_key": contract.dedup_key(session, document, event_ts),
            "source_server": contract.SOURCE_SERVERS[n % 2],
        })


def warm_up(spark, pipeline_tz: str, watermark: str, rows: int) -> float:
    """Run the stream's transformations (parse, dedup, quarantine, live aggregates) PASSES times on `rows`
    synthetic Kafka rows; returns the seconds it took."""
    started = time.monotonic()
    values = synthetic_clicks(SYNTHETIC_DAY, SYNTHETIC_DOCUMENT, "Warm-up", rows, rows, 0)
    stamp = datetime(SYNTHETIC_DAY.year, SYNTHETIC_DAY.month, SYNTHETIC_DAY.day, 6, tzinfo=timezone.utc)
    kafka_rows = [(None, value, "warm-up", n % 3, n, stamp) for n, value in enumerate(values)]
    frame = spark.createDataFrame(kafka_rows, "key binary, value binary, topic string, partition int, "
                                              "offset long, timestamp timestamp").repartition(2).cache()
    try:
        frame.count()
        for _ in range(PASSES):
            parsed = transforms.parse_events(transforms.bronze_rows(frame, pipeline_tz))
            events = transforms.valid_events(parsed)
            transforms.stream_dedup(events, watermark).write.format("noop").mode("overwrite").save()
            transforms.quarantined(parsed).write.format("noop").mode("overwrite").save()
            events = events.cache()
            for table, build in live.BUILDERS.items():
                live.for_postgres(build(events), table).collect()
            events.unpersist()
    finally:
        frame.unpersist()
    return time.monotonic() - started
