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
deleted: each date's staged files are moved into its version, no second write); dates with a record are reread
from their ranges one by one.
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


@dataclass(frozen=True)
class Discovery:
    """The range's one discovery scan, staged partitioned by date: rows and offset ranges per ISO date."""
    folder: str
    rows: dict[str, int]
    ranges: dict[str, list[kafka_source.OffsetRange]]
    dates: frozenset


def stage_discovery(spark, settings, options: BronzeOptions, days) -> Discovery:
    """One discovery read of every date in `days`, written once partitioned by event_date."""
    topic = options.topic or settings.kafka_topic
    folder = f"{settings.lake_root.rstrip('/')}/bronze/_staging/{lake_io.new_version_id()}"
    cli.log(JOB, f"input topic={topic} dates={len(days)} first runs: one timestamp window from "
                 f"{min(days)} -> staging {folder}")
    rows = kafka_source.read_dates(spark, settings, topic, days, options.lookback_hours, options.from_earliest)
    rows_per_date = lake_io.stage_dates(rows, folder)
    ranges: dict[str, list[kafka_source.OffsetRange]] = {}
    if rows_per_date:
        staged = spark.read.parquet(folder).groupBy("event_date", "partition").agg(
            F.min("offset").alias("first"), F.max("offset").alias("last"), F.count(F.lit(1)).alias("messages"))
        for r in staged.collect():
            ranges.setdefault(r.event_date.isoformat(), []).append(
                kafka_source.OffsetRange(r.partition, r.first, r.last, r.messages))
    return Discovery(folder, rows_per_date, {d: sorted(found) for d, found in ranges.items()}, frozenset(days))


@contextlib.contextmanager
def range_setup(settings, days, options: BronzeOptions):
    """Several dates: stage one shared discovery read for the dates that need one (no record yet, or
    --rebuild-from-kafka); yields it (None when fewer than two need it), its staging deleted after."""
    spark = build_session(settings, JOB)
    discover = [d for d in days if options.rebuild_from_kafka or kafka_source.read_record(spark, settings, d) is None]
    discovery = stage_discovery(spark, settings, options, discover) if len(discover) > 1 else None
    try:
        yield discovery
    finally:
        if discovery is not None and lake_io.path_exists(spark, discovery.folder):
            lake_io.delete_path(spark, discovery.folder)


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
            day_rows = kafka_source.read_ranges(spark, settings, topic, {day: ranges})
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
        if shared is not None and day in shared.dates:  # the range's one scan: this date's staged part, moved
            iso = day.isoformat()
            folder = lake_io.publish_staged(kafka_source.empty_bronze(spark, settings), shared.folder, day,
                                            shared.rows.get(iso, 0), target)
            ranges = shared.ranges.get(iso, [])
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
    cli.summary(JOB, day, total, bronze_rows=total, partitions=len(ranges), version=folder)
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
