"""The producer CLI against the real local 3-broker cluster (each test on its own topics)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infrastructure.settings import REPO_ROOT, Settings
from ingestion import generate as gen
from messaging import contract
from messaging.topics import TopicSpec, admin_client, ensure_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(platform: Settings):
    """A fresh event topic and DLQ topic (3 partitions, RF 3), deleted afterwards."""
    name = f"test_ingestion_{uuid.uuid4().hex[:10]}"
    admin = admin_client(platform)
    for topic in (name, f"{name}_dlq"):
        ensure_topic(admin, TopicSpec(topic))
    yield name, f"{name}_dlq"
    for future in admin.delete_topics([name, f"{name}_dlq"], request_timeout=30).values():
        future.result()  # wait: an unsent request would leave the topics behind


@pytest.fixture(scope="module")
def day_file(tmp_path_factory) -> Path:
    """A prepared server0 file: 3,000 generated clicks spread over 15:00-16:00 Seoul of 2026-04-07."""
    out = tmp_path_factory.mktemp("prepared")
    assert gen.main(["--days", "1", "--start", "2026-04-07", "--events-per-day", "6000", "--seed", "11",
                     "--out", str(out), "--prepared"]) == 0
    return out / "server0" / "date=2026-04-07" / "events.json"


def start_producer(settings: Settings, topics: tuple[str, str], run_dir: Path, path: Path, mode: str,
                   speed: float = 1.0) -> subprocess.Popen:
    env = {**os.environ, "KAFKA_BROKERS": settings.kafka_brokers, "KAFKA_TOPIC": topics[0],
           "KAFKA_DLQ_TOPIC": topics[1], "RUN_DIR": str(run_dir)}
    command = [sys.executable, "-m", "ingestion.producer", "--file", str(path), "--server", "server0",
               "--mode", mode, "--speed", str(speed)]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, dict]:
    out, err = process.communicate(timeout=timeout)
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()[-2000:]
    return process.returncode, orjson.loads(lines[-1])


def consume_all(settings: Settings, topic: str) -> list:
    """Every message of `topic` up to the current end offsets, partition by partition."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages, deadline = [], time.monotonic() + 60
        while len(messages) < sum(ends.values()) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                messages.append(message)
        assert len(messages) == sum(ends.values()), "topic not fully read back"
        return messages
    finally:
        consumer.close()


def test_batch_sends_every_record_once_keyed_by_session_with_its_dedup_key(platform, topics, day_file, tmp_path):
    expected = [orjson.loads(line) for line in day_file.read_bytes().splitlines()]
    code, summary = finish(start_producer(platform, topics, tmp_path, day_file, "batch"))
    assert code == 0
    assert (summary["read"], summary["sent"], summary["acked"], summary["failed"], summary["rejected"]) == (
        len(expected), len(expected), len(expected), 0, 0)
    messages = consume_all(platform, topics[0])
    assert len(messages) == len(expected)
    partitions_of_session: dict[str, set[int]] = {}
    stamps_in_partition: dict[tuple[int, str], list[str]] = {}
    for message in messages:
        record = orjson.loads(message.value())
        assert contract.validate(record) is None
        assert message.key().decode() == record["SessionId"]
        assert record["dedup_key"] == contract.dedup_key(record["SessionId"], record["DocumentId"], record["event_ts"])
        assert record["source_server"] == "server0"
        partitions_of_session.setdefault(record["SessionId"], set()).add(message.partition())
        stamps_in_partition.setdefault((message.partition(), record["SessionId"]), []).append(record["event_ts"])
    assert all(len(p) == 1 for p in partitions_of_session.values())
    assert all(stamps == sorted(stamps) for stamps in stamps_in_partition.values())  # a session stays in order
    assert sorted(orjson.loads(m.value())["dedup_key"] for m in messages) == sorted(
        contract.dedup_key(r["SessionId"], r["DocumentId"], r["event_ts"]) for r in expected)


def test_realtime_keeps_the_relative_spacing_at_high_speed(platform, topics, day_file, tmp_path):
    speed = 900.0  # the hour of the file replays in 4 s
    code, summary = finish(start_producer(platform, topics, tmp_path, day_file, "realtime", speed))
    assert code == 0 and summary["failed"] == 0
    messages = consume_all(platform, topics[0])
    assert len(messages) == summary["acked"] == summary["read"]
    moments = sorted((contract.parse_event_ts(orjson.loads(m.value())["event_ts"]).timestamp(),
                      m.timestamp()[1] / 1000) for m in messages)
    first_event, first_sent = moments[0]
    drift = [abs((sent - first_sent) - (event - first_event) / speed) for event, sent in moments]
    # The median shows the pacing precision; the max only bounds scheduling stalls on a busy 2-core box.
    assert sorted(drift)[len(drift) // 2] < 0.05, f"median drift {sorted(drift)[len(drift) // 2]:.3f} s"
    assert max(drift) < 0.5, f"max drift {max(drift):.3f} s"
    span = (moments[-1][0] - first_event) / speed
    assert span > 3.0 and summary["elapsed_s"] >= span  # it really waited, it did not send as a batch
    assert "lateness_p99_ms" in summary  # figures belong to make bench-ingestion


def test_malformed_lines_reach_the_dead_letter_file_and_topic_with_reasons(platform, topics, day_file, tmp_path):
    good = day_file.read_bytes().splitlines()[:200]
    bad = {  # line number (1-based, in the file written below) -> (line, reason)
        3: (good[0][:40], "invalid_json"),
        50: (good[1].replace(b'"Title":"', b'"Title":"\xff', 1), "not_utf8"),
        51: (orjson.dumps({k: v for k, v in orjson.loads(good[2]).items() if k != "event_ts"}),
             "missing_field:event_ts"),
        120: (orjson.dumps({**orjson.loads(good[3]), "event_date": "07.04.2026"}), "wrong_type:event_date"),
        121: (orjson.dumps({**orjson.loads(good[4]), "DocumentId": "4"}), "wrong_type:DocumentId"),
    }
    lines = list(good)
    for number in sorted(bad):
        lines.insert(number - 1, bad[number][0])
    path = tmp_path / "server0" / "date=2026-04-07" / "events.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, summary = finish(start_producer(platform, topics, tmp_path, path, "batch"))
    assert code == 0
    assert (summary["read"], summary["acked"], summary["rejected"], summary["dlq_sent"], summary["dlq_failed"]) == (
        205, 200, 5, 5, 0)
    dlq = consume_all(platform, topics[1])
    seen = {int(dict(m.headers())["line"]): (m.value(), dict(m.headers())["reason"].decode()) for m in dlq}
    assert seen == bad
    dlq_file = tmp_path / "ingestion" / "dlq" / "server0_2026-04-07.jsonl"
    entries = [orjson.loads(line) for line in dlq_file.read_bytes().splitlines()]
    assert [(e["line"], e["reason"]) for e in entries] == [(n, bad[n][1]) for n in sorted(bad)]
    assert len(consume_all(platform, topics[0])) == 200


def test_sigterm_mid_run_flushes_and_every_acked_record_is_in_kafka(platform, topics, day_file, tmp_path):
    process = start_producer(platform, topics, tmp_path, day_file, "realtime", speed=300.0)  # ~12 s of replay
    time.sleep(4)
    assert process.poll() is None, "finished before the signal"
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code, summary = finish(process, timeout=60)
    assert time.monotonic() - started < 15
    assert code == 0 and summary["interrupted"] == "SIGTERM"
    assert summary["read"] == summary["acked"] + summary["failed"] + summary["rejected"] + summary["not_sent"]
    total = len(day_file.read_bytes().splitlines())
    assert 0 < summary["acked"] < total
    in_kafka = {orjson.loads(m.value())["dedup_key"] for m in consume_all(platform, topics[0])}
    first_sent = [orjson.loads(line) for line in day_file.read_bytes().splitlines()[:summary["sent"]]]
    assert in_kafka == {contract.dedup_key(r["SessionId"], r["DocumentId"], r["event_ts"]) for r in first_sent}
    assert len(in_kafka) == summary["acked"]
