"""17:00 batch: every Kafka message of one pipeline date -> <LAKE_ROOT>/bronze/event_date=D (duplicates kept).

First run of a date: reads a timestamp window up to the offsets Kafka ends at now (see
processing.kafka_source.read_date), keeps the messages whose pipeline date is D, publishes the Bronze
partition atomically and records per Kafka partition the offset range that holds them under
bronze/_offsets/event_date=D/offsets.json. A rerun reads exactly the recorded ranges; if Kafka no longer
holds them it refuses to overwrite the partition and exits 1, unless --rebuild-from-kafka asks for a
deliberate rebuild from what Kafka has now (which records new ranges).
"""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from processing import cli, kafka_source, lake, lake_io
from processing.spark.session import build_session

JOB = "batch_to_bronze"


def stored_ranges(spark, folder: str) -> list[kafka_source.OffsetRange]:
    """The offset range per Kafka partition of the messages stored in a Bronze version folder."""
    grouped = (lake_io.read_version(spark, folder).groupBy("partition")
               .agg(F.min("offset").alias("first"), F.max("offset").alias("last"),
                    F.count(F.lit(1)).alias("messages")).collect())
    return sorted(kafka_source.OffsetRange(r.partition, r.first, r.last, r.messages) for r in grouped)


def body(settings, args) -> int:
    topic = args.topic or settings.kafka_topic
    spark = build_session(settings, JOB)
    target = lake.partition(settings.lake_root, "bronze", args.date)
    record = kafka_source.read_record(spark, settings, args.date)
    if record is not None and not args.rebuild_from_kafka:
        recorded_topic, _, ranges = record
        if recorded_topic != topic:
            raise kafka_source.OffsetsUnavailable(
                f"refusing to overwrite {target}: its offsets were recorded on topic {recorded_topic}, not {topic} "
                "(use --rebuild-from-kafka to rebuild it from this topic)")
        cli.log(JOB, f"input topic={topic} date={args.date} recorded ranges "
                     + " ".join(f"{r.partition}:{r.first}-{r.last}" for r in ranges) + f" -> output {target}")
        try:
            day_rows = kafka_source.read_ranges(spark, settings, topic, args.date, ranges)
        except kafka_source.OffsetsUnavailable as exc:
            raise kafka_source.OffsetsUnavailable(
                f"refusing to overwrite {target}: {exc}; the published partition is kept "
                "(--rebuild-from-kafka rebuilds it from what Kafka has now)") from None

        def same_messages(folder: str) -> None:  # before publication: never replace with something else
            stored = stored_ranges(spark, folder)
            problems = kafka_source.count_problems(ranges, {r.partition: r.messages for r in stored})
            if not problems and stored != ranges:  # same counts, other offsets: not the recorded messages
                problems = [f"stored ranges {stored} differ from the recorded {ranges}"]
            if problems:
                raise kafka_source.OffsetsUnavailable(
                    f"refusing to overwrite {target}: the recorded offsets now hold other messages ("
                    + "; ".join(problems) + "), the topic was probably recreated; the published partition is kept "
                    "(--rebuild-from-kafka rebuilds it from what Kafka has now)")

        folder = lake_io.replace_partition(day_rows, target, before_publish=same_messages)
    else:
        mode = "rebuild from Kafka (deliberate)" if record is not None else "first run"
        cli.log(JOB, f"input topic={topic} date={args.date} {mode}: timestamp window -> output {target}")
        folder = lake_io.replace_partition(
            kafka_source.read_date(spark, settings, topic, args.date, args.lookback_hours, args.from_earliest), target)
        ranges = stored_ranges(spark, folder)
        kafka_source.write_record(spark, settings, topic, args.date, ranges)
        cli.log(JOB, f"recorded {kafka_source.offsets_path(settings.lake_root, args.date)}")
    for r in ranges:  # recorded = stored (a rerun checked it before publishing)
        cli.log(JOB, f"offsets topic={topic} partition={r.partition} first={r.first} last={r.last} "
                     f"messages={r.messages}")
    total = sum(r.messages for r in ranges)
    cli.log(JOB, f"summary date={args.date} bronze_rows={total} partitions={len(ranges)} version={folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0])
    kafka_source.add_window_arguments(parser)
    parser.add_argument("--rebuild-from-kafka", action="store_true",
                        help="ignore the recorded offsets: rebuild the date from what Kafka holds now and record "
                             "new ranges (deliberate; may store less than before if retention deleted data)")
    args = parser.parse_args(argv)
    return cli.run(JOB, lambda settings: body(settings, args))


if __name__ == "__main__":
    sys.exit(main())
