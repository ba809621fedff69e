"""The same jobs in S3 mode (s3a through the local S3 endpoint) and on a real standalone Spark cluster."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from infrastructure.local.s3 import JARS as S3PROXY_JARS
from infrastructure.local.s3 import client as s3_client
from infrastructure.settings import load
from processing import lake
from tests.processing.conftest import delete_topic, job_env, new_topic, produce, run_in_process, run_job
from tests.processing.scenario import build_day
from tests.processing.test_pipeline_e2e import delete_day, postgres_rows

pytestmark = pytest.mark.integration


@pytest.fixture()
def produced_day(platform):
    """A topic holding one small generated day (duplicates, replay, malformed records included)."""
    def make(day: date):
        scenario = build_day(day, 240, seed=day.day)
        topic = new_topic(platform, "proc-mode")
        produce(platform, topic, [v for phase in scenario.phases for v in phase])
        made.append(topic)
        return topic, scenario

    made: list[str] = []
    yield make
    for topic in made:
        delete_topic(platform, topic)


@pytest.fixture()
def s3_endpoint(platform, tmp_path):
    """A private S3Proxy (the platform's jars) with the in-memory `transient` store on a free port.

    The shared S3Proxy stores objects as files (filesystem-nio2), where s3a's directory-marker objects are
    real folders: deleting a marker of a non-empty folder fails, so Spark's rename-based commit and the
    streaming checkpoint cannot work there (see processing/processing.md). The in-memory store has flat
    keys like real S3. Killed at the end; its content goes with it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    properties = tmp_path / "s3proxy.properties"
    properties.write_text(f"s3proxy.endpoint={endpoint}\ns3proxy.authorization=aws-v2-or-v4\n"
                          f"s3proxy.identity={platform.aws_access_key_id}\n"
                          f"s3proxy.credential={platform.aws_secret_access_key}\n"
                          "jclouds.provider=transient\njclouds.identity=unused\njclouds.credential=unused\n")
    server = subprocess.Popen(["java", "-Xmx256m", "-cp", f"{S3PROXY_JARS}/*", "org.gaul.s3proxy.Main",
                               "--properties", str(properties)], stdout=open(tmp_path / "s3proxy.log", "w"),
                              stderr=subprocess.STDOUT)
    settings = load({**os.environ, "S3_ENDPOINT": endpoint})
    deadline = time.time() + 60
    while True:
        try:
            s3_client(settings).create_bucket(Bucket=settings.s3_bucket)
            break
        except Exception:  # noqa: BLE001 - not listening yet
            assert time.time() < deadline and server.poll() is None, (tmp_path / "s3proxy.log").read_text()[-2000:]
            time.sleep(0.5)
    yield settings
    server.kill()
    server.wait()


def test_s3_round_trip_of_every_job(platform, spark, produced_day, s3_endpoint):
    day = date(2031, 3, 2)
    topic, scenario = produced_day(day)
    root = f"s3a://{s3_endpoint.s3_bucket}/lake"
    env = job_env(platform, root, topic, S3_ENDPOINT=s3_endpoint.s3_endpoint)
    delete_day(platform, day)
    try:
        stream = run_job("streaming_to_silver", ["--date", day.isoformat(), "--trigger", "2", "--max-runtime", "1"],
                         env)
        assert stream.returncode == 0, stream.stdout[-3000:] + stream.stderr[-3000:]
        for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres", "reconcile"):
            assert run_in_process(job, ["--date", day.isoformat()], env) == 0, job
        silver = spark.read.parquet(lake.partition(root, "silver", day))
        assert silver.count() == len(scenario.valid)
        assert postgres_rows(platform, day)["mart_daily_traffic"][0][1] == len(scenario.valid)
        commits = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_endpoint.s3_bucket,
                                                         Prefix="lake/checkpoints/silver_stream/commits/")
        assert commits.get("KeyCount", 0) > 0, "streaming checkpoint commits are objects in the bucket"
    finally:
        delete_day(platform, day)


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
    topic, scenario = produced_day(day)
    env = job_env(platform, str(tmp_path / "lake"), topic, SPARK_MASTER=standalone_cluster)
    for job in ("batch_to_bronze", "etl_to_gold"):
        done = run_job(job, ["--date", day.isoformat()], env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"master={standalone_cluster}" in done.stdout
    silver = spark.read.parquet(lake.partition(str(tmp_path / "lake"), "silver", day))
    assert sorted(r.dedup_key for r in silver.collect()) == sorted(scenario.valid)
    assert (tmp_path / "work").is_dir() and any((tmp_path / "work").iterdir()), "executors ran on the worker"
