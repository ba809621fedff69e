"""`make sample-marts`: the marts of a few generated days in PostgreSQL, for a dashboard before the pipeline ran.

    .venv/bin/python -m processing.sample_marts [--start 2025-01-06] [--days 5] [--events-per-day 2000] [--seed 7]
    .venv/bin/python -m processing.sample_marts --start 2025-01-06 --days 5 --delete

The days come from the generator (ingestion.generate --prepared) and go through the pipeline's own code: the
producer's message of each line, then parse and validate, exact dedup, etl_to_gold's builders and
load_to_postgres's one-transaction replace of each date. Only Kafka, Bronze and the stream are left out, and
the lake is a throwaway folder, so neither the real lake nor reconcile ever sees these dates. The rows are
synthetic, not TripClick data.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from gold import marts
from gold.database import connect_loader, delete_dates
from infrastructure.settings import load
from ingestion import generate
from ingestion.producer import event_from_line
from messaging.contract import SOURCE_SERVERS
from processing import lake, lake_io, transforms
from processing.spark.jobs import etl_to_gold, load_to_postgres
from processing.spark.session import build_session

JOB = "sample_marts"


def silver_of(spark, data: Path, day: date, pipeline_tz: str):
    """Exact Silver of one prepared day: each server's lines made into the producer's messages, then read as
    Kafka source rows."""
    messages = []
    for server in SOURCE_SERVERS:
        path = data / server / f"date={day}" / "events.json"
        for line in (path.read_bytes().splitlines() if path.is_file() else ()):
            value, key, _ = event_from_line(line, server)
            messages += [(key.encode(), value)] if value is not None else []
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # a naive timestamp is UTC in the session
    kafka = spark.createDataFrame([(key, value, JOB, 0, offset, now) for offset, (key, value) in enumerate(messages)],
                                  "key binary, value binary, topic string, partition int, offset long, "
                                  "timestamp timestamp")
    parsed = transforms.parse_events(transforms.bronze_rows(kafka, pipeline_tz), pipeline_tz)
    return transforms.exact_silver(parsed)


def load_days(spark, settings, days: list[date], events_per_day: int, seed: int) -> dict[date, dict[str, int]]:
    """Generate `days`, build and load their marts; date -> rows loaded per mart."""
    loaded = {}
    with tempfile.TemporaryDirectory(prefix="tripclick-sample-") as work:
        data = Path(work) / "data"
        generate.main(["--prepared", "--start", days[0].isoformat(), "--days", str(len(days)),
                       "--events-per-day", str(events_per_day), "--seed", str(seed), "--out", str(data)])
        private = dataclasses.replace(settings, lake_root=str(Path(work) / "lake"))
        for day in days:
            silver = silver_of(spark, data, day, settings.pipeline_tz)
            lake_io.replace_partition(silver, lake.partition(private.lake_root, "silver", day))
            etl_to_gold.build_marts(spark, private, day)
            loaded[day], _ = load_to_postgres.load_date(spark, private, day, marts.NAMES)
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"processing.{JOB}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 6),
                        help="first date, YYYY-MM-DD (default 2025-01-06)")
    parser.add_argument("--days", type=int, default=5, choices=range(1, 367), metavar="1..366",
                        help="number of consecutive dates (default 5)")
    parser.add_argument("--events-per-day", type=int, default=2000, help="generated clicks per date (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--delete", action="store_true", help="remove the marts' rows of these dates instead")
    args = parser.parse_args(argv)
    settings = load()
    days = [args.start + timedelta(days=n) for n in range(args.days)]
    if args.delete:
        with connect_loader(settings, JOB) as conn, conn.cursor() as cur:
            deleted = delete_dates(cur, days)
        conn.close()
        print(f"{JOB}: deleted {days[0]}..{days[-1]}: " + " ".join(f"{m}={n}" for m, n in deleted.items()))
        return 0
    spark = build_session(settings, JOB)
    try:
        for day, rows in load_days(spark, settings, days, args.events_per_day, args.seed).items():
            print(f"{JOB}: loaded {day}: " + " ".join(f"{m}={n}" for m, n in rows.items()))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
