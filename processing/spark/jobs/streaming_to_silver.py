"""15:00-16:00 streaming: Kafka -> Silver micro-batches (watermark dedup) and quarantine, restart-safe.

Two queries over the same topic, each with its own checkpoint under <LAKE_ROOT>/checkpoints/:
  silver_stream     valid events, deduplicated on (dedup_key, event_ts) behind an event-time watermark
                    (bounded state), Parquet file sink -> silver/_stream/event_date=D
  quarantine_stream invalid records with reason, raw value and Kafka coordinates -> quarantine/_stream
The first start reads from the earliest offset; later starts resume from the checkpoint. The file sink
commits each micro-batch through its _spark_metadata log, so a batch replayed after a crash (kill -9)
is neither lost nor doubled. --until / --max-runtime / SIGTERM: stop after processing what is available.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import functions as F

from processing import cli, lake, transforms
from processing.spark.session import build_session

JOB = "streaming_to_silver"
POLL_SECONDS = 1.0


def deadline_of(args, pipeline_tz: str, started: float) -> float | None:
    """Wall-clock deadline (epoch seconds) from --until (HH:MM on --date in PIPELINE_TZ) and --max-runtime."""
    candidates = []
    if args.until:
        hour, minute = (int(p) for p in args.until.split(":"))
        local = datetime(args.date.year, args.date.month, args.date.day, hour, minute, tzinfo=ZoneInfo(pipeline_tz))
        candidates.append(local.timestamp())
    if args.max_runtime is not None:
        candidates.append(started + args.max_runtime)
    return min(candidates) if candidates else None


def counted(frame, name: str):
    """Rows reaching the sink per micro-batch, reported in the query progress (file sinks report none)."""
    return frame.observe(f"{name}_out", F.count(F.lit(1)).alias("rows"))


def start_queries(spark, settings, args):
    topic = args.topic or settings.kafka_topic
    source = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", settings.kafka_brokers)
              .option("subscribe", topic)
              .option("startingOffsets", "earliest")  # first start only; afterwards the checkpoint decides
              .option("failOnDataLoss", "true")
              .option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
              .load())
    parsed = transforms.parse_events(transforms.bronze_rows(source, settings.pipeline_tz))
    root = settings.lake_root
    trigger = f"{args.trigger} seconds"
    silver = (counted(transforms.stream_dedup(transforms.valid_events(parsed), args.watermark), "silver_stream")
              .writeStream.queryName("silver_stream").format("parquet").partitionBy("event_date")
              .option("path", lake.silver_stream(root))
              .option("checkpointLocation", lake.checkpoint(root, "silver_stream"))
              .trigger(processingTime=trigger).start())
    quarantine = (counted(transforms.quarantined(parsed), "quarantine_stream")
                  .writeStream.queryName("quarantine_stream").format("parquet").partitionBy("event_date")
                  .option("path", lake.quarantine_stream(root))
                  .option("checkpointLocation", lake.checkpoint(root, "quarantine_stream"))
                  .trigger(processingTime=trigger).start())
    cli.log(JOB, f"input topic={topic} -> output {lake.silver_stream(root)} and {lake.quarantine_stream(root)} "
                 f"trigger={trigger} watermark={args.watermark!r}")
    return [silver, quarantine]


class ProgressTally:
    """Input/output rows per query, summed over micro-batches (each batch id counted once)."""

    def __init__(self):
        self.seen: dict[tuple[str, int], tuple[int, int]] = {}

    def update(self, query) -> None:
        for p in query.recentProgress:
            key = (p["name"], p["batchId"])
            if key not in self.seen:
                observed = p.get("observedMetrics", {}).get(f"{p['name']}_out", {})
                self.seen[key] = (p["numInputRows"], int(observed.get("rows", 0)))
                if p["numInputRows"]:
                    cli.log(JOB, f"batch query={p['name']} id={p['batchId']} input_rows={p['numInputRows']} "
                                 f"output_rows={self.seen[key][1]}")

    def totals(self, name: str) -> tuple[int, int]:
        rows = [v for (n, _), v in self.seen.items() if n == name]
        return sum(r[0] for r in rows), sum(r[1] for r in rows)


def drain_and_stop(queries, timeout: float) -> None:
    """Process what is available now (a trigger that finds no new data must complete), then stop."""
    for query in queries:
        if not query.isActive:
            continue
        waiter = threading.Thread(target=query.processAllAvailable, daemon=True)
        waiter.start()
        waiter.join(timeout)
        if waiter.is_alive():
            cli.log(JOB, f"drain of {query.name} still busy after {timeout:.0f}s; stopping (checkpoint resumes it)")
        query.stop()


def body(settings, args) -> int:
    started = time.time()
    deadline = deadline_of(args, settings.pipeline_tz, started)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    spark = build_session(settings, JOB, {"spark.sql.streaming.noDataProgressEventInterval": "1000"})
    queries = start_queries(spark, settings, args)
    when = "never (until SIGTERM)" if deadline is None else datetime.fromtimestamp(deadline, timezone.utc).isoformat()
    cli.log(JOB, f"running; stop at {when}")
    tally = ProgressTally()
    while not stop_requested.is_set() and (deadline is None or time.time() < deadline):
        if spark.streams.awaitAnyTermination(POLL_SECONDS):
            failed = [q for q in queries if q.exception() is not None]
            if failed:
                raise RuntimeError(f"query {failed[0].name} failed: {failed[0].exception()}")
            break
        for query in queries:
            tally.update(query)
    cli.log(JOB, "stopping: processing what is available")
    drain_and_stop(queries, args.drain_timeout)
    for query in queries:
        tally.update(query)
    failed = [q for q in queries if q.exception() is not None]
    if failed:
        raise RuntimeError(f"query {failed[0].name} failed: {failed[0].exception()}")
    silver_in, silver_out = tally.totals("silver_stream")
    quarantine_in, quarantine_out = tally.totals("quarantine_stream")
    cli.log(JOB, f"summary input_rows={silver_in} silver_rows={silver_out} quarantined={quarantine_out} "
                 f"batches={len(tally.seen)} runtime_s={time.time() - started:.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0])
    parser.add_argument("--until", help="stop at HH:MM on --date in PIPELINE_TZ")
    parser.add_argument("--max-runtime", type=float, help="stop after this many seconds")
    parser.add_argument("--trigger", type=float, default=5.0, help="micro-batch interval in seconds (default 5)")
    parser.add_argument("--watermark", default="10 minutes", help="event-time delay kept in dedup state")
    parser.add_argument("--topic", help="Kafka topic (default KAFKA_TOPIC)")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=500_000)
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds to finish available data after the stop time (default 120)")
    args = parser.parse_args(argv)
    if args.until:
        try:
            datetime.strptime(args.until, "%H:%M")
        except ValueError:
            parser.error(f"--until expects HH:MM, got {args.until!r}")
    return cli.run(JOB, lambda settings: body(settings, args))


if __name__ == "__main__":
    sys.exit(main())
