"""Producer manifests as reconcile reads them: completeness of a date from the source.

Each producer run publishes one manifest to the compacted topic KAFKA_MANIFEST_TOPIC (default
tripclick_producer_manifests), key "<event_date>|<server>", JSON value (event_date, server, file, mode,
run_id, started_at, finished_at, lines_read, blank_lines, sent, acknowledged, dead_lettered,
delivery_failed, rejected_by_reason, complete, exit_code). The latest message per key wins.
The schema, its parser and the balance rule belong to messaging.manifest.
"""
from __future__ import annotations

import os
import time

from messaging.manifest import manifest_balanced as balanced
from messaging.manifest import manifest_key as producer_key
from messaging.manifest import parse_manifest as parse

DEFAULT_TOPIC = "tripclick_producer_manifests"


def manifest_topic(settings, override: str | None = None) -> str:
    return (override or getattr(settings, "kafka_manifest_topic", None)
            or os.environ.get("KAFKA_MANIFEST_TOPIC") or DEFAULT_TOPIC)


def manifest_key(day, server: str) -> str:
    """The producer's key of (day, server), as text: read_latest's keys."""
    return producer_key(day.isoformat(), server).decode()


# ---- pure checks

def manifest_checks(day, servers, manifests: dict[str, bytes | None],
                    bronze_by_server: dict[str, int]) -> list[tuple[str, bool, str]]:
    """(stable check name, ok, detail) per server: the manifest exists and is complete; it is balanced;
    acknowledged <= Bronze rows of the date whose source_server is that server (Bronze may hold more:
    replays and duplicates are kept there)."""
    results = []
    for server in servers:
        raw = manifests.get(manifest_key(day, server))
        bronze = bronze_by_server.get(server, 0)
        if raw is None:
            detail = f"no manifest for key {manifest_key(day, server)}"
            results += [(f"manifest_complete:{server}", False, detail),
                        (f"manifest_balanced:{server}", False, detail),
                        (f"acknowledged_le_bronze:{server}", False, detail)]
            continue
        try:
            m = parse(raw)
            complete = m.get("complete") is True
            ok_balanced = balanced(m)
            acknowledged = int(m["acknowledged"])
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"unreadable manifest: {type(exc).__name__}: {exc}"
            results += [(f"manifest_complete:{server}", False, detail),
                        (f"manifest_balanced:{server}", False, detail),
                        (f"acknowledged_le_bronze:{server}", False, detail)]
            continue
        results.append((f"manifest_complete:{server}", complete,
                        f"complete={m.get('complete')} exit_code={m.get('exit_code')} run_id={m.get('run_id')}"))
        results.append((f"manifest_balanced:{server}", ok_balanced,
                        " ".join(f"{k}={m.get(k)}" for k in ("lines_read", "acknowledged", "dead_lettered",
                                                              "blank_lines", "delivery_failed", "not_sent")
                                 if k in m)))
        results.append((f"acknowledged_le_bronze:{server}", acknowledged <= bronze,
                        f"acknowledged={acknowledged} bronze_rows={bronze}"))
    return results


# ---- Kafka

def read_latest(settings, topic: str, timeout: float = 60.0) -> dict[str, bytes | None]:
    """Every key of the topic with its latest value (None = tombstone), read up to the end offsets of now."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": "tripclick-reconcile-manifests",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(topic, timeout=15).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        assignment, ends = [], {}
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            if high > low:
                assignment.append(TopicPartition(topic, p, low))
                ends[p] = high
        latest: dict[str, bytes | None] = {}
        if not assignment:
            return latest
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading manifest topic {topic} timed out; partitions left {sorted(ends)}")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    ends.pop(msg.partition(), None)
                    continue
                raise RuntimeError(f"reading manifest topic {topic}: {msg.error()}")
            if msg.key() is not None:
                latest[msg.key().decode("utf-8", "replace")] = msg.value()
            if msg.partition() in ends and msg.offset() >= ends[msg.partition()] - 1:
                ends.pop(msg.partition())
        return latest
    finally:
        consumer.close()
