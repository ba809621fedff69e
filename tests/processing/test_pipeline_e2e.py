"""End to end on real Kafka, Spark and PostgreSQL: streaming (started 30 s after the producer, killed
with kill -9 and restarted), late events the stream provably drops, Bronze, exact Silver, Gold, the
lake gate, load, reconcile, and an idempotent rerun (Bronze rereads its recorded offsets)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from gold import marts
from processing import lake, lake_io
from tests.processing.helpers import (delete_day, delete_topic, job_env, new_topic, postgres_rows, produce,
                                       produce_keyed, produce_paced, run_in_process)
from tests.processing.scenario import assert_marts_match, build_day, expected_marts, manifests

pytestmark = pytest.mark.integration
DAY = date(2031, 3, 1)


def committed_batches(root: str) -> int:
    log = Path(lake.silver_stream(root)) / "_spark_metadata"
    return len([p for p in log.glob("*") if p.name.isdigit()]) if log.is_dir() else 0


def start_stream(env, log: Path, *args):
    """The streaming job in its own process group, output to a file (a full pipe would stall it)."""
    return subprocess.Popen([sys.executable, "-m", "processing.spark.jobs.streaming_to_silver", "--date",
                             DAY.isoformat(), "--trigger", "2", "--quarantine-trigger", "2", *args], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def lake_rows(spark, root: str, layer: str) -> list:
    return sorted(lake_io.read_partition(spark, lake.partition(root, layer, DAY)).collect())


@pytest.fixture(scope="module")
def pipeline_run(platform, spark, tmp_path_factory):
    """Runs the whole day once; the tests below assert on what it left behind."""
    settings = platform
    topic = new_topic(settings, "proc-e2e")
    manifest_topic = new_topic(settings, "proc-e2e-manifests")
    root = str(tmp_path_factory.mktemp("lake-e2e"))
    env = job_env(settings, root, topic, KAFKA_MANIFEST_TOPIC=manifest_topic)
    scenario = build_day(DAY, 900, seed=11)
    delete_day(settings, DAY)
    outcome = {"scenario": scenario, "root": root, "env": env, "settings": settings}

    # Phase A over 30 s before the job starts; phase B over 60 s, so the crash below happens mid-production.
    producer = threading.Thread(target=lambda: [produce_paced(settings, topic, phase, seconds)
                                                for phase, seconds in zip(scenario.phases, (30, 60))])
    producer.start()
    time.sleep(30)  # producers run 30 s before the streaming job starts
    logs = tmp_path_factory.mktemp("stream-logs")
    first = start_stream(env, logs / "first.log", "--max-runtime", "600")
    deadline = time.time() + 180
    while committed_batches(root) < 3 and time.time() < deadline and first.poll() is None:
        time.sleep(0.5)
    outcome["batches_before_kill"] = committed_batches(root)
    outcome["first_log"] = (logs / "first.log").read_text()
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its JVM die mid-run, no cleanup
    first.wait()
    outcome["producer_alive_at_kill"] = producer.is_alive()
    producer.join()
    second = start_stream(env, logs / "second.log", "--max-runtime", "1")
    outcome["stream_exit"] = second.wait(timeout=300)
    outcome["stream_log"] = (logs / "second.log").read_text()
    # The stream has seen the whole day and the next day's events, so its watermark is far past the late
    # events sent now; a third run (restored from the checkpoint, watermark included) must drop them.
    produce(settings, topic, scenario.late)
    third = start_stream(env, logs / "third.log", "--max-runtime", "1")
    outcome["late_stream_exit"] = third.wait(timeout=300)
    outcome["late_stream_log"] = (logs / "third.log").read_text()
    produce_keyed(settings, manifest_topic, manifests(scenario))

    for job in ("batch_to_bronze", "etl_to_gold"):
        assert run_in_process(job, ["--date", DAY.isoformat()], env) == 0, job
    outcome["check_lake_exit"] = run_in_process("reconcile", ["--date", DAY.isoformat(), "--stage", "lake"], env)
    assert run_in_process("load_to_postgres", ["--date", DAY.isoformat()], env) == 0
    outcome["reconcile_exit"] = run_in_process("reconcile", ["--date", DAY.isoformat(), "--stage", "postgres"], env)
    outcome["postgres"] = postgres_rows(settings, DAY)
    outcome["layers"] = {layer: lake_rows(spark, root, layer) for layer in
                         ("bronze", "silver", "quarantine", *(f"gold/{m}" for m in marts.NAMES))}
    yield outcome
    delete_day(settings, DAY)
    delete_topic(settings, topic)
    delete_topic(settings, manifest_topic)


def test_stream_survives_kill_and_restart(pipeline_run, spark):
    scenario, root = pipeline_run["scenario"], pipeline_run["root"]
    assert pipeline_run["batches_before_kill"] >= 3, pipeline_run["first_log"][-3000:]
    assert pipeline_run["producer_alive_at_kill"]
    assert pipeline_run["stream_exit"] == 0, pipeline_run["stream_log"][-3000:]
    stream = spark.read.parquet(lake.silver_stream(root)).where(f"event_date = '{DAY}'")
    keys = Counter(r.dedup_key for r in stream.select("dedup_key").collect())
    assert [k for k, n in keys.items() if n > 1] == []  # nothing doubled
    missing = set(scenario.valid) - scenario.late_keys - set(keys)
    assert missing == set()  # nothing lost, including what was produced before the job started
    reasons = Counter(r.reason for r in spark.read.parquet(lake.quarantine_stream(root)).collect())
    assert reasons == scenario.quarantine_reasons + scenario.garbage_reasons


def test_late_events_are_dropped_by_the_stream_and_recovered_from_bronze(pipeline_run, spark):
    scenario, root = pipeline_run["scenario"], pipeline_run["root"]
    log = pipeline_run["late_stream_log"]
    assert pipeline_run["late_stream_exit"] == 0, log[-3000:]
    # The third run read the late events and wrote none of them: the stream dropped them (watermark).
    assert "query=silver_stream id=" in log and re.search(
        rf"query=silver_stream id=\d+ input_rows={len(scenario.late)} output_rows=0", log), log[-3000:]
    stream = {r.dedup_key for r in spark.read.parquet(lake.silver_stream(root)).select("dedup_key").collect()}
    assert scenario.late_keys and not scenario.late_keys & stream
    silver = {row.dedup_key for row in pipeline_run["layers"]["silver"]}
    assert scenario.late_keys <= silver  # the exact Silver has them: Bronze alone recovers what the stream drops


def test_bronze_has_every_message_of_the_day(pipeline_run):
    assert len(pipeline_run["layers"]["bronze"]) == pipeline_run["scenario"].messages_of_day


def test_silver_has_every_valid_event_exactly_once(pipeline_run):
    silver = pipeline_run["layers"]["silver"]
    keys = [row.dedup_key for row in silver]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(pipeline_run["scenario"].valid)  # late events recovered from Bronze


def test_quarantine_has_every_malformed_record_with_reason(pipeline_run):
    reasons = Counter(row.reason for row in pipeline_run["layers"]["quarantine"])
    assert reasons == pipeline_run["scenario"].quarantine_reasons


def test_lake_gate_and_reconcile_are_green(pipeline_run):
    assert pipeline_run["check_lake_exit"] == 0
    assert pipeline_run["reconcile_exit"] == 0


def test_every_mart_equals_independent_computation(pipeline_run):
    scenario = pipeline_run["scenario"]
    assert_marts_match(pipeline_run["postgres"], expected_marts(DAY, list(scenario.valid.values())))


def test_rerun_of_batch_etl_and_load_is_idempotent(pipeline_run, spark):
    env, root = pipeline_run["env"], pipeline_run["root"]
    # A message of the day arriving after the first Bronze run is outside the recorded offsets: the
    # rerun reads exactly the recorded ranges, so every layer stays identical.
    produce(pipeline_run["settings"], env["KAFKA_TOPIC"], pipeline_run["scenario"].late[:1])
    for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres"):
        assert run_in_process(job, ["--date", DAY.isoformat()], env) == 0, job
    for layer, rows in pipeline_run["layers"].items():
        assert lake_rows(spark, root, layer) == rows, layer
    assert postgres_rows(pipeline_run["settings"], DAY) == pipeline_run["postgres"]
