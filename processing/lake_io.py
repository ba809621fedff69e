"""Publishing and reading date partitions of the lake atomically (local folder or s3a).

A partition folder `<layer>/event_date=D` holds immutable versions and one pointer:

    <partition>/_v_<run-id>/part-*.parquet   one complete write (never changed after it is written)
    <partition>/_CURRENT                     JSON {"version": "_v_<run-id>", ...}, written LAST

`replace_partition` writes the new version into a folder of its own, then publishes it by writing
`_CURRENT` (one PUT on S3, temp file + rename locally: both atomic), then deletes versions older than
the previous one (best effort). Readers resolve `_CURRENT`, so they see the old complete version or
the new complete one, never a half; a partition folder without `_CURRENT` is refused with a clear error.
Version folders start with `_` and contain no `=`, so Spark's partition discovery of a layer skips them
(a layer-wide `spark.read.parquet(<layer>)` sees no data: read partitions through this module). Spark
also ignores such a folder when it is given as the path itself, so a version is read through the glob
`<version>/*.parquet`. No data is renamed, which s3a cannot do atomically.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

MARKER = "_CURRENT"
VERSION_PREFIX = "_v_"
KEEP_VERSIONS = 2  # the published one and the one before it (a reader may still be reading it)


class UnpublishedPartition(RuntimeError):
    """A partition folder exists but has no completion marker: a write died before publishing."""


# ---- pure helpers

def new_version_id(now: datetime | None = None) -> str:
    """A version folder name, sortable by creation time: _v_20261130T103500123456Z_ab12cd34."""
    now = now or datetime.now(timezone.utc)
    return f"{VERSION_PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}_{uuid.uuid4().hex[:8]}"


def marker_document(version: str, rows: int | None, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return json.dumps({"version": version, "rows": rows, "published_at": now.isoformat()}, sort_keys=True)


def parse_marker(text: str, where: str) -> str:
    """The version a marker names; a marker that is not the expected JSON is an error, never ignored."""
    try:
        version = json.loads(text)["version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnpublishedPartition(f"{where}: completion marker is unreadable ({exc})") from exc
    if not isinstance(version, str) or not version.startswith(VERSION_PREFIX) or "/" in version:
        raise UnpublishedPartition(f"{where}: completion marker names no version folder: {version!r}")
    return version


def versions_to_delete(versions: list[str], published: str, keep: int = KEEP_VERSIONS) -> list[str]:
    """Version folders that are neither the published one nor among the `keep - 1` newest before it.
    Folders newer than the published one belong to a concurrent writer and are left alone."""
    older = sorted(v for v in versions if v.startswith(VERSION_PREFIX) and v < published)
    return older[:max(0, len(older) - (keep - 1))]


# ---- file system access (Hadoop FileSystem for s3a and other schemes, plain files locally)

def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("file:")


def _hadoop(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def path_exists(spark: SparkSession, path: str) -> bool:
    if _is_local(path):
        return os.path.exists(path)
    fs, hadoop_path = _hadoop(spark, path)
    return fs.exists(hadoop_path)


def make_dirs(spark: SparkSession, path: str) -> None:
    """Create the folder `path` and its parents if missing (local, or through Hadoop for s3a)."""
    if _is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        fs, hadoop_path = _hadoop(spark, path)
        fs.mkdirs(hadoop_path)


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small text object atomically: readers see the old content or the new, never a part.

    S3: one PUT on close (an object only becomes visible complete). Local: temp file + rename."""
    data = text.encode("utf-8")
    if _is_local(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        temp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        return
    fs, hadoop_path = _hadoop(spark, path)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str | None:
    """The content of a small text object, or None if it does not exist."""
    if _is_local(path):
        try:
            with open(path, "rb") as handle:
                return handle.read().decode("utf-8")
        except FileNotFoundError:
            return None
    fs, hadoop_path = _hadoop(spark, path)
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        return spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def _list_names(spark: SparkSession, path: str) -> list[str]:
    if _is_local(path):
        return sorted(os.listdir(path)) if os.path.isdir(path) else []
    fs, hadoop_path = _hadoop(spark, path)
    if not fs.exists(hadoop_path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(hadoop_path))


def _delete(spark: SparkSession, path: str) -> None:
    fs, hadoop_path = _hadoop(spark, path)
    fs.delete(hadoop_path, True)


def delete_path(spark: SparkSession, path: str) -> None:
    """Delete a folder and everything under it (a job's own scratch data, never a published partition)."""
    _delete(spark, path)


# ---- partitions

def published_version(spark: SparkSession, path: str) -> str | None:
    """The folder of the published version of a partition; None when the partition was never written.
    Raises UnpublishedPartition when the folder exists without a completion marker."""
    marker = read_text(spark, f"{path}/{MARKER}")
    if marker is None:
        if path_exists(spark, path):
            raise UnpublishedPartition(
                f"partition {path} has no completion marker {MARKER}: it was never published completely "
                f"(a write died, or it predates atomic publication); rerun the job that writes it")
        return None
    return f"{path}/{parse_marker(marker, path)}"


def replace_partition(df: DataFrame, path: str, files: int | None = None,
                      before_publish: Callable[[str], None] | None = None) -> str:
    """Publish `df` (without its event_date column: the folder carries it) as the new version of one
    date folder; returns the version folder. An empty `df` publishes an empty partition.

    `before_publish(version_folder)` runs after the data is written and before the marker: tests use
    it to die at the worst moment."""
    spark = df.sparkSession
    out = df.drop("event_date")
    if files:
        out = out.coalesce(files)
    version = new_version_id()
    folder = f"{path}/{version}"
    out.write.mode("errorifexists").parquet(folder)
    if before_publish is not None:
        before_publish(folder)
    return _publish(spark, path, version, read_version(spark, folder).count())


def _publish(spark: SparkSession, path: str, version: str, rows: int) -> str:
    """Write the marker naming a complete version folder, then delete versions older than the previous one."""
    write_text(spark, f"{path}/{MARKER}", marker_document(version, rows))
    for old in versions_to_delete(_list_names(spark, path), version):
        try:
            _delete(spark, f"{path}/{old}")
        except Exception:  # noqa: BLE001 - cleanup is best effort; the published version is complete
            pass
    return f"{path}/{version}"


# ---- several dates in one write (a backfill): stage once, then publish each date on its own

def stage_dates(df: DataFrame, folder: str) -> dict[str, int]:
    """Write `df` once into `folder`, partitioned by its event_date (a task holding whole dates writes one file
    per date); returns the rows per ISO date. Nothing here is visible to readers until `publish_staged`."""
    df.write.mode("errorifexists").partitionBy("event_date").parquet(folder)
    if not any(name.startswith("event_date=") for name in _list_names(df.sparkSession, folder)):
        return {}
    counted = df.sparkSession.read.parquet(folder).groupBy("event_date").count().collect()
    return {row.event_date.isoformat(): row["count"] for row in counted}


def publish_staged(empty: DataFrame, folder: str, day, rows: int, path: str) -> str:
    """Publish the rows `stage_dates` staged for `day` as the new version of the date folder `path` (the staged
    files are moved into a version folder, then the marker is written); returns the version folder. A date the
    stage holds no row of is published as an empty partition with `empty`'s schema."""
    if not rows:
        return replace_partition(empty.limit(0), path, files=1)
    spark = empty.sparkSession
    version = new_version_id()
    staged, target = f"{folder}/event_date={day.isoformat()}", f"{path}/{version}"
    if _is_local(path):
        os.makedirs(path, exist_ok=True)
        os.rename(staged, target)
    else:
        fs, source = _hadoop(spark, staged)
        destination = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(target)
        fs.mkdirs(destination.getParent())
        if not fs.rename(source, destination):
            raise OSError(f"could not move staged rows {staged} to {target}")
    return _publish(spark, path, version, rows)


def read_version(spark: SparkSession, folder: str) -> DataFrame:
    """The rows of one version folder (a glob over its files: Spark skips a `_` folder named directly)."""
    return spark.read.parquet(f"{folder}/*.parquet")


def read_partition(spark: SparkSession, path: str) -> DataFrame | None:
    """The rows of the published version of one date folder, or None when it was never written.
    A folder without a completion marker raises UnpublishedPartition."""
    folder = published_version(spark, path)
    return None if folder is None else read_version(spark, folder)


def _required_version(spark: SparkSession, path: str, hint: str) -> str:
    folder = published_version(spark, path)
    if folder is None:
        raise RuntimeError(f"no partition {path}: {hint}")
    return folder


def require_partition(spark: SparkSession, path: str, hint: str) -> DataFrame:
    return read_version(spark, _required_version(spark, path, hint))


def require_partition_files(spark: SparkSession, path: str, hint: str) -> list[DataFrame]:
    """The published version of one date folder as one DataFrame per Parquet file, for a reader that must never
    hold the whole date (each file holds at most `spark.sql.files.maxRecordsPerFile` rows)."""
    folder = _required_version(spark, path, hint)
    return [spark.read.parquet(f"{folder}/{name}") for name in _list_names(spark, folder) if name.endswith(".parquet")]
