"""The SparkSession settings that matter on a standalone cluster in containers."""
from __future__ import annotations

import socket

import pytest

from infrastructure.settings import load
from processing.spark import session

pytestmark = pytest.mark.unit


def test_jars_already_on_the_cluster_classpath_are_not_shipped(tmp_path):
    classpath, resolved = tmp_path / "pyspark-jars", tmp_path / "resolved"
    classpath.mkdir()
    resolved.mkdir()
    (resolved / "spark-sql-kafka-0-10_2.12-3.4.1.jar").write_bytes(b"")
    assert session.spark_jars(resolved, classpath) == str(resolved / "spark-sql-kafka-0-10_2.12-3.4.1.jar")
    (classpath / "spark-sql-kafka-0-10_2.12-3.4.1.jar").write_bytes(b"")  # as in the spark-job image
    assert session.spark_jars(resolved, classpath) == ""


def test_spark_java_options_are_the_log_configuration_the_class_archive_then_the_setting(monkeypatch):
    plain = load({"ENV_FILE": "/nonexistent"})
    tuned = load({"ENV_FILE": "/nonexistent", "SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1"})
    monkeypatch.setattr(session.class_archive, "java_option", lambda: "")  # none built for this Java and jars
    assert session.java_options(plain) == session.LOG_CONFIG_OPTION
    assert session.java_options(tuned) == f"{session.LOG_CONFIG_OPTION} -XX:TieredStopAtLevel=1"
    monkeypatch.setattr(session.class_archive, "java_option", lambda: "-XX:SharedArchiveFile=/a.jsa")
    assert session.java_options(tuned) == (f"{session.LOG_CONFIG_OPTION} -XX:SharedArchiveFile=/a.jsa "
                                           "-XX:TieredStopAtLevel=1")


def test_cluster_jobs_in_containers_name_their_driver_address_and_cap_their_cores():
    settings = load({"ENV_FILE": "/nonexistent", "SPARK_MASTER": "spark://spark-master:7077", "SPARK_CORES_MAX": "2"})
    local = session.cluster_conf(settings)
    assert local == {"spark.cores.max": "2"}  # local mode: everything stays on 127.0.0.1
    docker = session.cluster_conf(settings.__class__(**{**settings.__dict__, "platform_mode": "docker"}))
    assert docker["spark.cores.max"] == "2" and docker["spark.driver.bindAddress"] == "0.0.0.0"
    # In a container the host name resolves to the container's address on the Docker network.
    assert docker["spark.driver.host"] == socket.gethostbyname(socket.gethostname())
    assert session.cluster_conf(load({"ENV_FILE": "/nonexistent", "SPARK_MASTER": "local[2]"})) == {}
