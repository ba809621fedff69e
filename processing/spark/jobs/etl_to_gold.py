"""18:00 ETL of one date: exact Silver, exact quarantine, then every Gold mart (gold/marts.toml).

1. Silver of D = transforms.exact_silver(the valid Bronze rows of D, the streaming Silver rows of D): one row
   per dedup_key -> replaces silver/event_date=D.
2. Quarantine of D = the invalid Bronze rows of D with their reason -> replaces quarantine/event_date=D.
3. Each mart is computed from the Silver partition just written -> replaces gold/<mart>/event_date=D.

Several dates (a backfill) are computed together: their Bronze is parsed once, Silver, quarantine and each mart
are each written once for all of them into a staging folder partitioned by date (LAKE_ROOT/_staging/etl_<id>),
then every date is published on its own, layer by layer (its staged files moved into a new version, then its
marker). A date whose Bronze is missing is reported alone; if the shared computation fails, each date is
computed on its own as above, so one bad date never blocks the others.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from gold import marts
from infrastructure.settings import Settings
from processing import cli, lake, lake_io, transforms
from processing.spark.session import build_session

JOB = "etl_to_gold"


def stream_rows_of(spark, root: str, days: list[date]):
    """Rows the streaming job committed for these dates (read through its _spark_metadata log), or None."""
    path = lake.silver_stream(root)
    if not lake_io.path_exists(spark, path):
        return None  # streaming never ran (or failed before creating its output): Bronze alone is enough
    try:
        stream = spark.read.parquet(path)
    except AnalysisException as exc:  # the sink log exists but no batch was ever committed (a failed stream)
        if "infer schema" not in str(exc).lower():
            raise
        cli.log(JOB, f"no committed streaming batch under {path}: building Silver from Bronze alone")
        return None
    return stream.where(F.col("event_date").isin(days))


def stage_parsed(bronze: DataFrame, folder: str) -> DataFrame:
    """Parse Bronze once into Parquet under `folder` and read it back: every later use (Silver, quarantine, the
    counts) reads the file instead of a cache that must hold the whole input in the heap, so a date of any
    size fits a fixed heap (Spark spills the write's sort, never a cached partition). Only a quarantined row keeps
    its raw value and key. Measured at 32 days: 90 s against 101 s for a DISK_ONLY persist."""
    quarantine_only = F.col("reason").isNotNull()
    started = time.monotonic()
    transforms.parse_events(bronze).withColumns(
        {"value": F.when(quarantine_only, F.col("value")), "key": F.when(quarantine_only, F.col("key"))}
    ).write.mode("errorifexists").parquet(f"{folder}/parsed")
    cli.log(JOB, f"staged parsed Bronze seconds={time.monotonic() - started:.1f}")
    return bronze.sparkSession.read.parquet(f"{folder}/parsed")


def build_silver(spark, settings, day) -> dict[str, int]:
    root = settings.lake_root
    bronze = lake_io.require_partition(spark, lake.partition(root, "bronze", day), "run batch_to_bronze first")
    folder = staging_folder(settings)
    try:
        parsed = stage_parsed(bronze.withColumn("event_date", F.lit(day)), folder)
        stream = stream_rows_of(spark, root, [day])
        counts = {"bronze_rows": parsed.count(), "stream_rows": 0 if stream is None else stream.count()}
        silver = lake_io.replace_partition(transforms.exact_silver(parsed, stream),
                                           lake.partition(root, "silver", day), files=2)
        quarantine = lake_io.replace_partition(transforms.quarantined(parsed),
                                               lake.partition(root, "quarantine", day), files=1)
    finally:
        if lake_io.path_exists(spark, folder):
            lake_io.delete_path(spark, folder)
    counts["silver_rows"] = lake_io.read_version(spark, silver).count()
    counts["quarantined"] = lake_io.read_version(spark, quarantine).count()
    return counts


def build_marts(spark, settings, day) -> dict[str, int]:
    """Each mart reads the published Silver Parquet (its columns only); no cache holds the date in the heap."""
    root = settings.lake_root
    silver = lake_io.require_partition(spark, lake.partition(root, "silver", day), "build Silver first")
    silver = silver.withColumn("event_date", F.lit(day))
    counts = {}
    for mart in marts.NAMES:
        target = lake.gold_partition(root, mart, day)
        version = lake_io.replace_partition(transforms.mart_rows(mart, silver), target, files=1)
        counts[mart] = lake_io.read_version(spark, version).count()
    return counts


def staging_folder(settings) -> str:
    """A fresh folder of the lake's _staging area for one computation (deleted by whoever made it)."""
    return f"{lake.layer(settings.lake_root, '_staging')}/etl_{lake_io.new_version_id()}"


LAYERS = ("silver", "quarantine", *(f"gold/{mart}" for mart in marts.NAMES))  # publication order of a date


@dataclass(frozen=True)
class StagedRange:
    """The shared computation of several dates: every layer written once, partitioned by date, under `folder`."""
    folder: str
    rows: dict[str, dict[str, int]]  # layer -> ISO date -> staged rows
    inputs: dict[str, dict[str, int]]  # ISO date -> bronze_rows, stream_rows
    empty: dict[str, DataFrame]  # layer -> a frame with its columns (for a date without rows)


def per_date(frame: DataFrame) -> dict[str, int]:
    return {row.event_date.isoformat(): row["count"] for row in frame.groupBy("event_date").count().collect()}


def stage_range(spark, settings, days: list[date], folder: str) -> StagedRange:
    """Parse the Bronze of `days` once and stage Silver, quarantine and every mart of all of them."""
    root, tasks = settings.lake_root, len(days)
    frames = [lake_io.require_partition(spark, lake.partition(root, "bronze", d), "run batch_to_bronze first")
              .withColumn("event_date", F.lit(d)) for d in days]
    bronze = frames[0]
    for frame in frames[1:]:
        bronze = bronze.unionByName(frame)
    parsed = stage_parsed(bronze, folder)
    stream = stream_rows_of(spark, root, days)
    layers = {"silver": transforms.exact_silver(parsed, stream, by_date=tasks),
              "quarantine": transforms.quarantined(parsed).repartition(tasks, "event_date")}
    rows = {layer: staged_layer(frame, folder, layer) for layer, frame in layers.items()}
    inputs = {day.isoformat(): {"bronze_rows": 0, "stream_rows": 0} for day in days}
    stream_rows = {} if stream is None else per_date(stream)
    for name, counted in (("bronze_rows", per_date(parsed)), ("stream_rows", stream_rows)):
        for day, count in counted.items():
            inputs[day][name] = count
    silver = spark.read.parquet(f"{folder}/silver") if rows["silver"] else layers["silver"]
    for mart in marts.NAMES:
        layers[f"gold/{mart}"] = transforms.mart_rows(mart, silver).repartition(tasks, "event_date")
        rows[f"gold/{mart}"] = staged_layer(layers[f"gold/{mart}"], folder, f"gold/{mart}")
    return StagedRange(folder, rows, inputs, layers)


def staged_layer(frame: DataFrame, folder: str, layer: str) -> dict[str, int]:
    """lake_io.stage_dates into the layer's staging folder, with its time in the log (where a backfill's time goes)."""
    started = time.monotonic()
    rows = lake_io.stage_dates(frame, f"{folder}/{layer}")
    cli.log(JOB, f"staged {layer} rows={sum(rows.values())} seconds={time.monotonic() - started:.1f}")
    return rows


def publish_date(spark, settings, day: date, staged: StagedRange) -> int:
    """Publish one date of a staged range, layer by layer, each as its own new version."""
    iso, started = day.isoformat(), time.monotonic()
    published = {layer: staged.rows[layer].get(iso, 0) for layer in LAYERS}
    for layer in LAYERS:
        lake_io.publish_staged(staged.empty[layer], f"{staged.folder}/{layer}", day, published[layer],
                               lake.partition(settings.lake_root, layer, day))
    counts = {**staged.inputs[iso], "silver_rows": published["silver"], "quarantined": published["quarantine"]}
    cli.log(JOB, "silver " + " ".join(f"{k}={v}" for k, v in counts.items()) + " (staged with the range)")
    gold = {layer.removeprefix("gold/"): rows for layer, rows in published.items() if layer.startswith("gold/")}
    cli.log(JOB, "gold " + " ".join(f"{k}={v}" for k, v in gold.items()) + f" seconds={time.monotonic() - started:.1f}")
    cli.summary(JOB, day, sum(gold.values()), silver_rows=counts["silver_rows"], quarantined=counts["quarantined"],
                gold_rows=sum(gold.values()))
    return 0


def bronze_ready(spark, settings, day: date) -> bool:
    try:
        return lake_io.published_version(spark, lake.partition(settings.lake_root, "bronze", day)) is not None
    except lake_io.UnpublishedPartition:
        return False


@contextlib.contextmanager
def range_setup(settings, days: list[date]):
    """Several dates: stage the dates whose Bronze is published in one computation; yields it (None when fewer
    than two are ready, or when it failed: then every date is computed on its own). The staging is deleted after."""
    spark = build_session(settings, JOB)
    ready = [day for day in days if bronze_ready(spark, settings, day)]
    folder = staging_folder(settings)
    staged = None
    if len(ready) > 1:
        started = time.monotonic()
        cli.log(JOB, f"staging {len(ready)} dates in one computation -> {folder}")
        try:
            staged = stage_range(spark, settings, ready, folder)
            cli.log(JOB, f"staged dates={len(ready)} silver_rows={sum(staged.rows['silver'].values())} "
                         f"seconds={time.monotonic() - started:.1f}")
        except Exception as exc:  # noqa: BLE001 - fall back to one date at a time, where a bad date fails alone
            cli.log(JOB, f"staging failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): "
                         "computing each date on its own")
    try:
        yield staged
    finally:
        if lake_io.path_exists(spark, folder):
            lake_io.delete_path(spark, folder)


def run_date(settings: Settings, day: date, staged: StagedRange | None = None) -> int:
    spark = build_session(settings, JOB)
    if staged is not None and day.isoformat() in staged.inputs:
        return publish_date(spark, settings, day, staged)
    cli.log(JOB, f"input {settings.lake_root}/{{bronze,silver/_stream}} date={day}")
    started = time.monotonic()
    silver = build_silver(spark, settings, day)
    cli.log(JOB, "silver " + " ".join(f"{k}={v}" for k, v in silver.items())
            + f" seconds={time.monotonic() - started:.1f}")
    started = time.monotonic()
    gold = build_marts(spark, settings, day)
    counts = " ".join(f"{k}={v}" for k, v in gold.items())
    cli.log(JOB, f"gold {counts} seconds={time.monotonic() - started:.1f}")
    cli.summary(JOB, day, sum(gold.values()), silver_rows=silver["silver_rows"], quarantined=silver["quarantined"],
                gold_rows=sum(gold.values()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(JOB, __doc__.splitlines()[0], several=True).parse_args(argv)
    # several dates: one SparkSession and one shared computation, each date published as its own unit
    return cli.run_per_date(JOB, args, run_date, setup=range_setup)


if __name__ == "__main__":
    sys.exit(main())
