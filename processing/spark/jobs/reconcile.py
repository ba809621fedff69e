"""Checks one date across producer manifests, Kafka and every layer down to PostgreSQL; exit 1 on any failure.

Stage `lake` (the gate BEFORE the load; the DAG task check_lake), one stable name per check:
  manifest_complete:<server>        the server's producer manifest for D exists and says complete
  manifest_balanced:<server>        lines_read = acknowledged + dead_lettered + blank_lines + delivery_failed + not_sent
  acknowledged_le_bronze:<server>   acknowledged <= Bronze rows of D with source_server = server
  kafka_eq_bronze                   messages of D in the recorded offset ranges = Bronze rows
  valid_plus_quarantined_eq_bronze  valid (re-validated from Bronze) + quarantined = Bronze rows
  silver_eq_distinct_valid_bronze   Silver rows = distinct dedup_keys of the valid Bronze records
  silver_no_duplicate_dedup_key     Silver rows = distinct dedup_keys in Silver
  gold_total_events_eq_silver       mart_daily_traffic.total_events = Silver rows
  plus the data quality suites of processing/quality.py (Great Expectations on the exact Silver partition and
  every Gold mart): logged as `DQ FAIL|WARN|OK  <suite>/<expectation>`, written to gold.dq_results (the date's
  rows replaced, even when the gate stops) and to Data Docs <LAKE_ROOT>/quality/docs/event_date=D/index.html.
  A failed "fail" expectation fails the gate like a count mismatch; a "warn" one is recorded only.
  --skip-quality runs the count checks alone.
Stage `postgres` (after the load), per mart:
  postgres_eq_gold:<mart>           PostgreSQL rows of D = Gold rows
  postgres_content_eq_gold:<mart>   PostgreSQL rows of D = Gold rows by content: the same fingerprint
                                    (processing/mart_fingerprint.py: a sum per numeric or timestamp column, an md5
                                    digest of the keys and one of whole rows), computed by Spark over the Gold
                                    partition and by one query over gold.<mart>; the detail names what differs
"""
from __future__ import annotations

import contextlib
import functools
import sys
import time
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from gold import marts
from gold.database import connect_loader, rows_of_date
from infrastructure.settings import Settings
from messaging.contract import SOURCE_SERVERS
from monitoring import metrics
from processing import cli, kafka_source, lake, lake_io, manifests, mart_fingerprint, quality, transforms
from processing.mart_fingerprint import Fingerprint
from processing.spark.session import build_session

JOB = "reconcile"
LAKE, POSTGRES, ALL = "lake", "postgres", "all"
MISSING = -1  # a count that could not be taken (its check fails and the log says why)


def counted(frames: dict[date, DataFrame], *aggregates) -> dict[date, Row]:
    """One grouped job over the frames of several dates (each with its event_date): date -> the aggregates' row.
    A date without rows has no entry."""
    if not frames:
        return {}
    union = functools.reduce(DataFrame.unionByName, frames.values())
    return {row.event_date: row for row in union.groupBy("event_date").agg(*aggregates).collect()}


def published(spark, settings, layer: str, days: list[date]) -> dict[date, DataFrame]:
    """The published partitions of a layer for these dates, each with its event_date (a missing one is left out)."""
    frames = {}
    for day in days:
        frame = lake_io.read_partition(spark, lake.partition(settings.lake_root, layer, day))
        if frame is not None:
            frames[day] = frame.withColumn("event_date", F.lit(day))
    return frames


def rows_of(spark, settings, layer: str, days: list[date]) -> dict[date, int]:
    found = counted(published(spark, settings, layer, days), F.count(F.lit(1)).alias("n"))
    return {day: found[day].n if day in found else 0 for day in days}


def kafka_counts(spark, settings, days: list[date]) -> dict[date, int]:
    """Per date, the messages of D inside the offset ranges Bronze recorded (what Bronze must hold), every date of a
    topic in one read; MISSING for a date whose ranges are not recorded, or no longer in Kafka."""
    recorded: dict[str, dict[date, list[kafka_source.OffsetRange]]] = {}
    for day in days:
        record = kafka_source.read_record(spark, settings, day)
        if record is None:
            cli.log(JOB, f"no offsets recorded for {day}: run batch_to_bronze first")
            continue
        topic, _, ranges = record
        recorded.setdefault(topic, {})[day] = ranges
    counts = dict.fromkeys(days, MISSING)
    for topic, ranges_by_day in recorded.items():
        for day, problems in kafka_source.unavailable(settings, topic, ranges_by_day).items():
            cli.log(JOB, f"cannot recount Kafka: topic {topic} no longer holds the recorded offsets of {day}: "
                         + ", ".join(problems))
            del ranges_by_day[day]
        if ranges_by_day:
            messages = kafka_source.read_ranges(spark, settings, topic, ranges_by_day).groupBy("event_date").count()
            found = {row.event_date: row["count"] for row in messages.collect()}
            counts.update({day: found.get(day, 0) for day in ranges_by_day})
    return counts


def lake_counts(spark, settings, days: list[date]) -> dict[date, tuple[dict[str, int], dict[str, int]]]:
    """Per date: (counts, Bronze rows per source_server). Each count is one grouped job over all the dates."""
    one = F.count(F.lit(1))
    kafka_rows = kafka_counts(spark, settings, days)
    bronze = published(spark, settings, "bronze", days)
    valid = F.col("reason").isNull()
    # The server a Bronze row names, valid or not: a valid row's parsed field (the contract allows only the known
    # names), else read from the raw text (parse_events keeps it); reading it from the text for every row cost
    # 4 s per million rows, a quarter of this pass.
    server = F.when(valid, F.col("source_server")).otherwise(F.get_json_object(F.col("value"), "$.source_server"))
    parsed = counted({d: transforms.parse_events(f) for d, f in bronze.items()}, one.alias("bronze_rows"),
                     F.count(F.when(valid, 1)).alias("valid"),
                     F.countDistinct(F.when(valid, F.col("dedup_key"))).alias("distinct_valid_keys"),
                     *[F.count(F.when(server == s, 1)).alias(f"rows_{s}") for s in SOURCE_SERVERS])
    by_server = {day: {s: parsed[day][f"rows_{s}"] for s in SOURCE_SERVERS
                       if day in parsed and parsed[day][f"rows_{s}"]} for day in days}
    silver = counted(published(spark, settings, "silver", days), one.alias("n"),
                     F.countDistinct("dedup_key").alias("keys"))
    traffic = counted(published(spark, settings, "gold/mart_daily_traffic", days), F.sum("total_events").alias("n"))
    quarantined = rows_of(spark, settings, "quarantine", days)
    out = {}
    for day in days:
        p, s = parsed.get(day), silver.get(day)
        counts = {"kafka_messages": kafka_rows[day],
                  "bronze_rows": p.bronze_rows if p else 0, "valid_in_bronze": p.valid if p else 0,
                  "distinct_valid_keys": p.distinct_valid_keys if p else 0, "quarantined": quarantined[day],
                  "silver_rows": s.n if s else 0, "silver_distinct_keys": s.keys if s else 0,
                  "gold_total_events": (traffic[day].n or 0) if day in traffic else 0}
        out[day] = counts, by_server[day]
    return out


@dataclass(frozen=True)
class MartFigures:
    """One side's view of the marts of a date: rows (gold:<mart> or postgres:<mart>), fingerprint per mart."""
    counts: dict[str, int]
    fingerprints: dict[str, Fingerprint]


def gold_figures(spark, settings, days: list[date]) -> dict[date, MartFigures]:
    """Per date: Gold rows (gold:<mart>) and content fingerprint of every mart; one grouped job per mart."""
    out = {day: MartFigures({}, {}) for day in days}
    for mart in marts.MARTS:
        found = counted(published(spark, settings, f"gold/{mart.name}", days), F.count(F.lit(1)).alias("n"),
                        *mart_fingerprint.spark_aggregates(mart))
        for day in days:
            out[day].counts[f"gold:{mart.name}"] = found[day].n if day in found else 0
            out[day].fingerprints[mart.name] = mart_fingerprint.of_spark_row(mart, found.get(day))
    return out


def postgres_figures(settings, day) -> MartFigures:
    """PostgreSQL rows (postgres:<mart>) and content fingerprint of every mart of the date."""
    with connect_loader(settings, JOB) as conn, conn.cursor() as cur:
        counts = {f"postgres:{mart}": rows for mart, rows in rows_of_date(cur, day).items()}
        fingerprints = mart_fingerprint.of_postgres(cur, day)
    conn.close()
    return MartFigures(counts, fingerprints)


def content_checks(postgres: dict[str, Fingerprint], gold: dict[str, Fingerprint]) -> list[tuple[str, bool, str]]:
    """postgres_content_eq_gold:<mart>: every checksum and digest of the mart's fingerprint equal; the detail
    names the parts that differ, with both values."""
    results = []
    for mart in marts.NAMES:
        differ = mart_fingerprint.differences(postgres[mart], gold[mart])
        detail = "; ".join(differ) or f"{len(gold[mart])} checksums and digests equal"
        results.append((f"postgres_content_eq_gold:{mart}", not differ, detail))
    return results


def checks(c: dict[str, int], stages: set[str]) -> list[tuple[str, bool, str]]:
    """(stable check name, ok, detail) of the count equalities of the given stages."""
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
        pairs += [(f"postgres_eq_gold:{m}", c[f"postgres:{m}"], c[f"gold:{m}"]) for m in marts.NAMES]
    return [(name, left == right and left != MISSING, f"{left} vs {right}") for name, left, right in pairs]


def stages_of(stage: str) -> set[str]:
    return {LAKE, POSTGRES} if stage == ALL else {stage}


def quality_gate(spark, settings, day, found: dict[str, bytes | None]) -> list[str]:
    """Run the data quality suites and record them (gold.dq_results, Data Docs); the names of what stops the
    day: failed "fail" expectations, and dq_results_recorded when the results could not be written."""
    started, run_at = time.monotonic(), quality.now()
    results = quality.run_suites(spark, settings, day, quality.volume_band(), day_manifests(day, found))
    for r in results:
        status = "OK  " if r.success else ("FAIL" if r.severity == quality.FAIL else "WARN")
        cli.log(JOB, f"DQ {status} {r.suite}/{r.expectation} [{r.severity}]: {r.observed}")
    stops = [f"{r.suite}/{r.expectation}" for r in results if r.failed]
    try:
        cli.log(JOB, f"data docs: {quality.write_docs(spark, settings.lake_root, day, results, run_at)}")
    except Exception as exc:  # noqa: BLE001 - the page is a report; the verdict stands without it
        cli.log(JOB, f"data docs not written: {type(exc).__name__}: {exc}")
    try:
        quality.record(settings, day, results, run_at)
        cli.log(JOB, f"dq_results: {len(results)} rows of {day} written")
    except Exception as exc:  # noqa: BLE001 - unrecorded results must not pass silently
        cli.log(JOB, f"DQ FAIL dq_results_recorded [fail]: {type(exc).__name__}: {exc}")
        stops.append("dq_results_recorded")
    warned = sum(1 for r in results if r.severity == quality.WARN and not r.success)
    cli.log(JOB, f"DQ summary date={day} expectations={len(results)} failed={sum(r.failed for r in results)} "
                 f"warnings={warned} seconds={time.monotonic() - started:.1f} stops={','.join(stops) or '-'}")
    return stops


def day_manifests(day, found: dict[str, bytes | None]) -> list[dict]:
    """The date's parseable producer manifests (a broken one already fails manifest_complete)."""
    out = []
    for server in SOURCE_SERVERS:
        raw = found.get(manifests.manifest_key(day, server))
        try:
            out += [manifests.parse(raw)] if raw else []
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class GateOptions:
    stage: str  # LAKE, POSTGRES or ALL
    skip_quality: bool
    manifest_topic: str | None


@dataclass(frozen=True)
class RangeCounts:
    """What the gate of several dates computes once for all of them."""
    lake: dict[date, tuple[dict[str, int], dict[str, int]]]
    gold: dict[date, MartFigures]
    manifests: dict[str, bytes | None]


@contextlib.contextmanager
def range_setup(settings, days: list[date], options: GateOptions):
    """Several dates: every count of every date in a few grouped jobs, and the manifest topic read once; yields
    None when that fails (then each date counts on its own, and a bad date fails alone)."""
    stages = stages_of(options.stage)
    if LAKE in stages and not options.skip_quality:
        quality.preload()
    spark, started, shared = build_session(settings, JOB), time.monotonic(), None
    try:
        lake_rows = lake_counts(spark, settings, days) if LAKE in stages else {}
        gold = gold_figures(spark, settings, days) if POSTGRES in stages else {}
        found = manifests.read_latest(settings, manifests.manifest_topic(settings, options.manifest_topic)) \
            if LAKE in stages else {}
        shared = RangeCounts(lake_rows, gold, found)
        cli.log(JOB, f"counted dates={len(days)} seconds={time.monotonic() - started:.1f}")
    except Exception as exc:  # noqa: BLE001 - fall back to one date at a time
        cli.log(JOB, f"counting the range failed ({type(exc).__name__}: {exc}): counting each date on its own")
    yield shared


def check_date(settings: Settings, day: date, options: GateOptions, shared: RangeCounts | None = None) -> int:
    stages = stages_of(options.stage)
    if LAKE in stages and not options.skip_quality:
        quality.preload()  # before the JVM starts: GE's import (seconds of Python) overlaps the whole set-up
    spark = build_session(settings, JOB)
    results, dq_stops = [], []
    if LAKE in stages:
        lake_found, by_server = shared.lake[day] if shared else lake_counts(spark, settings, [day])[day]
        counts = dict(lake_found)
        topic = manifests.manifest_topic(settings, options.manifest_topic)
        found = shared.manifests if shared else manifests.read_latest(settings, topic)
        cli.log(JOB, f"manifests topic={topic} keys={len(found)} bronze_rows_by_server="
                     + ",".join(f"{k}:{v}" for k, v in sorted(by_server.items())))
        results += manifests.manifest_checks(day, SOURCE_SERVERS, found, by_server)
        if not options.skip_quality:
            dq_stops = quality_gate(spark, settings, day, found)
    else:
        counts = {}
    contents = []
    if POSTGRES in stages:
        gold = shared.gold[day] if shared else gold_figures(spark, settings, [day])[day]
        postgres = postgres_figures(settings, day)
        counts.update(gold.counts | postgres.counts)
        contents = content_checks(postgres.fingerprints, gold.fingerprints)
    for name, value in counts.items():
        cli.log(JOB, f"count {name}={value}")
    results += checks(counts, stages) + contents
    for name, ok, detail in results:
        cli.log(JOB, f"{'OK  ' if ok else 'FAIL'} {name}: {detail}")
    failed = [name for name, ok, _ in results if not ok]
    cli.summary(JOB, day, len(results), stage=options.stage, checks=len(results), mismatches=len(failed),
                failed=",".join(failed) or "-", dq_failed=len(dq_stops))
    metrics.push("reconcile", {"stage": options.stage, "date": str(day)},
                 {"checks_failed": len(failed) + len(dq_stops), "checks_total": len(results),
                  "finished_timestamp_seconds": time.time()})
    return 1 if failed or dq_stops else 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0], several=True)
    parser.add_argument("--stage", choices=(LAKE, POSTGRES, ALL), default=ALL,
                        help="lake: the gate before the load (manifests, Kafka, Bronze, quarantine, Silver, Gold); "
                             "postgres: PostgreSQL = Gold per mart (rows and content), after the load; "
                             "all (default): both")
    parser.add_argument("--skip-postgres", action="store_true", help="same as --stage lake")
    parser.add_argument("--skip-quality", action="store_true",
                        help="lake stage without the data quality suites (count checks only)")
    parser.add_argument("--manifest-topic", help="producer manifest topic (default KAFKA_MANIFEST_TOPIC)")
    args = parser.parse_args(argv)
    options = cli.options(GateOptions, args, stage=LAKE if args.skip_postgres else args.stage)
    # several dates: one SparkSession, the counts of all of them taken together, each date checked on its own
    return cli.run_per_date(JOB, args, lambda settings, day, shared: check_date(settings, day, options, shared),
                            setup=lambda settings, days: range_setup(settings, days, options))


if __name__ == "__main__":
    sys.exit(main())
