"""Counts of one date across Kafka, Bronze, quarantine, Silver, Gold and PostgreSQL; exit 1 on any mismatch.

Checks: Kafka messages of D = Bronze rows; valid + quarantined = Bronze rows; Silver rows = distinct
dedup_keys among valid Bronze records (and no duplicate dedup_key in Silver); mart_daily_traffic
total_events = Silver rows; PostgreSQL rows = Gold rows, per mart.
"""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from processing import cli, kafka_source, lake, lake_io, transforms
from processing.spark.jobs.load_to_postgres import SCHEMA, connect
from processing.spark.session import build_session

JOB = "reconcile"


def partition_count(spark, settings, layer: str, day) -> int:
    frame = lake_io.read_partition(spark, lake.partition(settings.lake_root, layer, day))
    return 0 if frame is None else frame.count()


def lake_counts(spark, settings, args) -> dict[str, int]:
    topic = args.topic or settings.kafka_topic
    counts = {"kafka_messages": kafka_source.read_date(spark, settings, topic, args.date, args.lookback_hours,
                                                       args.from_earliest).count()}
    bronze = lake_io.read_partition(spark, lake.partition(settings.lake_root, "bronze", args.date))
    counts["bronze_rows"] = 0 if bronze is None else bronze.count()
    valid = (transforms.valid_events(transforms.parse_events(bronze.withColumn("event_date", F.lit(args.date))))
             if bronze is not None else None)
    counts["valid_in_bronze"] = 0 if valid is None else valid.count()
    counts["distinct_valid_keys"] = 0 if valid is None else valid.select("dedup_key").distinct().count()
    counts["quarantined"] = partition_count(spark, settings, "quarantine", args.date)
    silver = lake_io.read_partition(spark, lake.partition(settings.lake_root, "silver", args.date))
    counts["silver_rows"] = 0 if silver is None else silver.count()
    counts["silver_distinct_keys"] = 0 if silver is None else silver.select("dedup_key").distinct().count()
    traffic = lake_io.read_partition(spark, lake.gold_partition(settings.lake_root, "mart_daily_traffic", args.date))
    counts["gold_total_events"] = 0 if traffic is None else (traffic.agg(F.sum("total_events")).first()[0] or 0)
    counts.update(gold_counts(spark, settings, args.date))
    return counts


def postgres_counts(settings, day) -> dict[str, int]:
    with connect(settings) as conn, conn.cursor() as cur:
        counts = {}
        for mart in lake.MARTS:
            cur.execute(f"SELECT count(*) FROM {SCHEMA}.{mart} WHERE event_date = %s", (day,))
            counts[f"postgres:{mart}"] = cur.fetchone()[0]
    conn.close()
    return counts


LAKE, POSTGRES, ALL = "lake", "postgres", "all"


def checks(c: dict[str, int], stages: set[str]) -> list[tuple[str, int, int]]:
    """(stable check name, left, right) pairs that must be equal."""
    pairs = []
    if LAKE in stages:
        pairs += [
            ("kafka_eq_bronze", c["kafka_messages"], c["bronze_rows"]),
            ("valid_plus_quarantined_eq_bronze", c["valid_in_bronze"] + c["quarantined"], c["bronze_rows"]),
            ("silver_eq_distinct_valid_bronze", c["silver_rows"], c["distinct_valid_keys"]),
            ("silver_no_duplicate_dedup_key", c["silver_rows"], c["silver_distinct_keys"]),
            ("gold_total_events_eq_silver", c["gold_total_events"], c["silver_rows"]),
        ]
    if POSTGRES in stages:
        pairs += [(f"postgres_eq_gold:{m}", c[f"postgres:{m}"], c[f"gold:{m}"]) for m in lake.MARTS]
    return pairs


def stages_of(stage: str) -> set[str]:
    return {LAKE, POSTGRES} if stage == ALL else {stage}


def gold_counts(spark, settings, day) -> dict[str, int]:
    return {f"gold:{mart}": partition_count(spark, settings, f"gold/{mart}", day) for mart in lake.MARTS}


def body(settings, args) -> int:
    spark = build_session(settings, JOB)
    stages = stages_of(args.stage)
    counts = lake_counts(spark, settings, args) if LAKE in stages else gold_counts(spark, settings, args.date)
    if POSTGRES in stages:
        counts.update(postgres_counts(settings, args.date))
    for name, value in counts.items():
        cli.log(JOB, f"count {name}={value}")
    results = checks(counts, stages)
    for name, left, right in results:
        cli.log(JOB, f"{'OK  ' if left == right else 'FAIL'} {name}: {left} vs {right}")
    mismatches = sum(left != right for _, left, right in results)
    failed = ",".join(name for name, left, right in results if left != right) or "-"
    cli.log(JOB, f"summary date={args.date} stage={args.stage} checks={len(results)} mismatches={mismatches} "
                 f"failed={failed}")
    return 1 if mismatches else 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0])
    kafka_source.add_window_arguments(parser)
    parser.add_argument("--stage", choices=(LAKE, POSTGRES, ALL), default=ALL,
                        help="lake: the gate before the load (Kafka, manifests, Bronze, quarantine, Silver, Gold); "
                             "postgres: PostgreSQL = Gold per mart, after the load; all (default): both")
    parser.add_argument("--skip-postgres", action="store_true", help="same as --stage lake")
    args = parser.parse_args(argv)
    if args.skip_postgres:
        args.stage = LAKE
    return cli.run(JOB, lambda settings: body(settings, args))


if __name__ == "__main__":
    sys.exit(main())
