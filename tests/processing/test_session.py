"""The SparkSession settings that matter on a standalone cluster in containers."""
from __future__ import annotations

import os
import socket
import stat
import string
from dataclasses import replace
from pathlib import Path

import pytest

from infrastructure.settings import load
from processing.spark import session

pytestmark = pytest.mark.unit
# Characters a properties file would take for syntax, around a random-looking core.
SECRET = "s3cr=t:#!x\\y z-0123456789abcdefghijklmnop_Q"


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
    assert local == {**session.CLUSTER_SECURITY_CONF, "spark.cores.max": "2"}  # local mode: all on 127.0.0.1
    docker = session.cluster_conf(replace(settings, platform_mode="docker"))
    assert docker["spark.cores.max"] == "2" and docker["spark.driver.bindAddress"] == "0.0.0.0"
    # In a container the host name resolves to the container's address on the Docker network.
    assert docker["spark.driver.host"] == socket.gethostbyname(socket.gethostname())
    assert session.cluster_conf(load({"ENV_FILE": "/nonexistent", "SPARK_MASTER": "local[2]"})) == {}


def _settings(master: str, platform_mode: str = "docker"):
    settings = load({"ENV_FILE": "/nonexistent", "SPARK_MASTER": master, "SPARK_AUTH_SECRET": SECRET})
    return replace(settings, platform_mode=platform_mode)


@pytest.mark.parametrize("platform_mode", ["local", "docker"])
def test_a_standalone_application_authenticates_and_encrypts_without_the_secret_in_its_options(monkeypatch,
                                                                                               platform_mode):
    monkeypatch.setattr(session, "spark_jars", lambda: "")
    settings = _settings("spark://spark-master:7077", platform_mode)
    conf = session.session_conf(settings)
    switches = ("spark.authenticate", "spark.network.crypto.enabled", "spark.io.encryption.enabled")
    assert [conf[key] for key in switches] == ["true"] * 3 and conf["spark.network.crypto.saslFallback"] == "false"
    assert session.AUTH_SECRET_KEY not in conf and not [key for key, value in conf.items() if SECRET in value]
    assert session.private_conf(settings) == {session.AUTH_SECRET_KEY: SECRET}


def test_a_local_master_has_no_authentication_and_no_secret(monkeypatch):
    monkeypatch.setattr(session, "spark_jars", lambda: "")
    settings = _settings("local[2]", "local")
    conf = session.session_conf(settings)
    assert not conf.keys() & {*session.CLUSTER_SECURITY_CONF, session.AUTH_SECRET_KEY}
    assert session.private_conf(settings) == {}


class _Launched(Exception):
    """Raised by the stand-in for the spark-submit process, with what it was started with."""


def test_the_secret_reaches_spark_submit_in_a_private_file_never_on_its_command_line(monkeypatch):
    """PySpark's own launch_gateway builds the command line; a stand-in records it instead of starting it."""
    from pyspark import SparkConf, java_gateway

    def record(command, **kwargs):
        path = command[command.index("--properties-file") + 1]
        raise _Launched(command, stat.S_IMODE(os.stat(path).st_mode), Path(path).read_text(), path)

    monkeypatch.setattr(session, "spark_jars", lambda: "")
    monkeypatch.setattr(java_gateway, "Popen", record)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setenv(session.SUBMIT_ARGS_VARIABLE, "--driver-class-path /extra pyspark-shell")
    settings = _settings("spark://spark-master:7077")
    conf = SparkConf(loadDefaults=False).setAll(session.session_conf(settings).items())
    with pytest.raises(_Launched) as launched, session.submit_properties(session.private_conf(settings)):
        java_gateway.launch_gateway(conf)
    command, mode, properties, path = launched.value.args
    assert not [argument for argument in command if SECRET in argument]
    assert "spark.authenticate=true" in command and "spark.io.encryption.enabled=true" in command
    assert command[-3:] == ["--driver-class-path", "/extra", "pyspark-shell"]  # the caller's own arguments kept
    assert mode == 0o600
    assert properties == f"{session.AUTH_SECRET_KEY}={session.java_properties_value(SECRET)}\n"
    # Gone once the session has started, and the caller's arguments back as they were.
    assert not Path(path).exists()
    assert os.environ[session.SUBMIT_ARGS_VARIABLE] == "--driver-class-path /extra pyspark-shell"


def test_properties_escape_every_character_java_would_read_otherwise():
    value = session.java_properties_value(SECRET)
    assert set(value) <= set(string.ascii_letters + string.digits + "\\")
    assert value.encode("ascii").decode("unicode_escape") == SECRET
    assert session.java_properties_value("a\U0001F511b") == "a\\ud83d\\udd11b"  # UTF-16 units, as Java reads them
