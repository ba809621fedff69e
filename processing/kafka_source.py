"""How the batch jobs read one pipeline date from Kafka (shared by batch_to_bronze, reconcile, consumer_batch)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from infrastructure.settings import Settings
from processing import transforms

DEFAULT_LOOKBACK_HOURS = 24.0


def kafka_options(settings: Settings, topic: str) -> dict[str, str]:
    return {"kafka.bootstrap.servers": settings.kafka_brokers, "subscribe": topic}


def window_start_ms(day: date, pipeline_tz: str, lookback_hours: float, now: datetime | None = None) -> int:
    """Earliest Kafka timestamp read for `day`: the earlier of (the day's midnight in PIPELINE_TZ and
    now), minus the lookback. A message of the day cannot be written before both, so nothing of the
    day is missed while older days' traffic is skipped; a backfill of a past day reads from that day on."""
    midnight = datetime.combine(day, time(0), tzinfo=ZoneInfo(pipeline_tz))
    now = now or datetime.now(timezone.utc)
    start = min(midnight, now) - timedelta(hours=lookback_hours)
    return int(start.timestamp() * 1000)


def read_date(spark: SparkSession, settings: Settings, topic: str, day: date,
              lookback_hours: float = DEFAULT_LOOKBACK_HOURS, from_earliest: bool = False) -> DataFrame:
    """Bronze rows (with event_date) of exactly the messages of `day`, from a bounded offset window ending
    at the latest offsets at query start."""
    reader = spark.read.format("kafka").options(**kafka_options(settings, topic)).option("endingOffsets", "latest")
    if from_earliest:
        reader = reader.option("startingOffsets", "earliest")
    else:
        reader = (reader.option("startingTimestamp", str(window_start_ms(day, settings.pipeline_tz, lookback_hours)))
                  .option("startingOffsetsByTimestampStrategy", "latest"))
    rows = transforms.bronze_rows(reader.load(), settings.pipeline_tz)
    return rows.where(F.col("event_date") == F.lit(day))


def add_window_arguments(parser) -> None:
    parser.add_argument("--topic", help="Kafka topic (default KAFKA_TOPIC)")
    parser.add_argument("--lookback-hours", type=float, default=DEFAULT_LOOKBACK_HOURS,
                        help="read messages written up to this long before the date starts (default 24)")
    parser.add_argument("--from-earliest", action="store_true",
                        help="scan the whole retained topic (for dates produced long before they start)")
