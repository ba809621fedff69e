"""15:00-16:00 streaming: Kafka -> Silver micro-batches (watermark dedup) and quarantine, restart-safe.

Two queries over the same topic, each with its own checkpoint under <LAKE_ROOT>/checkpoints/:
  silver_stream     valid events, deduplicated on (dedup_key, event_ts) behind an event-time watermark
                    (bounded state), Parquet file sink -> silver/_stream/event_date=D
  quarantine_stream invalid records with reason, raw value and Kafka coordinates -> quarantine/_stream
The first start reads from the earliest offset; later starts resume from the checkpoint. The file sink
commits each micro-batch through its _spark_metadata log, so a batch replayed after a crash (kill -9)
is neither lost nor doubled. --until / --max-runtime / SIGTERM: stop after processing what is available.
--warm-up-rows first runs the transformations on synthetic clicks (processing/warm_up.py), so the first real
micro-batches are not slow; --ready-token then writes the ready marker the DAG waits for before it starts the
producers (processing/stream_ready.py).
A third query, live_marts (--live-trigger, --no-live), reads what silver_stream committed (file source on
silver/_stream) and adds per-minute counts to PostgreSQL schema `live` (processing/live.py, live_sink.py):
exactly once per micro-batch; a PostgreSQL outage only pauses it (logged, counted, retried), never Silver.
"""
from __future__ import annotations

import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.errors import StreamingQueryException

from infrastructure.dates import ISO_DATE
from infrastructure.settings import Settings
from monitoring.stream_listener import MetricsListener
from processing import cli, kafka_source, lake, lake_io, live, live_sink, stream_ready, transforms, warm_up
from processing.spark.session import build_session

JOB = "streaming_to_silver"
DATE_FOLDER = rf"/event_date=({ISO_DATE})/"
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class StreamOptions:
    date: date
    until: str | None  # HH:MM in PIPELINE_TZ
    max_runtime: float | None
    trigger: float
    quarantine_trigger: float
    watermark: str
    topic: str | None
    max_offsets_per_trigger: int
    drain_timeout: float
    live_trigger: float
    live_retry: float
    no_live: bool
    warm_up_rows: int
    ready_token: str | None


def deadline_of(options: StreamOptions, pipeline_tz: str, started: float) -> float | None:
    """Wall-clock deadline (epoch seconds) from --until (HH:MM on --date in PIPELINE_TZ) and --max-runtime."""
    candidates = []
    if options.until:
        hour, minute = (int(p) for p in options.until.split(":"))
        day = options.date
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(pipeline_tz))
        candidates.append(local.timestamp())
    if options.max_runtime is not None:
        candidates.append(started + options.max_runtime)
    return min(candidates) if candidates else None


def counted(frame, name: str):
    """Rows reaching the sink per micro-batch, reported in the query progress (file sinks report none)."""
    return frame.observe(f"{name}_out", F.count(F.lit(1)).alias("rows"))


def file_sink(frame, name: str, path: str, root: str, trigger: dict):
    """One restart-safe Parquet query: counted rows, partitioned by event_date, its checkpoint under the lake.
    `trigger` is DataStreamWriter.trigger's keyword: {"processingTime": "5 seconds"} or {"availableNow": True}."""
    return (counted(frame, name).writeStream.queryName(name).format("parquet").partitionBy("event_date")
            .option("path", path).option("checkpointLocation", lake.checkpoint(root, name))
            .trigger(**trigger).start())


def parsed_source(spark, settings, options: StreamOptions):
    """The topic as parsed events; each query reads it through its own Kafka source and checkpoint."""
    # startingOffsets applies to the first start only; afterwards the checkpoint decides.
    source = (spark.readStream.format("kafka")
              .options(**kafka_source.kafka_options(settings, subscribe=options.topic or settings.kafka_topic,
                                                    startingOffsets="earliest",
                                                    maxOffsetsPerTrigger=str(options.max_offsets_per_trigger)))
              .load())
    return transforms.parse_events(transforms.bronze_rows(source, settings.pipeline_tz))


QUARANTINE_QUERY = "quarantine_stream"
SILVER_QUERY = "silver_stream"


def quarantine_query(spark, settings, options: StreamOptions, trigger: dict):
    return file_sink(transforms.quarantined(parsed_source(spark, settings, options)), QUARANTINE_QUERY,
                     lake.quarantine_stream(settings.lake_root), settings.lake_root, trigger)


def start_queries(spark, settings, options: StreamOptions):
    root = settings.lake_root
    trigger = f"{options.trigger} seconds"
    valid = transforms.valid_events(parsed_source(spark, settings, options))
    silver = file_sink(transforms.stream_dedup(valid, options.watermark), SILVER_QUERY, lake.silver_stream(root),
                       root, {"processingTime": trigger})
    # Nothing live reads the quarantine, and each of its micro-batches parses the input again: fewer, larger
    # batches leave the cores to Silver and the live marts.
    quarantine = quarantine_query(spark, settings, options, {"processingTime": f"{options.quarantine_trigger} seconds"})
    cli.log(JOB, f"input topic={options.topic or settings.kafka_topic} -> output {lake.silver_stream(root)} and "
                 f"{lake.quarantine_stream(root)} trigger={trigger} quarantine_trigger={options.quarantine_trigger}s "
                 f"watermark={options.watermark!r}")
    return [silver, quarantine]


def silver_file_schema(spark, settings):
    """Columns inside the files silver_stream commits: every Silver column but event_date, which is in the folder
    name (event_date=D) only."""
    empty = spark.createDataFrame([], transforms.bronze_rows(
        spark.createDataFrame([], "key binary, value binary, topic string, partition int, offset long, "
                                  "timestamp timestamp"), settings.pipeline_tz).schema)
    schema = transforms.valid_events(transforms.parse_events(empty)).schema
    return T.StructType([f for f in schema.fields if f.name != "event_date"])


def failure_reason(exception) -> str:
    """The Python error inside a failed foreachBatch (Spark wraps it in a Py4J traceback), on one line."""
    lines = [line.strip() for line in str(exception or "stopped").splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return (errors[-1] if errors else lines[0])[:300]


class LiveMarts:
    """The live_marts query: committed silver/_stream files -> per-minute counts -> PostgreSQL schema live.

    A failed write (PostgreSQL down) fails this query only: the micro-batch stays uncommitted in its
    checkpoint; the query is restarted after --live-retry seconds and replays that batch (nothing lost),
    and live_sink skips a batch already committed (nothing doubled). Failures are logged and counted."""

    NAME = "live_marts"

    def __init__(self, spark, settings, options: StreamOptions):
        self.spark, self.settings, self.options = spark, settings, options
        self.schema = silver_file_schema(spark, settings)
        self.query = None
        self.query_id = None
        self.failures = 0
        self.batches = 0
        self.retry_at = 0.0
        self._failure_seen = None

    def start(self) -> None:
        root = self.settings.lake_root
        lake_io.make_dirs(self.spark, lake.silver_stream(root))  # a file source needs its folder to exist
        # event_date from each file's folder (event_date=D). recursiveFileLookup turns Spark's partition inference
        # off: inferred per batch from the folders then present, it would change the source's schema when the
        # query started before Silver wrote its first partition, which Spark refuses ("Invalid batch").
        source = (self.spark.readStream.schema(self.schema).option("recursiveFileLookup", "true").format("parquet")
                  .load(lake.silver_stream(root))
                  .withColumn("event_date", F.to_date(F.regexp_extract(F.input_file_name(), DATE_FOLDER, 1))))
        self.query = (source.writeStream.queryName(self.NAME).foreachBatch(self.write_batch)
                      .option("checkpointLocation", lake.checkpoint(root, self.NAME))
                      .trigger(processingTime=f"{self.options.live_trigger} seconds").start())
        self.query_id = str(self.query.id)
        self._failure_seen = None
        cli.log(JOB, f"live_marts query id={self.query_id} trigger={self.options.live_trigger}s -> PostgreSQL "
                     f"{self.settings.postgres_host}:{self.settings.postgres_port}/{self.settings.postgres_db} "
                     f"schema {live_sink.SCHEMA}")

    def write_batch(self, frame, batch_id: int) -> None:
        started = time.monotonic()
        while self.query_id is None:  # set right after start(); the first batch may be quicker
            time.sleep(0.05)
        frame.persist()
        try:
            rows = {table: [tuple(r) for r in live.for_postgres(build(frame), table).collect()]
                    for table, build in live.BUILDERS.items()}
        finally:
            frame.unpersist()
        conn = live_sink.connect(self.settings)
        try:
            outcome, dates = live_sink.apply_batch(conn, self.query_id, batch_id, rows)
        finally:
            conn.close()
        self.batches += 1
        clicks = sum(r[-1] for r in rows["clicks_per_minute"])
        cli.log(JOB, f"live batch id={batch_id} {outcome} clicks={clicks} dates={','.join(map(str, dates)) or '-'} "
                     f"seconds={time.monotonic() - started:.2f}")

    def tend(self) -> None:
        """Start the query at once (its first batch then comes as soon as Silver commits one); count and log
        a failure once; restart when its retry time has come."""
        if self.query is None:
            self.start()
            return
        if self.query.isActive:
            return
        if self._failure_seen is not self.query:
            self._failure_seen = self.query
            self.failures += 1
            reason = failure_reason(self.query.exception())
            self.retry_at = time.time() + self.options.live_retry
            cli.log(JOB, f"live marts not written (failures={self.failures}): {reason}; "
                         f"Silver continues; retry in {self.options.live_retry:.0f}s or at the next start")
        if time.time() >= self.retry_at:
            self.start()

    def drain(self, timeout: float) -> None:
        """After Silver stopped: count what it committed last (one restart if the query is down), then stop."""
        if self.query is None:
            self.tend()
            if self.query is None:  # Silver wrote nothing: nothing to count
                return
        if not self.query.isActive:
            self.tend()  # counts a failure not seen yet
            self.retry_at = 0.0
            self.tend()  # restarts now: the replayed batch may succeed

        def available():
            try:
                self.query.processAllAvailable()
            except Exception:  # the failure is reported below through query.exception()
                pass

        waiter = threading.Thread(target=available, daemon=True)
        waiter.start()
        waiter.join(timeout)
        self.query.stop()
        if self.query.exception() is not None:
            self.tend()  # counts and logs the failure; the next start of the job replays the batch


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
                    seconds = p["durationMs"].get("triggerExecution", 0) / 1000
                    cli.log(JOB, f"batch query={p['name']} id={p['batchId']} input_rows={p['numInputRows']} "
                                 f"output_rows={self.seen[key][1]} seconds={seconds:.2f}")

    def totals(self, name: str) -> tuple[int, int]:
        rows = [v for (n, _), v in self.seen.items() if n == name]
        return sum(r[0] for r in rows), sum(r[1] for r in rows)


def drain_and_stop(spark, settings, options: StreamOptions, queries: list) -> list:
    """Process what is available now, then stop; returns the queries as they ended.

    Silver: until a trigger finds no new data (its interval is short). The quarantine's interval is long, and
    waiting for its next trigger would hold the day up to that long: it is stopped and run once more with
    Trigger.AvailableNow from its checkpoint, which processes exactly what Kafka holds and ends."""
    ended = []
    for query in queries:
        if query.isActive:
            if query.name == QUARANTINE_QUERY:
                query.stop()
                query = quarantine_query(spark, settings, options, {"availableNow": True})
                waiter = threading.Thread(target=query.awaitTermination, daemon=True)
            else:
                waiter = threading.Thread(target=query.processAllAvailable, daemon=True)
            waiter.start()
            waiter.join(options.drain_timeout)
            if waiter.is_alive():
                cli.log(JOB, f"drain of {query.name} still busy after {options.drain_timeout:.0f}s; stopping "
                             "(checkpoint resumes it)")
            query.stop()  # a failure of either is reported by the caller through query.exception()
        ended.append(query)
    return ended


def stream(settings: Settings, options: StreamOptions) -> int:
    listener = MetricsListener()  # tripclick_stream_* metrics after every micro-batch
    try:
        return run_queries(settings, options, listener)
    finally:
        listener.close()


def run_queries(settings: Settings, options: StreamOptions, listener: MetricsListener) -> int:
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    spark = build_session(settings, JOB, {"spark.sql.streaming.noDataProgressEventInterval": "1000"})
    spark.streams.addListener(listener)
    if options.warm_up_rows:
        seconds = warm_up.warm_up(spark, settings.pipeline_tz, options.watermark, options.warm_up_rows)
        cli.log(JOB, f"warm-up rows={options.warm_up_rows} passes={warm_up.PASSES} seconds={seconds:.1f}")
    # --max-runtime counts from here: whoever waits for the ready marker starts sending only now.
    started = time.time()
    deadline = deadline_of(options, settings.pipeline_tz, started)
    queries = start_queries(spark, settings, options)
    marts = None if options.no_live else LiveMarts(spark, settings, options)
    if marts:
        marts.tend()
    if options.ready_token:
        path = stream_ready.write_marker(spark, settings.lake_root, options.ready_token,
                                         datetime.now(timezone.utc).isoformat())
        cli.log(JOB, f"ready: queries running, marker {path}")
    when = "never (until SIGTERM)" if deadline is None else datetime.fromtimestamp(deadline, timezone.utc).isoformat()
    cli.log(JOB, f"running; stop at {when}")
    tally = ProgressTally()
    while not stop_requested.is_set() and (deadline is None or time.time() < deadline):
        try:
            ended = spark.streams.awaitAnyTermination(POLL_SECONDS)
        except StreamingQueryException:  # raised for a failed query, live_marts included: decided below
            ended = True
        if ended:
            spark.streams.resetTerminated()  # live_marts may have ended; Silver and quarantine decide below
            failed = [q for q in queries if q.exception() is not None]
            if failed:
                raise RuntimeError(f"query {failed[0].name} failed: {failed[0].exception()}")
            if any(not q.isActive for q in queries):
                break
        if marts:
            marts.tend()
        for query in queries:
            tally.update(query)
    cli.log(JOB, "stopping: processing what is available")
    queries = drain_and_stop(spark, settings, options, queries)
    if marts:
        marts.drain(options.drain_timeout)
    for query in queries:
        tally.update(query)
    failed = [q for q in queries if q.exception() is not None]
    if failed:
        raise RuntimeError(f"query {failed[0].name} failed: {failed[0].exception()}")
    silver_in, silver_out = tally.totals(SILVER_QUERY)
    quarantine_in, quarantine_out = tally.totals(QUARANTINE_QUERY)
    cli.log(JOB, f"summary input_rows={silver_in} silver_rows={silver_out} quarantined={quarantine_out} "
                 f"batches={len(tally.seen)} runtime_s={time.time() - started:.0f}"
                 + (f" live_batches={marts.batches} live_failures={marts.failures}" if marts else " live=off"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(JOB, __doc__.splitlines()[0])
    parser.add_argument("--until", help="stop at HH:MM on --date in PIPELINE_TZ")
    parser.add_argument("--max-runtime", type=float,
                        help="stop this many seconds after the queries started (after the warm-up)")
    parser.add_argument("--trigger", type=float, default=5.0, help="micro-batch interval in seconds (default 5)")
    parser.add_argument("--quarantine-trigger", type=float, default=30.0,
                        help="quarantine micro-batch interval in seconds (default 30)")
    parser.add_argument("--watermark", default="10 minutes", help="event-time delay kept in dedup state")
    parser.add_argument("--topic", help="Kafka topic (default KAFKA_TOPIC)")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=500_000)
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds to finish available data after the stop time (default 120)")
    parser.add_argument("--live-trigger", type=float, default=2.0,
                        help="live_marts micro-batch interval in seconds (default 2)")
    parser.add_argument("--live-retry", type=float, default=10.0,
                        help="seconds before the live_marts query is restarted after a failed write (default 10)")
    parser.add_argument("--no-live", action="store_true", help="do not maintain the live marts in PostgreSQL")
    parser.add_argument("--warm-up-rows", type=int, default=0,
                        help="before the queries start, run their transformations on this many synthetic clicks "
                             "so the first micro-batches are not slow (default 0: none; the DAG's step sets it)")
    parser.add_argument("--ready-token", type=stream_ready.ready_token,
                        help="once the queries run, write the ready marker of this token "
                             "(processing/stream_ready.py waits for it)")
    args = parser.parse_args(argv)
    if args.until:
        try:
            datetime.strptime(args.until, "%H:%M")
        except ValueError:
            parser.error(f"--until expects HH:MM, got {args.until!r}")
    options = cli.options(StreamOptions, args)
    return cli.run(JOB, lambda settings: stream(settings, options))


if __name__ == "__main__":
    sys.exit(main())
