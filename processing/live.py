"""Live marts: pure DataFrame functions over the stream's committed Silver rows (no I/O; unit-tested).

Input: rows the `silver_stream` query committed to silver/_stream (valid, deduplicated behind the
watermark), one micro-batch at a time. Each function aggregates that batch at a one-minute grain on the
REPLAY clock `event_ts` (the time the click reaches the pipeline, UTC); processing/live_sink.py adds the
result to the `live` tables of PostgreSQL. The 15-minute top-N views are computed in PostgreSQL from these
per-minute rows (gold/postgres/init/30_live.sql). Definitions: gold/README.md, "Live marts".
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from processing.transforms import NO_AREA, area_display, normalise_area

# Table name -> (key columns, value columns), in PostgreSQL column order (without updated_at).
TABLES = {
    "clicks_per_minute": (("event_date", "minute", "source_server"), ("clicks",)),
    "document_minutes": (("event_date", "minute", "document_id"), ("title", "clicks")),
    "area_minutes": (("event_date", "minute", "clinical_area"), ("clicks", "click_share")),
}


def _minute() -> F.Column:
    return F.date_trunc("minute", F.col("event_ts")).alias("minute")


def clicks_per_minute(events: DataFrame) -> DataFrame:
    """Clicks per (date, minute of event_ts, source server)."""
    return (events.groupBy("event_date", _minute(), "source_server")
            .agg(F.count(F.lit(1)).alias("clicks")))


def document_minutes(events: DataFrame) -> DataFrame:
    """Clicks per (date, minute, document); title = the greatest non-empty title of those clicks (NULL if none),
    as in mart_popular_documents, so a sum over minutes can take MAX(title)."""
    return (events.groupBy("event_date", _minute(), F.col("DocumentId").alias("document_id"))
            .agg(F.max(F.when(F.col("Title") != "", F.col("Title"))).alias("title"),
                 F.count(F.lit(1)).alias("clicks")))


def area_minutes(events: DataFrame) -> DataFrame:
    """Clicks and click shares per (date, minute, clinical area), with mart_clinical_areas' area rules:
    entries matched trimmed/whitespace-collapsed/case-insensitively, shown in title case, once per click,
    '(none)' for a click without any area, each click's share split equally among its areas."""
    keys = F.array_distinct(F.filter(F.transform(F.split(F.coalesce("ClinicalAreas", F.lit("")), ","),
                                                 normalise_area), lambda a: a != ""))
    per_click = events.select("event_date", _minute(), keys.alias("keys"))
    exploded = per_click.select(
        "event_date", "minute",
        F.when(F.size("keys") > 0, F.lit(1.0) / F.size("keys")).otherwise(F.lit(1.0)).alias("share"),
        F.explode(F.when(F.size("keys") > 0, F.col("keys")).otherwise(F.array(F.lit(NO_AREA)))).alias("key"))
    display = F.when(F.col("key") == NO_AREA, F.lit(NO_AREA)).otherwise(area_display(F.col("key")))
    return (exploded.groupBy("event_date", "minute", display.alias("clinical_area"))
            .agg(F.count(F.lit(1)).alias("clicks"), F.sum("share").alias("click_share")))


BUILDERS = {"clicks_per_minute": clicks_per_minute, "document_minutes": document_minutes,
            "area_minutes": area_minutes}


def for_postgres(frame: DataFrame, table: str) -> DataFrame:
    """A live aggregate in its table's column order, `minute` rendered in UTC with an explicit offset
    (the Python side never converts timestamps, so the process time zone cannot shift them)."""
    keys, values = TABLES[table]
    return frame.select(*[F.date_format("minute", "yyyy-MM-dd HH:mm:ssxxx").alias("minute") if c == "minute"
                          else F.col(c) for c in (*keys, *values)])
