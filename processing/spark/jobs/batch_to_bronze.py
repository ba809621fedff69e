"""17:00 batch: every Kafka message of one pipeline date -> <LAKE_ROOT>/bronze/event_date=D (duplicates kept).

Reads a bounded offset window (see processing.kafka_source.read_date), keeps the messages whose pipeline
date is D, replaces the date's partition, and records the offset range per Kafka partition it stored
under bronze/_runs/event_date=D (JSON) and in the log.
"""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from processing import cli, kafka_source, lake, lake_io
from processing.spark.session import build_session

JOB = "batch_to_bronze"


def offset_ranges(bronze):
    return (bronze.groupBy("topic", "partition")
            .agg(F.min("offset").alias("first_offset"), F.max("offset").alias("last_offset"),
                 F.count(F.lit(1)).alias("messages"))
            .orderBy("topic", "partition"))


def body(settings, args) -> int:
    topic = args.topic or settings.kafka_topic
    spark = build_session(settings, JOB)
    day_rows = kafka_source.read_date(spark, settings, topic, args.date, args.lookback_hours, args.from_earliest)
    target = lake.partition(settings.lake_root, "bronze", args.date)
    cli.log(JOB, f"input topic={topic} date={args.date} -> output {target}")
    lake_io.replace_partition(day_rows, target)
    ranges = offset_ranges(spark.read.parquet(target)).collect()
    spark.createDataFrame(ranges).coalesce(1).write.mode("overwrite").json(
        lake.partition(settings.lake_root, "bronze/_runs", args.date))
    for r in ranges:
        cli.log(JOB, f"offsets topic={r.topic} partition={r.partition} first={r.first_offset} "
                     f"last={r.last_offset} messages={r.messages}")
    total = sum(r.messages for r in ranges)
    cli.log(JOB, f"summary date={args.date} bronze_rows={total} partitions={len(ranges)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0])
    kafka_source.add_window_arguments(parser)
    args = parser.parse_args(argv)
    return cli.run(JOB, lambda settings: body(settings, args))


if __name__ == "__main__":
    sys.exit(main())
