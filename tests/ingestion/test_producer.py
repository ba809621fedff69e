"""The producer CLI against the real local 3-broker cluster (each test on its own topics)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import gzip

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource

from infrastructure.settings import REPO_ROOT, Settings
from ingestion import generate as gen
from ingestion import producer as prod
from messaging import contract
from messaging import manifest as mf
from messaging.topics import TopicSpec, admin_client, ensure_topic, manifest_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(platform: Settings):
    """A fresh event topic, DLQ topic and (compacted) manifest topic (3 partitions, RF 3), deleted afterwards."""
    name = f"test_ingestion_{uuid.uuid4().hex[:10]}"
    admin = admin_client(platform)
    names = (name, f"{name}_dlq", f"{name}_manifests")
    for topic in names[:2]:
        ensure_topic(admin, TopicSpec(topic))
    ensure_topic(admin, TopicSpec(names[2], cleanup_policy="compact"))
    yield names
    for future in admin.delete_topics(list(names), request_timeout=30).values():
        future.result()  # wait: an unsent request would leave the topics behind


@pytest.fixture(scope="module")
def day_file(tmp_path_factory) -> Path:
    """A prepared server0 file: 3,000 generated clicks spread over 15:00-16:00 Seoul of 2026-04-07."""
    out = tmp_path_factory.mktemp("prepared")
    assert gen.main(["--days", "1", "--start", "2026-04-07", "--events-per-day", "6000", "--seed", "11",
                     "--out", str(out), "--prepared"]) == 0
    return out / "server0" / "date=2026-04-07" / "events.json"


def start_producer(settings: Settings, topics: tuple[str, ...], run_dir: Path, path: Path, mode: str,
                   speed: float = 1.0, **extra_env: str) -> subprocess.Popen:
    env = {**os.environ, "KAFKA_BROKERS": settings.kafka_brokers, "KAFKA_TOPIC": topics[0],
           "KAFKA_DLQ_TOPIC": topics[1], "KAFKA_MANIFEST_TOPIC": topics[2], "RUN_DIR": str(run_dir),
           "PIPELINE_TZ": "Asia/Seoul", **extra_env}
    command = [sys.executable, "-m", "ingestion.producer", "--file", str(path), "--server", "server0",
               "--mode", mode, "--speed", str(speed)]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, dict]:
    code, summary, _ = finish_with_log(process, timeout)
    return code, summary


def finish_with_log(process: subprocess.Popen, timeout: float = 120) -> tuple[int, dict, str]:
    out, err = process.communicate(timeout=timeout)
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()[-2000:]
    return process.returncode, orjson.loads(lines[-1]), err.decode()


def the_manifest(settings: Settings, topics: tuple[str, ...]) -> tuple[bytes, dict]:
    """The one manifest message of the test's run: (key, parsed value), checked against the schema."""
    messages = consume_all(settings, topics[2])
    assert len(messages) == 1
    return messages[0].key(), mf.parse_manifest(messages[0].value())


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
    code, summary, log = finish_with_log(process, timeout=60)
    assert time.monotonic() - started < 15
    assert code == prod.EXIT_INTERRUPTED and summary["interrupted"] == "SIGTERM"
    assert "producer: FAILED (3) stopped by SIGTERM" in log
    assert summary["read"] == summary["acked"] + summary["failed"] + summary["rejected"] + summary["not_sent"]
    key, manifest = the_manifest(platform, topics)
    assert key == b"2026-04-07|server0"
    assert manifest["complete"] is False and manifest["exit_code"] == prod.EXIT_INTERRUPTED
    assert mf.manifest_balanced(manifest) and manifest["acknowledged"] == summary["acked"]
    assert manifest["lines_read"] == summary["read"] < len(day_file.read_bytes().splitlines())
    total = len(day_file.read_bytes().splitlines())
    assert 0 < summary["acked"] < total
    in_kafka = {orjson.loads(m.value())["dedup_key"] for m in consume_all(platform, topics[0])}
    first_sent = [orjson.loads(line) for line in day_file.read_bytes().splitlines()[:summary["sent"]]]
    assert in_kafka == {contract.dedup_key(r["SessionId"], r["DocumentId"], r["event_ts"]) for r in first_sent}
    assert len(in_kafka) == summary["acked"]


def write_day(tmp_path: Path, lines: list[bytes], ending: bytes = b"\n") -> Path:
    path = tmp_path / "server0" / "date=2026-04-07" / "events.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ending.join(lines) + (ending if lines else b""))
    return path


def test_every_bad_input_kind_is_dead_lettered_with_its_reason_and_the_day_completes(platform, topics, day_file,
                                                                                      tmp_path):
    good = day_file.read_bytes().splitlines()[:200]
    record = orjson.loads(good[0])
    bad = {  # line number -> (line, reason); a line above the broker's 1 MB message limit included
        5: (orjson.dumps({**record, "Title": "Doc\x00one"}), "control_char:Title"),
        20: (orjson.dumps({**record, "Title": "x" * 70_000}), "too_large:record"),
        21: (orjson.dumps({**record, "Title": "y" * 1_200_000}), "too_large:record"),
        60: (orjson.dumps({**record, "DocumentId": 0}), "not_positive:DocumentId"),
        61: (orjson.dumps({**record, "SessionId": "   "}), "blank:SessionId"),
        100: (orjson.dumps({**record, "event_date": "2026-04-08"}), "inconsistent:event_date"),
        150: (orjson.dumps({**record, "Documents": [{"id": 1}]}), "non_scalar:Documents"),
    }
    blank = {30: b"", 31: b"   \r"}
    lines = list(good)
    lines[0] = prod.BOM + lines[0]  # a UTF-8 byte order mark on the first line is stripped
    lines[1] = lines[1] + b"\r"  # CRLF
    for number in sorted({**bad, **blank}):
        lines.insert(number - 1, bad[number][0] if number in bad else blank[number])
    path = write_day(tmp_path, lines)
    code, summary, log = finish_with_log(start_producer(platform, topics, tmp_path, path, "batch"))
    assert code == 0, log[-3000:]
    assert (summary["read"], summary["acked"], summary["rejected"], summary["blank"], summary["failed"],
            summary["dlq_sent"], summary["dlq_failed"]) == (209, 200, 7, 2, 0, 7, 0)
    # dead-letter file: every bad line, whole, with its reason
    entries = [orjson.loads(line) for line in (tmp_path / "ingestion" / "dlq" / "server0_2026-04-07.jsonl")
               .read_bytes().splitlines()]
    assert [(e["line"], e["reason"]) for e in entries] == [(n, bad[n][1]) for n in sorted(bad)]
    assert [len(e["raw"]) for e in entries] == [len(bad[n][0]) for n in sorted(bad)]
    # dead-letter topic: the same lines; the oversize ones truncated to MAX_EVENT_BYTES with the original length
    dlq = {int(dict(m.headers())["line"]): m for m in consume_all(platform, topics[1])}
    assert {n: dict(m.headers())["reason"].decode() for n, m in dlq.items()} == {n: r for n, (_, r) in bad.items()}
    for number in (20, 21):
        assert len(dlq[number].value()) == contract.DEFAULT_MAX_EVENT_BYTES
        assert dict(dlq[number].headers())["truncated_from"] == str(len(bad[number][0])).encode()
    assert dlq[5].value() == bad[5][0]
    # events: the 200 good lines (BOM and CRLF ones included), valid for the contract
    events = [orjson.loads(m.value()) for m in consume_all(platform, topics[0])]
    assert len(events) == 200 and all(contract.validate(e, pipeline_tz="Asia/Seoul") is None for e in events)
    # manifest: on its topic, balanced and complete, and the same document under RUN_DIR
    key, manifest = the_manifest(platform, topics)
    assert key == b"2026-04-07|server0"
    assert {k: manifest[k] for k in ("event_date", "server", "file", "mode", "lines_read", "blank_lines", "sent",
                                     "acknowledged", "dead_lettered", "delivery_failed", "complete", "exit_code")} == {
        "event_date": "2026-04-07", "server": "server0", "file": str(path), "mode": "batch", "lines_read": 209,
        "blank_lines": 2, "sent": 200, "acknowledged": 200, "dead_lettered": 7, "delivery_failed": 0,
        "complete": True, "exit_code": 0}
    assert manifest["rejected_by_reason"] == {"blank:SessionId": 1, "control_char:Title": 1,
                                              "inconsistent:event_date": 1, "non_scalar:Documents": 1,
                                              "not_positive:DocumentId": 1, "too_large:record": 2}
    assert mf.manifest_balanced(manifest) and len(manifest["run_id"]) == 32
    assert orjson.loads((tmp_path / "ingestion" / "manifests" / "server0_2026-04-07.json").read_bytes()) == manifest
    admin = admin_client(platform)  # the real manifest topic as `make up` creates or aligns it: compacted
    assert ensure_topic(admin, manifest_topic(platform)) in ("created", "exists")
    resource = ConfigResource(ConfigResource.Type.TOPIC, platform.kafka_manifest_topic)
    assert admin.describe_configs([resource])[resource].result()["cleanup.policy"].value == "compact"


def unusable_files(good: list[bytes]) -> dict:
    """name -> (file content, expected exit code, message in the log, manifest complete, extra env)."""
    return {
        "gzip": (gzip.compress(b"\n".join(good[:50]) + b"\n"), prod.EXIT_NOTHING_ACKNOWLEDGED,
                 "is gzip-compressed (starts with 1f 8b): decompress it first", False, {}),
        "garbage": (b"".join(b"garbage %d {\n" % i for i in range(30)), prod.EXIT_NOTHING_ACKNOWLEDGED,
                    "nothing acknowledged from", True, {}),
        "blank_only": (b"\n  \n\r\n", prod.EXIT_NOTHING_ACKNOWLEDGED, "nothing acknowledged from", True, {}),
        "empty": (b"", prod.EXIT_EMPTY_FILE, "no lines in", True, {}),
        "too_many_rejects": (b"\n".join(good[:20] + [b"{oops", b"{oops"]) + b"\n", prod.EXIT_TOO_MANY_REJECTED,
                             "2 of 22 lines dead-lettered (9.09%), more than PRODUCER_MAX_REJECT_SHARE=0.05", True,
                             {"PRODUCER_MAX_REJECT_SHARE": "0.05"}),
    }


@pytest.mark.parametrize("kind", ["gzip", "garbage", "blank_only", "empty", "too_many_rejects"])
def test_an_unusable_file_fails_with_a_clear_message_and_a_manifest(platform, topics, day_file, tmp_path, kind):
    content, expected, message, complete, env = unusable_files(day_file.read_bytes().splitlines())[kind]
    path = tmp_path / "server0" / "date=2026-04-07" / "events.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    code, summary, log = finish_with_log(start_producer(platform, topics, tmp_path, path, "batch", **env))
    assert code == expected, log[-3000:]
    failure = [line for line in log.splitlines() if "producer: FAILED" in line]
    assert len(failure) == 1 and f"FAILED ({expected})" in failure[0] and message in failure[0], log[-3000:]
    key, manifest = the_manifest(platform, topics)
    assert key == b"2026-04-07|server0" and manifest["exit_code"] == expected
    assert manifest["complete"] is complete and mf.manifest_balanced(manifest)
    assert summary["exit_code"] == expected


def test_a_record_the_client_refuses_is_dead_lettered_not_failed(platform, topics, day_file, tmp_path):
    """MAX_EVENT_BYTES set above the client's 1 MB message.max.bytes: produce() refuses the 1.2 MB line, which
    goes to the dead-letter file (the DLQ topic refuses it too) instead of failing every retry."""
    good = day_file.read_bytes().splitlines()[:40]
    big = orjson.dumps({**orjson.loads(good[0]), "Title": "z" * 1_200_000})
    path = write_day(tmp_path, good[:20] + [big] + good[20:])
    code, summary, log = finish_with_log(start_producer(platform, topics, tmp_path, path, "batch",
                                                        MAX_EVENT_BYTES="2000000", PRODUCER_MAX_REJECT_SHARE="0.1"))
    assert code == 0, log[-3000:]
    assert (summary["acked"], summary["failed"], summary["rejected"], summary["dlq_failed"]) == (40, 0, 1, 1)
    assert summary["rejected_by_reason"] == {"produce_error:MSG_SIZE_TOO_LARGE": 1}
    entry = orjson.loads((tmp_path / "ingestion" / "dlq" / "server0_2026-04-07.jsonl").read_bytes())
    assert (entry["line"], entry["reason"], len(entry["raw"])) == (21, "produce_error:MSG_SIZE_TOO_LARGE", len(big))
    _, manifest = the_manifest(platform, topics)
    assert manifest["complete"] and mf.manifest_balanced(manifest) and manifest["dead_lettered"] == 1


def test_without_a_date_folder_the_manifest_takes_the_first_valid_records_date(platform, topics, day_file, tmp_path):
    path = tmp_path / "replay.json"
    path.write_bytes(b"{broken\n" + b"\n".join(day_file.read_bytes().splitlines()[:30]) + b"\n")
    code, summary, log = finish_with_log(start_producer(platform, topics, tmp_path, path, "batch",
                                                        PRODUCER_MAX_REJECT_SHARE="0.5"))
    assert code == 0, log[-3000:]
    key, manifest = the_manifest(platform, topics)
    assert key == b"2026-04-07|server0" and manifest["event_date"] == "2026-04-07"
    assert (tmp_path / "ingestion" / "manifests" / "server0_replay.json").is_file()
