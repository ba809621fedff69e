"""Processing benchmark (`make bench-processing`): a script, not a test. Needs the local platform.

Measures on this machine, each job as the DAG runs it (a fresh `python -m` process, JVM start included):
  day sizes (--sizes, default 160k, 1.3M and 5.2M events on one date each): Kafka -> Bronze -> exact Silver
  and marts (etl_to_gold) -> gate (check_lake with its quality suites) -> PostgreSQL (load_to_postgres), at the
  default heap; us_per_event_<size> = the four jobs' wall time / events, flat_<size> = that figure over the
  previous size's (cost per event must not grow with the day: issue 42 wants <= 1.25 from 1.3M to 5.2M);
  bronze_<size>_s / silver_<size>_s of the largest size (Kafka -> Bronze; the exact-Silver step of etl_to_gold)
  day_gold_pg_s                etl_to_gold + load_to_postgres for the first size (both jobs, JVM starts included)
  check_day_s / quality_day_s  the lake gate (reconcile --stage lake, DAG task check_lake) on the first size
                               without its data quality suites (--skip-quality), and what the suites add to it
                               (gate with suites minus gate without, medians of --gate-runs alternated runs
                               each); quality_share_pct = quality_day_s / that size's etl_to_gold
  pg_rows_per_s                rows/s of the COPY transaction of load_to_postgres for the largest size
  stream_p50_s / stream_p95_s  produce -> visible in silver/_stream (committed batch) at a 5 s trigger
The last line is machine-readable. Small options make a smoke run (tests/infrastructure/test_benchmarks.py).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson
from confluent_kafka import Producer

from infrastructure import benchmarks
from infrastructure.settings import load
from messaging import contract
from messaging.topics import TopicSpec, admin_client, ensure_topic
from processing import kafka_source, lake
from processing.spark.jobs.streaming_to_silver import SILVER_QUERY

FIRST_SIZE_DAY = date(2031, 6, 10)  # size n of --sizes is produced on FIRST_SIZE_DAY + n days
STREAM_DAY = date(2031, 6, 3)
DEFAULT_SIZES = "160000,1300000,5200000"
AREAS = (",Oncology", ",Cardiology,Oncology", ",Primary care", "", ",Surgery, Paediatrics")
WORDS = ("cancer", "asthma", "diabetes", "stroke", "covid", "pain", "children", "therapy")


def records(day: date, count: int, seed: int):
    """Synthetic TripClick-like events of one date (15:00-16:00 in Asia/Seoul), built with the contract."""
    rng = random.Random(seed)
    start = datetime(day.year, day.month, day.day, 6, tzinfo=timezone.utc)
    step_ms = 3_600_000 / max(count, 1)
    for i in range(count):
        session = f"s{seed}-{rng.randrange(max(count // 6, 1))}"
        document = rng.randrange(max(count // 4, 1))
        event_ts = contract.format_event_ts(start + timedelta(milliseconds=i * step_ms))
        yield {
            "DateCreated": f"/Date({1420070400000 + rng.randrange(86_400_000)})/", "SessionId": session,
            "DocumentId": document, "Url": f"https://www.tripdatabase.com/doc/{document}",
            "Title": f"Document {document}", "DOI": "", "ClinicalAreas": rng.choice(AREAS),
            "Keywords": " ".join(rng.sample(WORDS, rng.randrange(0, 3))), "Documents": [],
            "event_ts": event_ts, "event_date": day.isoformat(),
            "dedup_key": contract.dedup_key(session, document, event_ts),
            "source_server": rng.choice(contract.SOURCE_SERVERS),
        }


def send(producer: Producer, topic: str, value: bytes) -> None:
    """produce(), waiting for room while the client's queue is full."""
    while True:
        try:
            producer.produce(topic, value=value)
            return
        except BufferError:
            producer.poll(0.05)


def produce(settings, topic: str, values, on_sent=None) -> int:
    producer = Producer({"bootstrap.servers": settings.kafka_brokers, "enable.idempotence": True,
                         "linger.ms": 50, "batch.num.messages": 10000, "compression.type": "lz4"})
    sent = 0
    for value in values:
        send(producer, topic, value)
        if on_sent:
            on_sent(value)
        sent += 1
        if sent % 20000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("producer could not deliver every message")
    return sent


def run_job(job: str, day: date, env: dict, *extra: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", f"processing.spark.jobs.{job}", "--date", day.isoformat(), *extra],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{job} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.monotonic() - started, done.stdout


def gate_seconds(day: date, env: dict, *extra: str) -> tuple[float, str]:
    """check_lake as the DAG runs it. The bench publishes no producer manifests, so the manifest checks fail
    (exit 1) by design; anything else failing (a count or a quality expectation) is a real error."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "processing.spark.jobs.reconcile", "--date", day.isoformat(),
                           "--stage", "lake", *extra], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    summary = re.search(r"summary date=\S+ stage=lake .* failed=(\S+) dq_failed=(\d+)", done.stdout)
    unexpected = summary and [n for n in summary.group(1).split(",")
                              if not n.startswith(("manifest_", "acknowledged_le_bronze"))]
    if not summary or unexpected or summary.group(2) != "0":
        raise RuntimeError(f"check_lake failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def quality_figures(figures: dict, day: date, env: dict, runs: int, first: dict[str, float]) -> None:
    """check_day_s, quality_day_s and quality_share_pct (see the module docstring): medians of `runs` gate runs
    without and with the suites (the day's own gate run is the first with them), alternated, so a passing load
    spike does not decide the difference; `first` is the first size's step seconds."""
    without, with_quality = [], [first["gate"]]
    for n in range(runs):
        without.append(gate_seconds(day, env, "--skip-quality")[0])
        if n < runs - 1:
            with_quality.append(gate_seconds(day, env)[0])
    figures["check_day_s"] = statistics.median(without)
    figures["quality_day_s"] = statistics.median(with_quality) - figures["check_day_s"]
    figures["quality_share_pct"] = 100 * figures["quality_day_s"] / first["etl"]
    print(f"bench: check_lake over {runs} runs each: {' '.join(f'{s:.1f}' for s in with_quality)}s with the quality "
          f"suites, {' '.join(f'{s:.1f}' for s in without)}s without; medians +{figures['quality_day_s']:.1f}s = "
          f"{figures['quality_share_pct']:.0f} % of etl_to_gold ({first['etl']:.1f}s)", flush=True)


def size_label(events: int) -> str:
    return f"{events // 1000}k" if events % 1000 == 0 else str(events)


def day_through_the_pipeline(settings, topic: str, day: date, events: int, env: dict) -> dict[str, float]:
    """One date of `events` events: produced, then Bronze, etl_to_gold, the gate and the load as the DAG runs
    them; the seconds of each job, the exact-Silver step and the load's COPY rate."""
    started = time.monotonic()
    sent = produce(settings, topic, (orjson.dumps(r) for r in records(day, events, seed=events)))
    print(f"bench: produced {sent} events for {day} in {time.monotonic() - started:.1f}s", flush=True)
    steps = {"bronze": run_job("batch_to_bronze", day, env)[0]}
    steps["etl"], out = run_job("etl_to_gold", day, env)
    silver = float(re.search(r"\] silver .* seconds=([\d.]+)", out).group(1))
    steps["gate"] = gate_seconds(day, env)[0]
    steps["load"], out = run_job("load_to_postgres", day, env)
    us_per_event = sum(steps.values()) / events * 1e6
    print(f"bench: {size_label(events)} events: " + " ".join(f"{k}={v:.1f}s" for k, v in steps.items())
          + f" (exact Silver {silver:.1f}s) = {us_per_event:.1f} us/event", flush=True)
    return {**steps, "silver": silver, "us_per_event": us_per_event,
            "pg_rows_per_s": float(re.search(r"rows_per_s=(\d+)", out).group(1))}


def stream_latency(settings, env: dict, root: str, events: int, seconds: float) -> list[float]:
    """Produce `events` spread over `seconds` while the streaming job runs; latency = first time the
    event's micro-batch is committed in silver/_stream minus the moment it was handed to the producer."""
    import pyarrow.parquet as pq

    job = subprocess.Popen([sys.executable, "-m", "processing.spark.jobs.streaming_to_silver", "--date",
                            STREAM_DAY.isoformat(), "--trigger", "5", "--max-runtime", str(seconds + 60)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_dir = Path(lake.silver_stream(root)) / "_spark_metadata"
    while not log_dir.is_dir():  # the job is up once its first (empty) batch committed
        time.sleep(0.2)
    sent_at: dict[str, float] = {}
    values = [orjson.dumps(r) for r in records(STREAM_DAY, events, seed=3)]
    pace = seconds / len(values)

    def paced():
        for value in values:
            sent_at[orjson.loads(value)["dedup_key"]] = time.time()
            yield value
            time.sleep(pace)

    producer = threading.Thread(target=produce, args=(settings, env["KAFKA_TOPIC"], paced()))
    producer.start()
    seen: dict[str, float] = {}
    done_batches: set[str] = set()

    def take_committed_batches() -> None:
        # Batch files are named <id>, every 10th is <id>.compact (it lists all files so far).
        for batch in sorted(p for p in log_dir.glob("*") if p.name.split(".")[0].isdigit()
                            and not p.name.startswith(".") and p.name not in done_batches):
            now = time.time()
            done_batches.add(batch.name)
            for line in batch.read_text().splitlines()[1:]:
                path = json.loads(line)["path"].removeprefix("file://")
                for key in pq.read_table(path, columns=["dedup_key"]).column(0).to_pylist():
                    if key not in seen:
                        seen[key] = now

    ends = None
    # An event behind the stream's watermark is dropped as late (the exact Silver has it) and never shows up:
    # the wait ends when a committed batch has read the topic up to its end, however slow the host.
    while len(seen) < len(values) and job.poll() is None and not (ends and stream_caught_up(root, ends)):
        if ends is None and not producer.is_alive():
            ends = {p: high for p, (_, high) in kafka_source.watermarks(settings, env["KAFKA_TOPIC"]).items()}
        take_committed_batches()
        time.sleep(0.2)
    take_committed_batches()  # the batch that ended the wait, committed after the last look
    producer.join()
    job.terminate()
    job.wait()
    if not seen:
        raise RuntimeError(f"the stream committed none of the {len(values)} events (streaming_to_silver exit "
                           f"{job.returncode}); rerun with the job's output to see why")
    return sorted(seen[k] - sent_at[k] for k in seen if k in sent_at)


def stream_caught_up(root: str, ends: dict[int, int]) -> bool:
    """Whether the silver stream's last committed batch read every partition up to `ends` (its checkpoint's
    offsets file: a version line, the batch metadata, then the Kafka source's {topic: {partition: next offset}})."""
    folder = Path(lake.checkpoint(root, SILVER_QUERY))
    committed = [int(p.name) for p in (folder / "commits").glob("*") if p.name.isdigit()]
    if not committed:
        return False
    source = json.loads((folder / "offsets" / str(max(committed))).read_text().splitlines()[2])
    read = {int(p): n for partitions in source.values() for p, n in partitions.items()}
    return all(read.get(p, 0) >= end for p, end in ends.items())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processing.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"events of each day size, comma-separated (default {DEFAULT_SIZES}; add 10400000 "
                             "for the double-size day)")
    parser.add_argument("--stream-events", type=int, default=3_000, help="0 skips the stream latency run")
    parser.add_argument("--stream-seconds", type=float, default=60)
    parser.add_argument("--gate-runs", type=int, default=3,
                        help="check_lake runs with and without the quality suites (medians; default 3; 0 skips "
                             "the quality figures)")
    benchmarks.add_results_option(parser)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    command = " ".join(["python -m processing.bench", *(argv if argv is not None else sys.argv[1:])])
    load_at_start = benchmarks.load_average()
    settings = load()
    topic = f"bench-processing-{uuid.uuid4().hex[:8]}"
    admin = admin_client(settings)
    ensure_topic(admin, TopicSpec(topic, retention_ms=3600_000))
    root = tempfile.mkdtemp(prefix="bench-lake-")
    env = {**os.environ, "LAKE_ROOT": root, "KAFKA_TOPIC": topic}
    days = [FIRST_SIZE_DAY + timedelta(days=n) for n in range(len(sizes))]
    per_size: dict[int, dict[str, float]] = {}
    figures: dict[str, float] = {}
    try:
        for day, events in zip(days, sizes):
            per_size[events] = day_through_the_pipeline(settings, topic, day, events, env)
        first, largest = per_size[sizes[0]], per_size[sizes[-1]]
        if args.gate_runs:
            quality_figures(figures, days[0], env, args.gate_runs, first)
        if args.stream_events:
            ensure_topic(admin, TopicSpec(f"{topic}-stream", retention_ms=3600_000))
            latencies = stream_latency(settings, {**env, "KAFKA_TOPIC": f"{topic}-stream"}, root,
                                       args.stream_events, args.stream_seconds)
            figures["stream_p50_s"] = percentile(latencies, 0.50)
            figures["stream_p95_s"] = percentile(latencies, 0.95)
            print(f"bench: stream latency over the {len(latencies)} of {args.stream_events} events seen in "
                  "silver/_stream", flush=True)
    finally:
        cleanup(settings, admin, [topic, f"{topic}-stream"], days)
        shutil.rmtree(root, ignore_errors=True)
    print("bench: events     bronze_s     etl_s  silver_s    gate_s    load_s  us/event", flush=True)
    for events, steps in per_size.items():
        print(f"bench: {events:>9} " + " ".join(f"{steps[k]:>9.1f}" for k in
                                                ("bronze", "etl", "silver", "gate", "load", "us_per_event")))
    big = size_label(sizes[-1])
    line = ("bench-processing: "
            + " ".join(f"us_per_event_{size_label(n)}={per_size[n]['us_per_event']:.1f}" for n in sizes)
            + "".join(f" flat_{size_label(n)}={per_size[n]['us_per_event'] / per_size[m]['us_per_event']:.2f}"
                      for m, n in zip(sizes, sizes[1:]))
            + f" bronze_{big}_s={largest['bronze']:.1f} silver_{big}_s={largest['silver']:.1f}"
            + f" day_gold_pg_s={first['etl'] + first['load']:.1f} pg_rows_per_s={largest['pg_rows_per_s']:.0f} "
            + " ".join(f"{k}={figures[k]:.1f}" for k in ("stream_p50_s", "stream_p95_s", "check_day_s",
                                                          "quality_day_s", "quality_share_pct") if k in figures))
    print(line, flush=True)
    benchmarks.record(command, line, load_at_start, args.results)
    return 0


def cleanup(settings, admin, topics: list[str], days: list[date]) -> None:
    from gold.database import connect_loader, delete_dates

    with connect_loader(settings, "bench") as conn, conn.cursor() as cur:
        delete_dates(cur, days)
        cur.execute("DELETE FROM gold.dq_results WHERE event_date = ANY(%s)", (days,))  # written by the gate
    conn.close()
    for future in admin.delete_topics(topics, request_timeout=30).values():
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - a missing topic is fine at cleanup
            print(f"bench: cleanup {exc}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
