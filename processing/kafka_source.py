"""How the batch jobs read one pipeline date from Kafka (shared by batch_to_bronze, reconcile, consumer_batch).

Bronze by offsets: the first Bronze run of a date finds the date's messages through a timestamp window
and records, per Kafka partition, the offset range that holds them (`bronze/_offsets/event_date=D/
offsets.json`). Every later read of the date (a Bronze rerun, reconcile) reads exactly those ranges, so
it sees exactly the same messages; when Kafka no longer holds them (retention, a recreated topic) the
read is refused instead of silently storing less.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from infrastructure.settings import Settings
from processing import transforms

DEFAULT_LOOKBACK_HOURS = 24.0
RECORD_VERSION = 1
KAFKA_SOURCE_SCHEMA = T.StructType([
    T.StructField("key", T.BinaryType()), T.StructField("value", T.BinaryType()),
    T.StructField("topic", T.StringType()), T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()), T.StructField("timestamp", T.TimestampType()),
    T.StructField("timestampType", T.IntegerType()),
])


class OffsetsUnavailable(RuntimeError):
    """Kafka no longer holds (all of) the recorded offset ranges of a date."""


@dataclass(frozen=True, order=True)
class OffsetRange:
    """The offsets of one Kafka partition that hold a date's messages: first..last inclusive."""
    partition: int
    first: int
    last: int
    messages: int  # messages of the date in the range (other dates' messages may sit in between)


# ---- pure offset-range logic

def window_start_ms(day: date, pipeline_tz: str, lookback_hours: float, now: datetime | None = None) -> int:
    """Earliest Kafka timestamp read for `day`: the earlier of (the day's midnight in PIPELINE_TZ and
    now), minus the lookback. A message of the day cannot be written before both, so nothing of the
    day is missed while older days' traffic is skipped; a backfill of a past day reads from that day on."""
    midnight = datetime.combine(day, time(0), tzinfo=ZoneInfo(pipeline_tz))
    now = now or datetime.now(timezone.utc)
    start = min(midnight, now) - timedelta(hours=lookback_hours)
    return int(start.timestamp() * 1000)


def ranges_from_offsets(pairs) -> list[OffsetRange]:
    """(partition, offset) of each stored message -> one range per partition, ordered by partition."""
    seen: dict[int, list[int]] = {}
    for partition, offset in pairs:
        low_high = seen.setdefault(int(partition), [offset, offset, 0])
        low_high[0] = min(low_high[0], offset)
        low_high[1] = max(low_high[1], offset)
        low_high[2] += 1
    return [OffsetRange(p, lo, hi, n) for p, (lo, hi, n) in sorted(seen.items())]


def offsets_record(topic: str, day: date, ranges: list[OffsetRange], recorded_at: datetime) -> str:
    """The JSON document recorded for a date (stable key order, so equal records are equal text)."""
    return json.dumps({
        "record_version": RECORD_VERSION, "topic": topic, "event_date": day.isoformat(),
        "recorded_at": recorded_at.isoformat(),
        "partitions": [{"partition": r.partition, "first_offset": r.first, "last_offset": r.last,
                        "messages": r.messages} for r in sorted(ranges)],
    }, sort_keys=True)


def parse_offsets_record(text: str) -> tuple[str, date, list[OffsetRange]]:
    doc = json.loads(text)
    if doc.get("record_version") != RECORD_VERSION:
        raise ValueError(f"unknown offsets record version {doc.get('record_version')!r}")
    ranges = [OffsetRange(int(p["partition"]), int(p["first_offset"]), int(p["last_offset"]), int(p["messages"]))
              for p in doc["partitions"]]
    for r in ranges:
        if not 0 <= r.first <= r.last or not 1 <= r.messages <= r.last - r.first + 1:
            raise ValueError(f"inconsistent offsets record for partition {r.partition}: {r}")
    return doc["topic"], date.fromisoformat(doc["event_date"]), sorted(ranges)


def range_options(topic: str, ranges: list[OffsetRange]) -> dict[str, str]:
    """Spark Kafka batch source options that read exactly the recorded ranges (endingOffsets is exclusive)."""
    ordered = sorted(ranges)
    return {
        "assign": json.dumps({topic: [r.partition for r in ordered]}),
        "startingOffsets": json.dumps({topic: {str(r.partition): r.first for r in ordered}}),
        "endingOffsets": json.dumps({topic: {str(r.partition): r.last + 1 for r in ordered}}),
    }


def availability_problems(ranges: list[OffsetRange], watermarks: dict[int, tuple[int, int]]) -> list[str]:
    """Why Kafka cannot serve the recorded ranges any more, one phrase per partition ([] = it can).

    `watermarks` is partition -> (earliest offset, next offset to be written) as Kafka reports them now."""
    problems = []
    for r in sorted(ranges):
        if r.partition not in watermarks:
            problems.append(f"partition {r.partition} no longer exists (recreated topic?)")
            continue
        low, high = watermarks[r.partition]
        if low > r.first:
            problems.append(f"partition {r.partition}: earliest offset {low} > recorded first offset {r.first} "
                            "(deleted by retention, or the topic was recreated)")
        elif high <= r.last:
            problems.append(f"partition {r.partition}: Kafka ends at offset {high - 1} < recorded last offset "
                            f"{r.last} (the topic was recreated)")
    return problems


def count_problems(ranges: list[OffsetRange], counted: dict[int, int]) -> list[str]:
    """Recorded vs re-read number of the date's messages per partition ([] = identical)."""
    return [f"partition {r.partition}: {counted.get(r.partition, 0)} messages of the date now, {r.messages} recorded"
            for r in sorted(ranges) if counted.get(r.partition, 0) != r.messages]


# ---- Kafka and lake access

# A task's consumer prefetches past the end of its range; at the head of a partition the broker parks that fetch
# for fetch.max.wait.ms (500 ms by default) and the task's next poll waits for it: half a second per task of every
# batch read and micro-batch (a 110-message read of 3 partitions: 1.2 s, 0.2 s with 10 ms). The task's records are
# there already, so a short park costs nothing.
FETCH_MAX_WAIT_MS = "10"


def kafka_options(settings: Settings, **selection: str) -> dict[str, str]:
    """Options of Spark's Kafka source, batch or streaming: the brokers, a refusal to skip messages Kafka no
    longer holds (the pipeline loses nothing silently), a short fetch wait, and `selection`: which messages
    (subscribe or assign, starting/ending offsets, ...)."""
    return {"kafka.bootstrap.servers": settings.kafka_brokers, "failOnDataLoss": "true",
            "kafka.fetch.max.wait.ms": FETCH_MAX_WAIT_MS, **selection}


def watermarks(settings: Settings, topic: str, timeout: float = 15.0) -> dict[int, tuple[int, int]]:
    """partition -> (earliest offset, next offset) of every partition of the topic; {} if it does not exist."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": "tripclick-offsets-probe",
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                for p in sorted(meta.partitions)}
    finally:
        consumer.close()


def offsets_path(root: str, day: date) -> str:
    from processing import lake

    return f"{lake.partition(root, 'bronze/_offsets', day)}/offsets.json"


def read_record(spark: SparkSession, settings: Settings, day: date) -> tuple[str, date, list[OffsetRange]] | None:
    from processing import lake_io

    text = lake_io.read_text(spark, offsets_path(settings.lake_root, day))
    return None if text is None else parse_offsets_record(text)


def write_record(spark: SparkSession, settings: Settings, topic: str, day: date, ranges: list[OffsetRange]) -> None:
    from processing import lake_io

    lake_io.write_text(spark, offsets_path(settings.lake_root, day),
                       offsets_record(topic, day, ranges, datetime.now(timezone.utc)))


def read_date(spark: SparkSession, settings: Settings, topic: str, day: date,
              lookback_hours: float = DEFAULT_LOOKBACK_HOURS, from_earliest: bool = False) -> DataFrame:
    """Discovery read (the first Bronze run of a date, or a deliberate rebuild): Bronze rows (with
    event_date) of the messages of `day` from a timestamp window up to the offsets Kafka ends at NOW
    (pinned per partition, so every action on the frame sees the same messages)."""
    return read_dates(spark, settings, topic, [day], lookback_hours, from_earliest)


def read_dates(spark: SparkSession, settings: Settings, topic: str, days: list[date],
               lookback_hours: float = DEFAULT_LOOKBACK_HOURS, from_earliest: bool = False) -> DataFrame:
    """The discovery read of several dates at once (a backfill): ONE scan of the topic from the window
    of the earliest date up to the offsets Kafka ends at now; Bronze rows of the messages whose pipeline
    date is one of `days`. For one date it is exactly that date's window."""
    if not days:
        raise ValueError("read_dates needs at least one date")
    ends = watermarks(settings, topic)
    if not ends:
        raise RuntimeError(f"Kafka topic {topic} does not exist or has no partitions")
    reader = (spark.read.format("kafka").options(**kafka_options(settings, subscribe=topic))
              .option("endingOffsets", json.dumps({topic: {str(p): high for p, (_, high) in ends.items()}})))
    if from_earliest:
        reader = reader.option("startingOffsets", "earliest")
    else:
        start = min(window_start_ms(day, settings.pipeline_tz, lookback_hours) for day in days)
        reader = (reader.option("startingTimestamp", str(start))
                  .option("startingOffsetsByTimestampStrategy", "latest"))
    rows = transforms.bronze_rows(reader.option("minPartitions", read_tasks(spark)).load(), settings.pipeline_tz)
    if len(days) == 1:
        return rows.where(F.col("event_date") == F.lit(days[0]))
    return rows.where(F.col("event_date").isin(*days))


def empty_bronze(spark: SparkSession, settings: Settings) -> DataFrame:
    """A Bronze frame with no rows and the columns of a discovery read (event_date included)."""
    return transforms.bronze_rows(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA), settings.pipeline_tz)


def read_ranges(spark: SparkSession, settings: Settings, topic: str,
                ranges_by_day: dict[date, list[OffsetRange]]) -> DataFrame:
    """Bronze rows (with event_date) of the messages of each date inside that date's recorded ranges, in ONE read of
    the topic: per partition, from the lowest recorded first offset to the highest last one. Refuses
    (OffsetsUnavailable) when Kafka no longer holds a date's ranges."""
    problems = unavailable(settings, topic, ranges_by_day)
    if problems:
        raise OffsetsUnavailable(f"Kafka topic {topic} no longer holds the recorded offsets of "
                                 + "; ".join(f"{day}: {', '.join(found)}" for day, found in problems.items()))
    spans: dict[int, tuple[int, int]] = {}
    for r in (r for ranges in ranges_by_day.values() for r in ranges):
        first, last = spans.get(r.partition, (r.first, r.last))
        spans[r.partition] = (min(first, r.first), max(last, r.last))
    if not spans:
        return empty_bronze(spark, settings)
    union = [OffsetRange(p, first, last, 0) for p, (first, last) in spans.items()]
    reader = spark.read.format("kafka").options(**kafka_options(settings, **range_options(topic, union)))
    rows = transforms.bronze_rows(reader.option("minPartitions", read_tasks(spark)).load(), settings.pipeline_tz)
    bounds = spark.createDataFrame([(day, r.partition, r.first, r.last) for day, ranges in ranges_by_day.items()
                                    for r in ranges], "event_date date, partition int, first long, last long")
    inside = F.col("offset").between(F.col("first"), F.col("last"))
    return rows.join(F.broadcast(bounds), ["event_date", "partition"]).where(inside).select(*rows.columns)


def unavailable(settings: Settings, topic: str, ranges_by_day: dict[date, list[OffsetRange]]) -> dict[date, list[str]]:
    """The dates whose recorded ranges Kafka can no longer serve, with availability_problems' phrases."""
    ends = watermarks(settings, topic)
    problems = {day: availability_problems(ranges, ends) for day, ranges in ranges_by_day.items() if ranges}
    return {day: found for day, found in problems.items() if found}


def read_tasks(spark: SparkSession) -> str:
    """Spark tasks of a Kafka batch read: by default one per Kafka partition, which leaves cores idle when the
    partitions do not divide among them (3 partitions on 2 cores: the third runs alone)."""
    return str(4 * spark.sparkContext.defaultParallelism)


@dataclass(frozen=True)
class Window:
    """What add_window_arguments parses: the topic (None: KAFKA_TOPIC) and where a first run looks for a date."""
    topic: str | None
    lookback_hours: float
    from_earliest: bool


def add_window_arguments(parser) -> None:
    parser.add_argument("--topic", help="Kafka topic (default KAFKA_TOPIC)")
    parser.add_argument("--lookback-hours", type=float, default=DEFAULT_LOOKBACK_HOURS,
                        help="first run: read messages written up to this long before the date starts (default 24)")
    parser.add_argument("--from-earliest", action="store_true",
                        help="first run: scan the whole retained topic (for dates produced long before they start)")
