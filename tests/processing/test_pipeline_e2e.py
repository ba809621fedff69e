"""End to end on real Kafka, Spark and PostgreSQL, read from the local-mode world (tests/processing/local_day.py):
streaming (started after the first phase was produced, killed with kill -9 mid-production and restarted), late
events the stream provably drops, Bronze, exact Silver, Gold, the lake gate, load, reconcile, each batch step's
row in gold.pipeline_runs, and an idempotent rerun (Bronze rereads its recorded offsets)."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from gold import marts
from processing import lake
from tests.processing.helpers import pipeline_runs, postgres_rows, produce, run_in_process
from tests.processing.local_day import DAY, lake_rows
from tests.processing.scenario import assert_marts_match, expected_marts

pytestmark = pytest.mark.integration


def test_stream_survives_kill_and_restart(local_day, spark):
    scenario, root = local_day["scenario"], local_day["root"]
    assert local_day["batches_before_kill"] >= 3, local_day["running_log"][-3000:]
    assert local_day["producer_alive_at_kill"]
    assert local_day["outage_exit"] == 0, local_day["outage_log"][-3000:]
    assert local_day["restart_exit"] == 0, local_day["restart_log"][-3000:]
    stream = spark.read.parquet(lake.silver_stream(root)).where(f"event_date = '{DAY}'")
    keys = Counter(r.dedup_key for r in stream.select("dedup_key").collect())
    assert [k for k, n in keys.items() if n > 1] == []  # nothing doubled
    missing = set(scenario.valid) - scenario.late_keys - set(keys)
    assert missing == set()  # nothing lost, including what was produced before the job started
    reasons = Counter(r.reason for r in spark.read.parquet(lake.quarantine_stream(root)).collect())
    assert reasons == scenario.quarantine_reasons + scenario.garbage_reasons


def test_late_events_are_dropped_by_the_stream_and_recovered_from_bronze(local_day, spark):
    scenario, root = local_day["scenario"], local_day["root"]
    log = local_day["late_stream_log"]
    assert local_day["late_stream_exit"] == 0, log[-3000:]
    # The fourth run read the late events and wrote none of them: the stream dropped them (watermark).
    assert "query=silver_stream id=" in log and re.search(
        rf"query=silver_stream id=\d+ input_rows={len(scenario.late)} output_rows=0", log), log[-3000:]
    stream = {r.dedup_key for r in spark.read.parquet(lake.silver_stream(root)).select("dedup_key").collect()}
    assert scenario.late_keys and not scenario.late_keys & stream
    silver = {row.dedup_key for row in local_day["layers"]["silver"]}
    assert scenario.late_keys <= silver  # the exact Silver has them: Bronze alone recovers what the stream drops


def test_bronze_has_every_message_of_the_day(local_day):
    assert len(local_day["layers"]["bronze"]) == local_day["scenario"].messages_of_day


def test_silver_has_every_valid_event_exactly_once(local_day):
    silver = local_day["layers"]["silver"]
    keys = [row.dedup_key for row in silver]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(local_day["scenario"].valid)  # late events recovered from Bronze


def test_quarantine_has_every_malformed_record_with_reason(local_day):
    reasons = Counter(row.reason for row in local_day["layers"]["quarantine"])
    assert reasons == local_day["scenario"].quarantine_reasons


def test_lake_gate_and_reconcile_are_green(local_day):
    assert local_day["check_lake_exit"] == 0
    assert local_day["reconcile_exit"] == 0


def test_each_batch_step_recorded_its_outcome_in_pipeline_runs(local_day):
    runs = local_day["pipeline_runs"]  # step -> (success, rows, seconds, finished_at)
    steps_in_order = ["batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile"]  # reconcile: postgres stage
    assert sorted(runs, key=lambda step: runs[step][3]) == steps_in_order, runs
    assert all(success and seconds > 0 for success, _, seconds, _ in runs.values()), runs
    layers = local_day["layers"]
    assert runs["batch_to_bronze"][1] == len(layers["bronze"])
    assert runs["etl_to_gold"][1] == sum(len(layers[f"gold/{name}"]) for name in marts.NAMES)
    assert runs["load_to_postgres"][1] == sum(len(rows) for rows in local_day["postgres"].values())
    assert runs["reconcile"][1] > 0  # the checks of its last attempt


def test_every_mart_equals_independent_computation(local_day):
    scenario = local_day["scenario"]
    assert_marts_match(local_day["postgres"], expected_marts(DAY, list(scenario.valid.values())))


def test_rerun_of_batch_etl_and_load_is_idempotent(local_day, spark):
    env, root = local_day["env"], local_day["root"]
    # A message of the day arriving after the first Bronze run is outside the recorded offsets: the
    # rerun reads exactly the recorded ranges, so every layer stays identical.
    produce(local_day["settings"], env["KAFKA_TOPIC"], local_day["scenario"].late[:1])
    for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres"):
        assert run_in_process(job, ["--date", DAY.isoformat()], env) == 0, job
    for layer, rows in local_day["layers"].items():
        assert lake_rows(spark, root, layer) == rows, layer
    assert postgres_rows(local_day["settings"], DAY) == local_day["postgres"]
    # pipeline_runs keeps one row per step and date: the rerun's attempts replaced the first ones
    first, rerun = local_day["pipeline_runs"], pipeline_runs(local_day["settings"], DAY)
    assert sorted(rerun) == sorted(first)
    for step in ("batch_to_bronze", "etl_to_gold", "load_to_postgres"):
        assert rerun[step][:2] == first[step][:2] and rerun[step][3] > first[step][3], step
    assert rerun["reconcile"] == first["reconcile"]
