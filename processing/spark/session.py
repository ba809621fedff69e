"""The one SparkSession builder every processing job uses (local, S3 and cluster mode alike)."""
from __future__ import annotations

import os
import shlex
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infrastructure.settings import REPO_ROOT, Settings
from processing.spark import class_archive

SPARK_JARS_DIR = REPO_ROOT / ".cache" / "jars" / "spark"
# AbortableStreamBasedCheckpointFileManager (spark-hadoop-cloud): checkpoint and file-sink metadata
# writes on s3a become abortable single PUTs instead of write-temp-then-rename, which S3 cannot do atomically.
CHECKPOINT_MANAGER_KEY = "spark.sql.streaming.checkpointFileManagerClass"
ABORTABLE_CHECKPOINT_MANAGER = "org.apache.spark.internal.io.cloud.AbortableStreamBasedCheckpointFileManager"
SHUFFLE_PARTITIONS = "4"
# Rows per Parquet file written: a reader's task (a file, or a 128 MB split of one) never holds more, so the
# load's per-partition fetch into the driver stays bounded on a date of any size (processing/README.md).
MAX_RECORDS_PER_FILE = "500000"
# The drivers' and executors' log configuration (in the spark-job image at the same path on every worker).
LOG_CONFIG_OPTION = f"-Dlog4j2.configurationFile={Path(__file__).with_name('log4j2.properties')}"
# Every application on a standalone cluster: RPC authentication with the cluster's shared secret, AES encryption
# of every RPC connection (driver, master, workers, executors; no fallback to SASL, which the daemons of
# processing/spark-compose.yaml refuse too) and encryption of what it writes to local disk (shuffle, spill, cached
# blocks). A local[N] master runs everything in one JVM: no connection to protect, none of these.
CLUSTER_SECURITY_CONF = {
    "spark.authenticate": "true",
    "spark.network.crypto.enabled": "true",
    "spark.network.crypto.saslFallback": "false",
    "spark.io.encryption.enabled": "true",
}
AUTH_SECRET_KEY = "spark.authenticate.secret"
SUBMIT_ARGS_VARIABLE = "PYSPARK_SUBMIT_ARGS"


def spark_jars(jars_dir: Path = SPARK_JARS_DIR, classpath_dir: Path | None = None) -> str:
    """Comma list of the Kafka/S3/JDBC jars resolved by Maven at setup time; never fetched at run time.

    Empty when pyspark's own jars folder (the classpath of every Spark process) already holds them, as
    in the spark-job image: then no application ships ~280 MB of jars to each executor's work folder.
    """
    if classpath_dir is None:
        classpath_dir = class_archive.spark_jars_dir()
    if any(classpath_dir.glob("spark-sql-kafka-0-10_*.jar")):
        return ""
    jars = sorted(jars_dir.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Spark jars in {jars_dir}: run `make setup` first")
    return ",".join(str(j) for j in jars)


def is_standalone(settings: Settings) -> bool:
    return settings.spark_master.startswith("spark://")


def cluster_conf(settings: Settings) -> dict[str, str]:
    """Standalone-cluster settings: authentication and encryption (never the secret: see private_conf), the cores
    cap, and in containers the driver's address executors call back on (the container's own address on the Docker
    network, never a guess from the interface list)."""
    if not is_standalone(settings):
        return {}
    conf = dict(CLUSTER_SECURITY_CONF)
    if settings.spark_cores_max:
        conf["spark.cores.max"] = settings.spark_cores_max
    if settings.platform_mode != "local":  # local mode: everything on 127.0.0.1 (SPARK_LOCAL_IP in build_session)
        conf["spark.driver.host"] = socket.gethostbyname(socket.gethostname())
        conf["spark.driver.bindAddress"] = "0.0.0.0"
    return conf


def private_conf(settings: Settings) -> dict[str, str]:
    """What must reach the driver without being on a command line: on a standalone master, the cluster's secret.
    Spark 3.4's driver requires it as spark.authenticate.secret there (the environment variable the daemons and
    executors read, _SPARK_AUTH_SECRET, alone is refused)."""
    return {AUTH_SECRET_KEY: settings.spark_auth_secret} if is_standalone(settings) else {}


def java_properties_value(value: str) -> str:
    """`value` as java.util.Properties reads it back: letters and digits as they are, every other UTF-16 unit as
    a \\uXXXX escape, so that '\\', '=', ':', '#', '!' and spaces stay part of a secret."""
    units = value.encode("utf-16-be")
    codes = (int.from_bytes(units[i:i + 2], "big") for i in range(0, len(units), 2))
    return "".join(chr(code) if chr(code).isascii() and chr(code).isalnum() else f"\\u{code:04x}" for code in codes)


@contextmanager
def submit_properties(properties: dict[str, str]) -> Iterator[None]:
    """Hands `properties` to the spark-submit that a SparkSession started inside this block runs: in a file only
    this user may read (mode 0600), named by PYSPARK_SUBMIT_ARGS, removed when the block ends.

    Not through the builder: PySpark puts every builder option on spark-submit's command line (`--conf k=v`),
    which every user of the host sees in `ps`. The JVM has read the file into the driver's configuration by the
    time getOrCreate returns. A JVM already running in this process (a second session) ignores the file.
    """
    if not properties:
        yield
        return
    previous = os.environ.get(SUBMIT_ARGS_VARIABLE)
    fd, path = tempfile.mkstemp(prefix="spark-submit-", suffix=".properties")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.writelines(f"{key}={java_properties_value(value)}\n" for key, value in properties.items())
        os.environ[SUBMIT_ARGS_VARIABLE] = f"--properties-file {shlex.quote(path)} {previous or 'pyspark-shell'}"
        yield
    finally:
        os.unlink(path)
        if previous is None:
            os.environ.pop(SUBMIT_ARGS_VARIABLE, None)
        else:
            os.environ[SUBMIT_ARGS_VARIABLE] = previous


def s3a_options(settings: Settings) -> dict[str, str]:
    """Non-secret s3a options: endpoint, path-style access, plain HTTP for a local endpoint."""
    options = {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.fast.upload": "true",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        # Keep directory markers instead of bulk-deleting them after every write: fewer requests, and
        # S3-compatible servers without multi-object delete (S3Proxy) work.
        "fs.s3a.directory.marker.retention": "keep",
        "fs.s3a.multiobjectdelete.enable": "false",
        # Fail within seconds, not minutes, when the endpoint misbehaves.
        "fs.s3a.attempts.maximum": "3",
        "fs.s3a.retry.limit": "3",
    }
    if settings.s3_endpoint:
        options["fs.s3a.endpoint"] = settings.s3_endpoint
        options["fs.s3a.connection.ssl.enabled"] = str(settings.s3_endpoint.startswith("https")).lower()
    return options


def java_options(settings: Settings) -> str:
    """JVM options of the driver and the executors: the log configuration, the class archive when one was
    built for this Java and these jars (executors of the spark-job image share the driver's classpath, so
    they map it too), then SPARK_JAVA_OPTIONS."""
    return " ".join(o for o in (LOG_CONFIG_OPTION, class_archive.java_option(), settings.spark_java_options) if o)


def session_conf(settings: Settings, extra_conf: dict[str, str] | None = None) -> dict[str, str]:
    """The builder's options, which spark-submit gets on its command line: never a secret."""
    jars = spark_jars()
    return {
        **({"spark.jars": jars} if jars else {}),
        **cluster_conf(settings),
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.executor.memory": "1g",
        "spark.driver.extraJavaOptions": java_options(settings),
        "spark.executor.extraJavaOptions": java_options(settings),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": SHUFFLE_PARTITIONS,
        "spark.sql.files.maxRecordsPerFile": MAX_RECORDS_PER_FILE,
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        **(extra_conf or {}),
    }


def build_session(settings: Settings, app_name: str, extra_conf: dict[str, str] | None = None):
    """SparkSession on settings.spark_master with the lake reachable under settings.lake_root.

    S3 credentials are put into the Hadoop configuration after the JVM is up, so they never appear on
    a spark-submit command line, in the Spark conf listing or in logs; the Hadoop configuration is
    shipped to executors with every file task, so cluster mode works the same. A standalone cluster's
    secret goes to spark-submit in a private file (submit_properties), never on its command line; it is
    then in the driver's Spark configuration, which Spark redacts wherever it prints it (spark.redaction.regex).
    """
    from pyspark.sql import SparkSession

    # Executors must run this venv's Python (it has the project and its dependencies installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.platform_mode == "local":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in session_conf(settings, extra_conf).items():
        builder = builder.config(key, value)
    with submit_properties(private_conf(settings)):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # Set at run time, so a reused session (getOrCreate) always matches this call's lake.
    if not settings.lake_is_s3:
        spark.conf.unset(CHECKPOINT_MANAGER_KEY)
    else:
        spark.conf.set(CHECKPOINT_MANAGER_KEY, ABORTABLE_CHECKPOINT_MANAGER)
        hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
        for key, value in s3a_options(settings).items():
            hadoop_conf.set(key, value)
        hadoop_conf.set("fs.s3a.access.key", settings.aws_access_key_id)
        hadoop_conf.set("fs.s3a.secret.key", settings.aws_secret_access_key)
    return spark
