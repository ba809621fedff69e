"""Pure DataFrame transformations of the processing layer (no I/O; unit-tested on tiny inputs).

Kafka frame -> Bronze rows -> parsed events (valid or with a quarantine reason) -> exact Silver -> marts.
"""
from __future__ import annotations

from datetime import date

import orjson
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from messaging import contract

# Reasons beyond contract.validate()'s '<problem>:<field>' tokens (those are used verbatim).
REASON_EMPTY = "empty_value"
REASON_MALFORMED_JSON = "malformed_json"
REASON_SPARK_PARSE = "unparsable:spark"

BRONZE_COLUMNS = ("key", "value", "topic", "partition", "offset", "kafka_timestamp")
KAFKA_META = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")
SILVER_COLUMNS = (*contract.FIELD_NAMES, "original_ts", *KAFKA_META)
QUARANTINE_COLUMNS = ("reason", "value", "key", *KAFKA_META)
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def validation_reason(value: bytes | None) -> str | None:
    """None for a valid wire message, else the reason token (contract.validate()'s where it applies)."""
    if not value:
        return REASON_EMPTY
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return REASON_MALFORMED_JSON
    return contract.validate(record)


_reason_udf = F.udf(validation_reason, T.StringType())


def bronze_rows(kafka: DataFrame, pipeline_tz: str) -> DataFrame:
    """Kafka source rows -> Bronze columns plus event_date, the pipeline date of each message.

    The date is the value's event_date when it is a well-formed date, else the Kafka timestamp's
    date in PIPELINE_TZ, so even unparsable messages belong to exactly one date.
    """
    claimed = F.get_json_object(F.col("value").cast("string"), "$.event_date")
    from_value = F.when(claimed.rlike(_ISO_DATE), F.to_date(claimed))
    from_kafka = F.to_date(F.from_utc_timestamp(F.col("timestamp"), pipeline_tz))
    return kafka.select(
        "key", "value", "topic", "partition", "offset",
        F.col("timestamp").alias("kafka_timestamp"),
        F.coalesce(from_value, from_kafka).alias("event_date"),
    )


def parse_events(bronze: DataFrame) -> DataFrame:
    """Bronze rows -> contract fields typed, original_ts, Kafka metadata and `reason` (null = valid)."""
    parsed = F.from_json(F.col("value").cast("string"), contract.spark_schema())
    typed = bronze.select(
        _reason_udf(F.col("value")).alias("contract_reason"),
        parsed.alias("event"),
        F.col("value").cast("string").alias("value"),
        F.col("key").cast("string").alias("key"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        "kafka_timestamp",
        F.col("event_date").alias("pipeline_date"),
    ).select("*", "event.*").drop("event")
    millis = F.regexp_extract(F.col("DateCreated"), r"^/Date\((-?\d+)", 1).cast("long")
    typed = (typed.withColumn("event_ts", F.col("event_ts").cast("timestamp"))
             .withColumn("_millis", millis)
             .withColumn("original_ts", F.expr("timestamp_millis(_millis)")).drop("_millis"))
    # Guards against the JVM parser disagreeing with the contract (then the record is quarantined, not lost).
    spark_ok = (F.col("SessionId").isNotNull() & F.col("DocumentId").isNotNull() & F.col("event_ts").isNotNull()
                & F.col("original_ts").isNotNull() & F.col("dedup_key").isNotNull()
                & (F.to_date("event_date") == F.col("pipeline_date")))
    reason = F.coalesce(F.col("contract_reason"), F.when(~spark_ok, F.lit(REASON_SPARK_PARSE)))
    return typed.withColumn("reason", reason).withColumn("event_date", F.col("pipeline_date")).drop(
        "contract_reason", "pipeline_date")


def valid_events(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reason").isNull()).select(*SILVER_COLUMNS)


def quarantined(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS, "event_date")


def exact_dedup(events: DataFrame) -> DataFrame:
    """One row per dedup_key: the copy at the lowest (topic, partition, offset), so reruns pick the same one."""
    first = Window.partitionBy("dedup_key").orderBy(*KAFKA_META[:3])
    return events.withColumn("_copy", F.row_number().over(first)).where("_copy = 1").drop("_copy")


def stream_dedup(events: DataFrame, watermark: str) -> DataFrame:
    """Streaming dedup with bounded state: event_ts is a dedup column, so state older than the
    watermark is evicted (Spark 3.4 has no dropDuplicatesWithinWatermark). dedup_key already
    contains event_ts, so adding it changes nothing about which rows are duplicates."""
    return events.withWatermark("event_ts", watermark).dropDuplicates(["dedup_key", "event_ts"])


# ---- Gold marts: each takes the exact Silver rows of one date and returns the PostgreSQL column order.

def daily_traffic(silver: DataFrame, day: date) -> DataFrame:
    """peak_hour is the UTC hour of the ORIGINAL click (DateCreated) with most events, lowest on ties:
    the replay squeezes every event into 15:00-16:00, so the replay clock carries no hourly signal."""
    by_hour = silver.groupBy(F.hour("original_ts").alias("hour")).count()
    peak = by_hour.orderBy(F.desc("count"), "hour").limit(1).select(F.col("hour").cast("smallint").alias("peak_hour"))
    totals = silver.agg(
        F.count(F.lit(1)).alias("total_events"),
        F.countDistinct("SessionId").alias("unique_sessions"),
        F.countDistinct("DocumentId").alias("unique_documents"),
    )
    return totals.where("total_events > 0").crossJoin(peak).select(
        F.lit(day).alias("event_date"), "total_events", "unique_sessions", "unique_documents", "peak_hour")


def session_analysis(silver: DataFrame, day: date) -> DataFrame:
    """Per session; times are event_ts (the pipeline's event time of the date)."""
    sessions = silver.groupBy(F.col("SessionId").alias("session_id")).agg(
        F.count(F.lit(1)).cast("int").alias("click_count"),
        F.countDistinct("DocumentId").cast("int").alias("unique_docs"),
        F.min("event_ts").alias("first_click_ts"),
        F.max("event_ts").alias("last_click_ts"),
    )
    duration = F.col("last_click_ts").cast("double") - F.col("first_click_ts").cast("double")
    return sessions.select(F.lit(day).alias("event_date"), "session_id", "click_count", "unique_docs",
                           "first_click_ts", "last_click_ts", duration.alias("session_duration_sec"))


def clinical_areas(silver: DataFrame, day: date) -> DataFrame:
    """Comma list split, trimmed, empties dropped; an area listed twice on one click counts once."""
    areas = F.array_distinct(F.filter(F.transform(F.split(F.coalesce("ClinicalAreas", F.lit("")), ","), F.trim),
                                      lambda a: a != ""))
    exploded = silver.select("SessionId", F.explode(areas).alias("clinical_area"))
    return exploded.groupBy("clinical_area").agg(
        F.count(F.lit(1)).alias("click_count"), F.countDistinct("SessionId").alias("unique_sessions"),
    ).select(F.lit(day).alias("event_date"), "clinical_area", "click_count", "unique_sessions")


def popular_documents(silver: DataFrame, day: date) -> DataFrame:
    """Every document clicked that day; rank 1 = most viewed, ties broken by the lower document_id so
    ranks are unique and stable across reruns. title = the greatest non-empty title seen (deterministic)."""
    docs = silver.groupBy(F.col("DocumentId").alias("document_id")).agg(
        F.max(F.when(F.col("Title") != "", F.col("Title"))).alias("title"),
        F.count(F.lit(1)).alias("view_count"),
        F.countDistinct("SessionId").alias("unique_sessions"),
    )
    order = Window.orderBy(F.desc("view_count"), "document_id")
    return docs.select(F.lit(day).alias("event_date"), "document_id", "title", "view_count", "unique_sessions",
                       F.row_number().over(order).alias("rank"))


def normalise_keyword(column: Column) -> Column:
    return F.lower(F.trim(F.regexp_replace(column, r"\s+", " ")))


def search_keywords(silver: DataFrame, day: date) -> DataFrame:
    """searches = distinct sessions using the keyword; empty keywords excluded."""
    keyed = silver.select("SessionId", "DocumentId", normalise_keyword(F.col("Keywords")).alias("keyword")).where(
        F.col("keyword") != "")
    return keyed.groupBy("keyword").agg(
        F.countDistinct("SessionId").alias("searches"),
        F.count(F.lit(1)).alias("clicks"),
        F.countDistinct("DocumentId").alias("unique_documents"),
    ).select(F.lit(day).alias("event_date"), "keyword", "searches", "clicks", "unique_documents")


MART_BUILDERS = {
    "mart_daily_traffic": daily_traffic,
    "mart_session_analysis": session_analysis,
    "mart_clinical_areas": clinical_areas,
    "mart_popular_documents": popular_documents,
    "mart_search_keywords": search_keywords,
}
