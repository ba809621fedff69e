"""Ingestion benchmark (`make bench-ingestion`): a script, never a test.

1. Batch throughput of `python -m ingestion.producer --mode batch` for 1,000,000 generated events on
   the local 3-broker cluster (acks=all, idempotent, lz4), next to Kafka's own ProducerPerformance
   sending the same payloads with the same acks, compression, linger and batch size -> ratio.
2. Realtime pacing lateness (p50/p99) at speed 60 (one server's default day file, 60 s) and at
   speed 1 (the first 30 s of that file's timeline).
The options shrink every part for a smoke run (tests/infrastructure/test_benchmarks.py).

Every run uses fresh topics (3 partitions, RF 3, min ISR 2) and deletes them afterwards. The last
line is machine-readable:
    bench-ingestion: batch_events_per_s=N kafka_perf_events_per_s=M ratio=R realtime_p99_ms=X
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from infrastructure import benchmarks
from infrastructure.settings import REPO_ROOT, Settings, load
from ingestion.generate import DEFAULT_EVENTS_PER_DAY, generate
from ingestion.prepare import Preparer, Timeline, day_file
from ingestion.producer import event_from_line, kafka_config
from messaging.contract import parse_event_ts
from messaging.topics import TopicSpec, admin_client, ensure_topic

BATCH_EVENTS = 1_000_000
PAYLOAD_SAMPLE = 100_000  # distinct payloads ProducerPerformance cycles through
BENCH_DAY = date(2026, 6, 1)
REALTIME_SPEED1_SPAN_S = 30
KAFKA_PERF_CLASS = "org.apache.kafka.tools.ProducerPerformance"
# Producer settings both clients share (librdkafka and the Java client spell these the same).
SHARED_PRODUCER_KEYS = ("acks", "compression.type", "linger.ms", "batch.size", "enable.idempotence")


def log(message: str) -> None:
    print(f"bench-ingestion: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ingestion.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-events", type=int, default=BATCH_EVENTS, help="batch-mode events (default 1M)")
    parser.add_argument("--day-events", type=int, default=DEFAULT_EVENTS_PER_DAY,
                        help="events of the realtime day file (default: the default generated day)")
    parser.add_argument("--realtime-speed", type=float, default=60.0, help="speed of the realtime run (default 60)")
    parser.add_argument("--speed1-seconds", type=float, default=REALTIME_SPEED1_SPAN_S,
                        help="seconds of the timeline replayed at speed 1 (default 30)")
    benchmarks.add_results_option(parser)
    return parser.parse_args(argv)


def prepared_file(work: Path, settings: Settings, events: int, single_server: bool) -> Path:
    """Generated events for BENCH_DAY, prepared; with single_server all of them land in one file."""
    out = work / ("single" if single_server else "split") / str(events)
    target = day_file(out, "server0", BENCH_DAY)
    if not target.exists():
        timeline = Timeline(BENCH_DAY, BENCH_DAY, BENCH_DAY, BENCH_DAY, ZoneInfo(settings.pipeline_tz))
        preparer = Preparer(out, timeline, out / "rejects.jsonl",
                            servers=("server0",) if single_server else ("server0", "server1"))
        generate(out, BENCH_DAY, 1, events, seed=2026, preparer=preparer)
        preparer.finish()
    return target


class Topics:
    """Fresh topics per measurement, deleted at the end."""

    def __init__(self, settings: Settings) -> None:
        self.admin = admin_client(settings)
        self.created: list[str] = []

    def new(self, label: str) -> str:
        name = f"bench_ingestion_{label}_{uuid.uuid4().hex[:8]}"
        ensure_topic(self.admin, TopicSpec(name))
        self.created.append(name)
        return name

    def delete_all(self) -> None:
        if self.created:
            for future in self.admin.delete_topics(self.created, request_timeout=30).values():
                future.result()


def run_producer(settings: Settings, topics: Topics, path: Path, mode: str, speed: float, run_dir: Path) -> dict:
    """The producer CLI as a child process; returns its summary plus the CPU seconds it used."""
    topic = topics.new(mode)
    env = {**os.environ, "KAFKA_BROKERS": settings.kafka_brokers, "KAFKA_TOPIC": topic,
           "KAFKA_DLQ_TOPIC": topics.new(f"{mode}_dlq"), "RUN_DIR": str(run_dir),
           # its own manifest topic: a bench run must never stand in for a pipeline day's manifest
           "KAFKA_MANIFEST_TOPIC": topics.new(f"{mode}_manifests")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-m", "ingestion.producer", "--file", str(path), "--server", "server0",
                             "--mode", mode, "--speed", str(speed)], cwd=REPO_ROOT, env=env, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"producer exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    summary = orjson.loads(result.stdout.decode().strip().splitlines()[-1])
    summary["cpu_s"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)
    return summary


def payload_file(source: Path, target: Path) -> tuple[Path, float]:
    """The first PAYLOAD_SAMPLE messages exactly as our producer sends them; returns (file, mean bytes)."""
    values = []
    with source.open("rb") as lines:
        for raw in lines:
            value, _, _ = event_from_line(raw.rstrip(b"\n"), "server0")
            values.append(value)
            if len(values) == PAYLOAD_SAMPLE:
                break
    target.write_bytes(b"\n".join(values))
    return target, sum(map(len, values)) / len(values)


def kafka_producer_performance(settings: Settings, topics: Topics, payloads: Path, records: int) -> dict:
    config = kafka_config(settings, "server0", "batch")
    props = [f"bootstrap.servers={settings.kafka_brokers}"] + [
        f"{key}={str(config[key]).lower()}" for key in SHARED_PRODUCER_KEYS]
    command = ["java", "-Xmx512m", "-cp", str(REPO_ROOT / ".cache" / "jars" / "kafka" / "*"), KAFKA_PERF_CLASS,
               "--topic", topics.new("kafka_perf"), "--num-records", str(records), "--throughput", "-1",
               "--payload-file", str(payloads), "--producer-props", *props]
    result = subprocess.run(command, capture_output=True, text=True)
    final = [line for line in result.stdout.splitlines() if "records sent" in line]
    if result.returncode != 0 or not final:
        raise RuntimeError(f"ProducerPerformance failed ({result.returncode}): {result.stderr[-2000:]}")
    match = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", final[-1])
    return {"events_per_s": float(match.group(1)), "mb_per_s": float(match.group(2)), "line": final[-1],
            "props": " ".join(props[1:])}


def first_seconds(source: Path, target: Path, seconds: float) -> Path:
    """The lines of `source` within `seconds` of its first event_ts."""
    kept, first = [], None
    with source.open("rb") as lines:
        for raw in lines:
            moment = parse_event_ts(orjson.loads(raw)["event_ts"]).timestamp()
            first = moment if first is None else first
            if moment - first > seconds:
                break
            kept.append(raw)
    target.write_bytes(b"".join(kept))
    return target


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python -m ingestion.bench", *(argv if argv is not None else sys.argv[1:])])
    settings = load()
    work = settings.run_dir / "bench" / "ingestion"
    work.mkdir(parents=True, exist_ok=True)
    load_at_start = benchmarks.load_average()
    log(f"machine: {benchmarks.machine()}, load average {load_at_start}")
    log(f"generating {args.batch_events:,} events (cached under {work})")
    batch_file = prepared_file(work, settings, args.batch_events, single_server=True)
    realtime_file = prepared_file(work, settings, args.day_events, single_server=False)
    topics = Topics(settings)
    try:
        log(f"batch mode, {args.batch_events:,} events ...")
        batch = run_producer(settings, topics, batch_file, "batch", 1.0, work)
        payloads, record_bytes = payload_file(batch_file, work / "payloads.txt")
        log(f"Kafka ProducerPerformance, same payloads (mean {record_bytes:.0f} B) ...")
        kafka = kafka_producer_performance(settings, topics, payloads, args.batch_events)
        log(f"realtime, speed {args.realtime_speed:g} (one server's day: {3600 / args.realtime_speed:.0f} s) ...")
        realtime = run_producer(settings, topics, realtime_file, "realtime", args.realtime_speed, work)
        log(f"realtime, speed 1 (first {args.speed1_seconds:g} s of the same file) ...")
        speed1_file = first_seconds(realtime_file, work / "speed1.json", args.speed1_seconds)
        speed1 = run_producer(settings, topics, speed1_file, "realtime", 1.0, work)
    finally:
        topics.delete_all()
    ratio = batch["events_per_s"] / kafka["events_per_s"]
    realtime_p99 = max(realtime["lateness_p99_ms"], speed1["lateness_p99_ms"])
    print(f"machine: {benchmarks.machine()}, load average {benchmarks.load_average()}")
    print(f"batch producer: {batch['acked']:,} events in {batch['elapsed_s']} s = {batch['events_per_s']:,.0f} "
          f"events/s, {batch['mb_per_s']} MB/s, CPU {batch['cpu_s']} s, of it the Python thread "
          f"{batch['cpu_main_thread_s']} s ({batch['acked'] / batch['cpu_s']:,.0f} events per CPU-second)")
    print(f"kafka ProducerPerformance: {kafka['events_per_s']:,.0f} events/s, {kafka['mb_per_s']} MB/s "
          f"(record {record_bytes:.0f} B, {kafka['props']})")
    for label, run in ((f"speed {args.realtime_speed:g}", realtime), ("speed 1", speed1)):
        print(f"realtime {label}: {run['acked']:,} events in {run['elapsed_s']} s, lateness p50 "
              f"{run['lateness_p50_ms']} ms p99 {run['lateness_p99_ms']} ms max {run['lateness_max_ms']} ms")
    summary = (f"bench-ingestion: batch_events_per_s={batch['events_per_s']:.0f} "
               f"kafka_perf_events_per_s={kafka['events_per_s']:.0f} ratio={ratio:.2f} "
               f"realtime_p99_ms={realtime_p99:.1f}")
    print(summary, flush=True)
    benchmarks.record(command, summary, load_at_start, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
