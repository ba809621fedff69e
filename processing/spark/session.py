"""The one SparkSession builder every processing job uses (local, S3 and cluster mode alike)."""
from __future__ import annotations

import os
import socket
import sys
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


def cluster_conf(settings: Settings) -> dict[str, str]:
    """Standalone-cluster settings: the cores cap, and the driver's address executors call back on
    (the container's own address on the Docker network, never a guess from the interface list)."""
    if not settings.spark_master.startswith("spark://"):
        return {}
    if settings.platform_mode == "local":  # everything on 127.0.0.1 (SPARK_LOCAL_IP below)
        return {"spark.cores.max": settings.spark_cores_max} if settings.spark_cores_max else {}
    conf = {"spark.driver.host": socket.gethostbyname(socket.gethostname()),
            "spark.driver.bindAddress": "0.0.0.0"}
    if settings.spark_cores_max:
        conf["spark.cores.max"] = settings.spark_cores_max
    return conf


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


def build_session(settings: Settings, app_name: str, extra_conf: dict[str, str] | None = None):
    """SparkSession on settings.spark_master with the lake reachable under settings.lake_root.

    S3 credentials are put into the Hadoop configuration after the JVM is up, so they never appear on
    a spark-submit command line, in the Spark conf listing or in logs; the Hadoop configuration is
    shipped to executors with every file task, so cluster mode works the same.
    """
    from pyspark.sql import SparkSession

    # Executors must run this venv's Python (it has the project and its dependencies installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.platform_mode == "local":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    jars = spark_jars()
    conf = {
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
    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
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
