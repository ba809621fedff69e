"""The same jobs in S3 mode (s3a through the local S3 endpoint) and on a real standalone Spark cluster."""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def standalone_cluster(tmp_path):
    """A real Spark standalone master and one worker on free ports; both killed at the end."""
    spark_class = Path(sys.executable).parent / "spark-class"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_HOME": str(Path(__import__("pyspark").__file__).parent), "SPARK_WORKER_DIR": str(tmp_path / "work")}
    port = free_port()
    master_url = f"spark://127.0.0.1:{port}"
    daemons = [subprocess.Popen([str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                 "--port", str(port), "--webui-port", str(free_port())], env=env,
                                stdout=open(tmp_path / "master.log", "w"), stderr=subprocess.STDOUT)]
    daemons.append(subprocess.Popen([str(spark_class), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                     "--cores", "2", "--memory", "1536m", "--webui-port", str(free_port()),
                                     master_url], env=env, stdout=open(tmp_path / "worker.log", "w"),
                                    stderr=subprocess.STDOUT))
    deadline = time.time() + 60
    while "Successfully registered with master" not in (tmp_path / "worker.log").read_text():
        assert time.time() < deadline and all(d.poll() is None for d in daemons), (tmp_path / "worker.log").read_text()
        time.sleep(0.5)
    yield master_url
    for daemon in daemons:
        daemon.kill()
        daemon.wait()


def test_jobs_on_a_standalone_cluster(platform, produced_day, standalone_cluster, tmp_path, spark):
    day = date(2031, 3, 3)
    topic, _, scenario = produced_day(day)
    env = job_env(platform, str(tmp_path / "lake"), topic, SPARK_MASTER=standalone_cluster)
    for job in ("batch_to_bronze", "etl_to_gold"):
        done = run_job(job, ["--date", day.isoformat()], env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"master={standalone_cluster}" in done.stdout
    silver = lake_io.read_partition(spark, lake.partition(str(tmp_path / "lake"), "silver", day))
    assert sorted(r.dedup_key for r in silver.collect()) == sorted(scenario.valid)
    assert (tmp_path / "work").is_dir() and any((tmp_path / "work").iterdir()), "executors ran on the worker"
