"""18:00 ETL of one date: exact Silver, exact quarantine, then the five Gold marts.

1. Silver of D = transforms.exact_silver(the valid Bronze rows of D, the streaming Silver rows of D): one row
   per dedup_key -> replaces silver/event_date=D.
2. Quarantine of D = the invalid Bronze rows of D with their reason -> replaces quarantine/event_date=D.
3. Each mart is computed from the Silver partition just written -> replaces gold/<mart>/event_date=D.
"""
from __future__ import annotations

import sys
import time
from datetime import date

from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from gold import marts
from infrastructure.settings import Settings
from processing import cli, lake, lake_io, transforms
from processing.spark.session import build_session

JOB = "etl_to_gold"


def stream_rows_of(spark, root: str, day):
    """Rows the streaming job committed for D (read through its _spark_metadata log), or None."""
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
    return stream.where(F.col("event_date") == F.lit(day))


def build_silver(spark, settings, day) -> dict[str, int]:
    root = settings.lake_root
    bronze = lake_io.require_partition(spark, lake.partition(root, "bronze", day), "run batch_to_bronze first")
    parsed = transforms.parse_events(bronze.withColumn("event_date", F.lit(day))).cache()
    stream = stream_rows_of(spark, root, day)
    counts = {"bronze_rows": bronze.count(), "stream_rows": 0 if stream is None else stream.count()}
    silver = lake_io.replace_partition(transforms.exact_silver(parsed, stream), lake.partition(root, "silver", day),
                                       files=2)
    quarantine = lake_io.replace_partition(transforms.quarantined(parsed), lake.partition(root, "quarantine", day),
                                           files=1)
    parsed.unpersist()
    counts["silver_rows"] = lake_io.read_version(spark, silver).count()
    counts["quarantined"] = lake_io.read_version(spark, quarantine).count()
    return counts


def build_marts(spark, settings, day) -> dict[str, int]:
    root = settings.lake_root
    silver = lake_io.require_partition(spark, lake.partition(root, "silver", day), "build Silver first").cache()
    counts = {}
    for mart in marts.NAMES:
        target = lake.gold_partition(root, mart, day)
        version = lake_io.replace_partition(transforms.mart_rows(mart, silver, day), target, files=1)
        counts[mart] = lake_io.read_version(spark, version).count()
    silver.unpersist()
    return counts


def run_date(settings: Settings, day: date) -> int:
    spark = build_session(settings, JOB)
    cli.log(JOB, f"input {settings.lake_root}/{{bronze,silver/_stream}} date={day}")
    started = time.monotonic()
    silver = build_silver(spark, settings, day)
    cli.log(JOB, "silver " + " ".join(f"{k}={v}" for k, v in silver.items())
            + f" seconds={time.monotonic() - started:.1f}")
    started = time.monotonic()
    gold = build_marts(spark, settings, day)
    counts = " ".join(f"{k}={v}" for k, v in gold.items())
    cli.log(JOB, f"gold {counts} seconds={time.monotonic() - started:.1f}")
    cli.log(JOB, f"summary date={day} silver_rows={silver['silver_rows']} "
                 f"quarantined={silver['quarantined']} gold_rows={sum(gold.values())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(JOB, __doc__.splitlines()[0], several=True).parse_args(argv)
    return cli.run_per_date(JOB, args, run_date)  # several dates: one SparkSession, each date its own unit


if __name__ == "__main__":
    sys.exit(main())
