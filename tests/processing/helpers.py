"""Helpers of the processing tests (plain functions, imported): event builders, topics, job runners, PostgreSQL
rows. The `spark` fixture is in tests/conftest.py."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from gold import marts
from gold.database import connect_loader, delete_dates
from messaging import contract
from processing import live_sink


def make_event(session: str, document: int, ts: datetime, *, created_ms: int = 1420113600000,
               areas: str = ",Oncology,Surgery", keywords: str = "breast cancer", title: str = "T",
               event_date: str | None = None, server: str = "server0") -> dict:
    """A valid wire record built with the contract (dedup_key, event_ts spelling)."""
    event_ts = contract.format_event_ts(ts)
    return {
        "DateCreated": f"/Date({created_ms})/", "SessionId": session, "DocumentId": document,
        "Url": f"https://example.org/{document}", "Title": title, "DOI": "", "ClinicalAreas": areas,
        "Keywords": keywords, "Documents": [str(document)], "event_ts": event_ts,
        "event_date": event_date or ts.date().isoformat(),
        "dedup_key": contract.dedup_key(session, document, event_ts), "source_server": server,
    }


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def encode(record: dict) -> bytes:
    return orjson.dumps(record)


def new_topic(settings, prefix: str) -> str:
    """A fresh topic with the production layout (3 partitions, RF 3), unique per call."""
    import uuid

    from messaging.topics import TopicSpec, admin_client, ensure_topic

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    ensure_topic(admin_client(settings), TopicSpec(name))
    return name


def delete_topic(settings, topic: str) -> None:
    from messaging.topics import admin_client

    admin = admin_client(settings)  # must outlive the futures
    for future in admin.delete_topics([topic], request_timeout=30).values():
        future.result()


def produce(settings, topic: str, values: list[bytes]) -> None:
    """Send values in order with an idempotent producer, keyed by position; raise on any failure."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_brokers, "enable.idempotence": True,
                         "linger.ms": 20})
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(err)

    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value=value, key=str(i % 97).encode(), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures[:3]


def produce_paced(settings, topic: str, values: list[bytes], seconds: float, chunks: int = 20) -> None:
    """Produce values in `chunks` equal slices spread over `seconds` (a producer replaying in real time)."""
    import time

    size = max(1, -(-len(values) // chunks))
    for start in range(0, len(values), size):
        produce(settings, topic, values[start:start + size])
        time.sleep(seconds / chunks)


def produce_keyed(settings, topic: str, items: list[tuple[str, bytes]]) -> None:
    """Send (key, value) pairs in order (e.g. producer manifests); raise on any failure."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_brokers, "enable.idempotence": True})
    failures = []
    for key, value in items:
        producer.produce(topic, key=key.encode(), value=value,
                         on_delivery=lambda err, _msg: failures.append(err) if err is not None else None)
    assert producer.flush(60) == 0 and not failures, failures[:3]


def job_env(settings, lake_root: str, topic: str, **extra: str) -> dict[str, str]:
    import os

    return {**os.environ, "LAKE_ROOT": lake_root, "KAFKA_TOPIC": topic, "PYTHONUNBUFFERED": "1", **extra}


def run_in_process(job: str, args: list[str], env: dict[str, str]) -> int:
    """Run a job's main() in this process (sharing the test SparkSession: no JVM start per job)."""
    import importlib

    module = importlib.import_module(f"processing.spark.jobs.{job}")
    with pytest.MonkeyPatch.context() as patch:
        for key in ("LAKE_ROOT", "KAFKA_TOPIC", "KAFKA_MANIFEST_TOPIC", "SPARK_MASTER", "S3_ENDPOINT"):
            if key in env:
                patch.setenv(key, env[key])
        return module.main(args)


def delete_day(settings, day) -> None:
    """Remove a test date's rows from every mart in PostgreSQL, and its live rows (a stream run that stopped
    before its load leaves them; they would show on TripClick Live). Also the next date's live rows: a test day
    (scenario.build_day) carries a few clicks of the next date, which the stream counts live under that date.
    And the date's gold.pipeline_runs rows, which its jobs wrote (they would show on Pipeline health)."""
    with connect_loader(settings) as conn, conn.cursor() as cur:
        delete_dates(cur, [day])
        for live_day in (day, day + timedelta(days=1)):
            live_sink.discard_date(cur, live_day)
        cur.execute("SELECT to_regclass('gold.pipeline_runs') IS NOT NULL")  # absent until `make up` applies 40_
        if cur.fetchone()[0]:
            cur.execute("DELETE FROM gold.pipeline_runs WHERE event_date = %s", (day,))
    conn.close()


def pipeline_runs(settings, day) -> dict[str, tuple]:
    """Step -> (success, rows, seconds, finished_at) of gold.pipeline_runs for a date (what report_date wrote)."""
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT step, success, rows, seconds, finished_at FROM gold.pipeline_runs WHERE event_date = %s",
                    (day,))
        rows = {step: tuple(rest) for step, *rest in cur.fetchall()}
    conn.close()
    return rows


def postgres_rows(settings, day) -> dict[str, list[tuple]]:
    """Every mart's rows of a date, ordered by the mart's key columns (date, then the first key)."""
    with connect_loader(settings) as conn, conn.cursor() as cur:
        rows = {}
        for mart in marts.MARTS:
            cur.execute(f"SELECT * FROM {mart.table} WHERE event_date = %s ORDER BY 1, 2", (day,))
            rows[mart.name] = cur.fetchall()
    conn.close()
    return rows


def stage_day(settings, lake_root: str, tag: str, day, events: int, seed: int):
    """A small scenario day and its producer manifests on two fresh topics; returns (scenario, env, topics).
    The date's PostgreSQL rows are deleted first."""
    from tests.processing.scenario import build_day, manifests

    topic, manifest_topic = new_topic(settings, tag), new_topic(settings, f"{tag}-manifests")
    scenario = build_day(day, events, seed=seed)
    produce(settings, topic, [v for phase in scenario.phases for v in phase] + scenario.late)
    produce_keyed(settings, manifest_topic, manifests(scenario))
    delete_day(settings, day)
    return scenario, job_env(settings, lake_root, topic, KAFKA_MANIFEST_TOPIC=manifest_topic), [topic, manifest_topic]


def lake_copy(built: dict, tmp_path) -> tuple[dict[str, str], str]:
    """A private copy of a built lake to break: (job env pointing at it, its root)."""
    import shutil

    root = str(tmp_path / "lake")
    shutil.copytree(built["root"], root)
    return {**built["env"], "LAKE_ROOT": root}, root


def republish(spark, root: str, layer: str, day, change) -> None:
    """Replace a published partition of `layer` by `change(its rows)`."""
    from processing import lake, lake_io

    path = lake.partition(root, layer, day)
    frame = lake_io.read_partition(spark, path).localCheckpoint()  # materialised: we overwrite its source
    lake_io.replace_partition(change(frame), path)


def check_staged_publication(spark, root: str) -> None:
    """Several dates written once (lake_io.stage_dates) and published one by one, on the lake at `root`: each date
    reads back exactly its rows; a date the stage holds no row of is published empty; a republication replaces."""
    from datetime import date

    from processing import lake, lake_io

    days = [date(2031, 4, 1), date(2031, 4, 2), date(2031, 4, 3)]
    frame = spark.createDataFrame([(days[0], 1, "a"), (days[0], 2, "b"), (days[2], 3, "c")],
                                  "event_date date, n int, s string").repartition(3, "event_date")
    for attempt in (1, 2):
        folder = f"{root}/_staging/test_{attempt}"
        staged = lake_io.stage_dates(frame, folder)
        assert staged == {"2031-04-01": 2, "2031-04-03": 1}
        for day in days:
            lake_io.publish_staged(frame, folder, day, staged.get(day.isoformat(), 0),
                                   lake.partition(root, "silver", day))
        published = [sorted(tuple(r) for r in lake_io.read_partition(
            spark, lake.partition(root, "silver", day)).collect()) for day in days]
        assert published == [[(1, "a"), (2, "b")], [], [(3, "c")]], attempt
        lake_io.delete_path(spark, folder)
