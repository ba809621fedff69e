"""Inspection tool: messages of one date in Kafka per partition, per reason (valid or why not), and samples."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date

from pyspark.sql import functions as F

from infrastructure.settings import Settings
from processing import cli, kafka_source, transforms
from processing.spark.session import build_session

JOB = "consumer_batch"


@dataclass(frozen=True)
class InspectOptions(kafka_source.Window):
    day: date
    samples: int
    width: int


def inspect(settings: Settings, options: InspectOptions) -> int:
    day, topic = options.day, options.topic or settings.kafka_topic
    spark = build_session(settings, JOB)
    rows = kafka_source.read_date(spark, settings, topic, day, options.lookback_hours, options.from_earliest)
    parsed = transforms.parse_events(rows).cache()
    cli.log(JOB, f"input topic={topic} date={day}")
    for r in (parsed.groupBy("kafka_partition").agg(F.count(F.lit(1)).alias("messages"),
                                                     F.min("kafka_offset").alias("first"),
                                                     F.max("kafka_offset").alias("last"))
              .orderBy("kafka_partition").collect()):
        cli.log(JOB, f"partition={r.kafka_partition} messages={r.messages} offsets={r.first}..{r.last}")
    for r in parsed.groupBy(F.coalesce("reason", F.lit("valid")).alias("status")).count().orderBy("status").collect():
        cli.log(JOB, f"status={r.status} messages={r['count']}")
    for r in parsed.orderBy("kafka_partition", "kafka_offset").limit(options.samples).collect():
        cli.log(JOB, f"sample partition={r.kafka_partition} offset={r.kafka_offset} "
                     f"reason={r.reason or '-'} value={(r.value or '')[:options.width]}")
    total = parsed.count()
    duplicates = total - parsed.where("reason IS NULL").select("dedup_key").distinct().count() - parsed.where(
        "reason IS NOT NULL").count()
    cli.log(JOB, f"summary date={day} messages={total} duplicate_messages={duplicates}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0])
    kafka_source.add_window_arguments(parser)
    parser.add_argument("--samples", type=int, default=5, help="sample records to print (default 5)")
    parser.add_argument("--width", type=int, default=160, help="characters of each sample value")
    args = parser.parse_args(argv)
    options = cli.options(InspectOptions, args, day=args.date)
    return cli.run(JOB, lambda settings: inspect(settings, options))


if __name__ == "__main__":
    sys.exit(main())
