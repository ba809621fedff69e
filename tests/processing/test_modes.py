"""The same jobs in S3 mode (s3a through the local S3 endpoint). Jobs on a real standalone Spark cluster are
covered by tests/deployment/test_docker_e2e.py: every Spark step of both DAGs runs on the compose file's master
and workers, its marts checked row for row."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from datetime import date

import pytest

from infrastructure.local.s3 import client as s3_client
from processing import lake, lake_io
from processing.spark.session import build_session
from tests.processing.helpers import (check_staged_publication, delete_day, delete_topic, job_env, new_topic,
                                      postgres_rows, produce, produce_keyed, run_in_process, run_job)
from tests.processing.scenario import build_day, manifests

pytestmark = pytest.mark.integration


@pytest.fixture()
def produced_day(platform):
    """A topic holding one small generated day (duplicates, replay, malformed records included)."""
    def make(day: date):
        scenario = build_day(day, 240, seed=day.day)
        topic = new_topic(platform, "proc-mode")
        produce(platform, topic, [v for phase in scenario.phases for v in phase] + scenario.late)
        manifest_topic = new_topic(platform, "proc-mode-manifests")
        produce_keyed(platform, manifest_topic, manifests(scenario))
        made.extend([topic, manifest_topic])
        return topic, manifest_topic, scenario

    made: list[str] = []
    yield make
    for topic in made:
        delete_topic(platform, topic)


@pytest.fixture()
def s3_bucket(platform):
    """A fresh bucket on the platform's S3 API server (S3Proxy, on-disk store); emptied and removed after."""
    client = s3_client(platform)
    bucket = f"test-lake-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


def test_s3_round_trip_of_every_job(platform, spark, produced_day, s3_bucket):
    day = date(2031, 3, 2)
    topic, manifest_topic, scenario = produced_day(day)
    root = f"s3a://{s3_bucket}/lake"
    env = job_env(platform, root, topic, KAFKA_MANIFEST_TOPIC=manifest_topic)
    delete_day(platform, day)
    try:
        stream = run_job("streaming_to_silver", [
            "--date", day.isoformat(), "--trigger", "2", "--quarantine-trigger", "2", "--max-runtime", "1",
            "--warm-up-rows", "500", "--ready-token", "s3-test"], env)
        assert stream.returncode == 0, stream.stdout[-3000:] + stream.stderr[-3000:]
        assert "warm-up rows=500" in stream.stdout
        # the DAG's wait_for_stream finds the stream's ready marker in the bucket (boto3) and removes it
        ready = subprocess.run([sys.executable, "-m", "processing.stream_ready", "--token", "s3-test", "--timeout",
                                "10"], env=env, capture_output=True, text=True, timeout=120)
        assert ready.returncode == 0 and "ready=yes" in ready.stdout, ready.stdout + ready.stderr[-2000:]
        assert not s3_client(platform).list_objects_v2(Bucket=s3_bucket, Prefix="lake/checkpoints/_ready/").get(
            "KeyCount")
        for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile"):
            assert run_in_process(job, ["--date", day.isoformat()], env) == 0, job
        silver = lake_io.read_partition(spark, lake.partition(root, "silver", day))
        assert silver.count() == len(scenario.valid)
        # every partition is published through its completion marker; Bronze recorded its offsets
        client = s3_client(platform)
        for layer in ("bronze", "silver", "quarantine", "gold/mart_daily_traffic"):
            marker = f"lake/{layer}/event_date={day}/_CURRENT"
            assert client.get_object(Bucket=s3_bucket, Key=marker)["ContentLength"] > 0, marker
        assert client.get_object(Bucket=s3_bucket, Key=f"lake/bronze/_offsets/event_date={day}/offsets.json")
        # a rerun of Bronze reads the recorded offsets and publishes a new version; the day stays exact
        for job in ("batch_to_bronze", "etl_to_gold", "reconcile"):
            assert run_in_process(job, ["--date", day.isoformat()], env) == 0, job
        assert postgres_rows(platform, day)["mart_daily_traffic"][0][1] == len(scenario.valid)
        commits = s3_client(platform).list_objects_v2(Bucket=s3_bucket,
                                                      Prefix="lake/checkpoints/silver_stream/commits/")
        assert commits.get("KeyCount", 0) > 0, "streaming checkpoint commits are objects in the bucket"
    finally:
        delete_day(platform, day)


def test_dates_staged_together_are_published_one_by_one_on_s3(platform, spark, s3_bucket):
    root = f"s3a://{s3_bucket}/lake"
    # the shared session, with the s3a settings a job of this lake sets (build_session reuses the running JVM)
    session = build_session(dataclasses.replace(platform, lake_root=root), "test-staged-s3")
    check_staged_publication(session, root)
