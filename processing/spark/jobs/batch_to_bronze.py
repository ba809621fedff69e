"""17:00 batch: every Kafka message of one pipeline date -> <LAKE_ROOT>/bronze/event_date=D (duplicates kept).

First run of a date: reads a timestamp window up to the offsets Kafka ends at now (see
processing.kafka_source.read_date), keeps the messages whose pipeline date is D, publishes the Bronze
partition atomically and records per Kafka partition the offset range that holds them under
bronze/_offsets/event_date=D/offsets.json. A rerun reads exactly the recorded ranges; if Kafka no longer
holds them it refuses to overwrite the partition and exits 1, unless --rebuild-from-kafka asks for a
deliberate rebuild from what Kafka has now (which records new ranges).

Several dates (a backfill: --start/--end, --dates, --date repeated) run in one SparkSession: the dates that
need a discovery read share ONE scan of the topic, staged once under bronze/_staging/ partitioned by date
(then each date is published, recorded and reported on its own exactly as above, and the staging folder is
deleted); dates with a record are reread from their ranges one by one.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from datetime import date

from pyspark.sql import functions as F

from infrastructure.settings import Settings
from processing import cli, kafka_source, lake, lake_io
from processing.spark.session import build_session

JOB = "batch_to_bronze"


def stored_ranges(spark, folder: str) -> list[kafka_source.OffsetRange]:
    """The offset range per Kafka partition of the messages stored in a Bronze version folder."""
    grouped = (lake_io.read_version(spark, folder).groupBy("partition")
               .agg(F.min("offset").alias("first"), F.max("offset").alias("last"),
                    F.count(F.lit(1)).alias("messages")).collect())
    return sorted(kafka_source.OffsetRange(r.partition, r.first, r.last, r.messages) for r in grouped)


@dataclass(frozen=True)
class BronzeOptions(kafka_source.Window):
    rebuild_from_kafka: bool


def stage_discovery(spark, settings, options: BronzeOptions, days) -> str:
    """One discovery read of every date in `days`, written once partitioned by event_date; returns its folder."""
    topic = options.topic or settings.kafka_topic
    folder = f"{settings.lake_root.rstrip('/')}/bronze/_staging/{lake_io.new_version_id()}"
    cli.log(JOB, f"input topic={topic} dates={len(days)} first runs: one timestamp window from "
                 f"{min(days)} -> staging {folder}")
    rows = kafka_source.read_dates(spark, settings, topic, days, options.lookback_hours, options.from_earliest)
    rows.write.partitionBy("event_date").parquet(folder)
    return folder


def staged_rows(spark, settings, folder: str, day):
    """The staged discovery rows of one date (none when the scan found no message of it)."""
    path = f"{folder}/event_date={day.isoformat()}"
    if not lake_io.path_exists(spark, path):
        return kafka_source.empty_bronze(spark, settings)
    return spark.read.parquet(f"{path}/*.parquet").withColumn("event_date", F.lit(day))


@contextlib.contextmanager
def range_setup(settings, days, options: BronzeOptions):
    """Several dates: stage one shared discovery read for the dates that need one (no record yet, or
    --rebuild-from-kafka); yields the staging folder (None when fewer than two need it), deleted after."""
    spark = build_session(settings, JOB)
    discover = [d for d in days if options.rebuild_from_kafka or kafka_source.read_record(spark, settings, d) is None]
    folder = stage_discovery(spark, settings, options, discover) if len(discover) > 1 else None
    try:
        yield {"staging": folder, "discover": set(discover)}
    finally:
        if folder is not None:
            lake_io.delete_path(spark, folder)


def run_date(settings: Settings, day: date, options: BronzeOptions, shared=None) -> int:
    topic = options.topic or settings.kafka_topic
    spark = build_session(settings, JOB)
    target = lake.partition(settings.lake_root, "bronze", day)
    record = kafka_source.read_record(spark, settings, day)
    if record is not None and not options.rebuild_from_kafka:
        recorded_topic, _, ranges = record
        if recorded_topic != topic:
            raise kafka_source.OffsetsUnavailable(
                f"refusing to overwrite {target}: its offsets were recorded on topic {recorded_topic}, not {topic} "
                "(use --rebuild-from-kafka to rebuild it from this topic)")
        cli.log(JOB, f"input topic={topic} date={day} recorded ranges "
                     + " ".join(f"{r.partition}:{r.first}-{r.last}" for r in ranges) + f" -> output {target}")
        try:
            day_rows = kafka_source.read_ranges(spark, settings, topic, day, ranges)
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
        cli.log(JOB, f"input topic={topic} date={day} {mode}: timestamp window -> output {target}")
        staging = shared and shared["staging"]
        if staging and day in shared["discover"]:
            rows = staged_rows(spark, settings, staging, day)  # the range's one scan, this date's part
        else:
            rows = kafka_source.read_date(spark, settings, topic, day, options.lookback_hours, options.from_earliest)
        folder = lake_io.replace_partition(rows, target)
        ranges = stored_ranges(spark, folder)
        kafka_source.write_record(spark, settings, topic, day, ranges)
        cli.log(JOB, f"recorded {kafka_source.offsets_path(settings.lake_root, day)}")
    for r in ranges:  # recorded = stored (a rerun checked it before publishing)
        cli.log(JOB, f"offsets topic={topic} partition={r.partition} first={r.first} last={r.last} "
                     f"messages={r.messages}")
    total = sum(r.messages for r in ranges)
    cli.log(JOB, f"summary date={day} bronze_rows={total} partitions={len(ranges)} version={folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0], several=True)
    kafka_source.add_window_arguments(parser)
    parser.add_argument("--rebuild-from-kafka", action="store_true",
                        help="ignore the recorded offsets: rebuild the date from what Kafka holds now and record "
                             "new ranges (deliberate; may store less than before if retention deleted data)")
    args = parser.parse_args(argv)
    options = cli.options(BronzeOptions, args)
    return cli.run_per_date(JOB, args, lambda settings, day, shared: run_date(settings, day, options, shared),
                            setup=lambda settings, days: range_setup(settings, days, options))


if __name__ == "__main__":
    sys.exit(main())
