"""Live marts benchmark (part of `make bench-processing`): click -> PostgreSQL freshness. A script, not a test.

Runs the streaming job as the DAG does (a fresh `python -m` process, 5 s Silver trigger, 2 s live trigger)
on its own topic and a temporary lake, and produces one pipeline date at the demo's rate (`make demo`:
TIME_SCALE=60 replays a 160,000-event day in 60 s, ~2,700 clicks/s). Clicks are sent in waves every
--wave seconds; every wave has a document id of its own, so the moment its clicks are all counted in
live.document_minutes tells when they became visible in PostgreSQL. Freshness of a click = that moment
minus the moment the click was handed to the Kafka producer (PostgreSQL is polled every 0.2 s, which
adds up to 0.2 s). Also reports the longest pause between two updates of the date's live total while
clicks were arriving, and steady_* = the same percentiles without the clicks of the first --warmup seconds
(the first micro-batches of a fresh JVM are slow). Cleans its topic, lake, live rows and applied-batch record.
`--events 2667 --seconds 60` is the rate of a real-time replay (TIME_SCALE=1: 160,000 clicks an hour). Last line:
  bench-live: events=N rate_per_s=R fresh_p50_s=A fresh_p95_s=B fresh_max_s=C steady_p50_s=D steady_p95_s=E
              update_gap_max_s=G
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from infrastructure import benchmarks
from infrastructure.settings import load, resolve
from messaging.topics import TopicSpec, admin_client, ensure_topic
from orchestration.config import dag_config
from orchestration.steps import STEPS_BY_ID
from processing import live_sink, stream_ready
from processing.bench import percentile, send
from processing.warm_up import SYNTHETIC_DAY, synthetic_clicks

DAY = SYNTHETIC_DAY  # a date no other benchmark or test uses
FIRST_DOCUMENT = 900_000_000  # wave w uses document FIRST_DOCUMENT + w
READY_TOKEN = "bench-live"


def wave_records(wave: int, size: int, total: int, offset: int):
    """`size` valid clicks of DAY on the wave's own document, with event_ts spread over 15:00-16:00 Asia/Seoul."""
    return synthetic_clicks(DAY, FIRST_DOCUMENT + wave, f"Wave {wave}", size, total, offset)


def cleanup(settings, topic: str, root: str, query_id: str | None) -> None:
    with live_sink.connect(settings, timeout=10) as conn, conn.cursor() as cur:
        live_sink.discard_date(cur, DAY)
        if query_id:
            cur.execute("DELETE FROM live.applied_batches WHERE query_id = %s", (query_id,))
    conn.close()
    admin = admin_client(settings)
    for future in admin.delete_topics([topic], request_timeout=30).values():
        future.result()
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="processing.bench_live", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=160_000, help="clicks produced (default: the demo day)")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread over this many seconds (default 60)")
    parser.add_argument("--wave", type=float, default=0.5, help="seconds between waves (default 0.5)")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="steady_* figures leave out clicks of the first seconds (default 20)")
    parser.add_argument("--keep-log", type=Path, help="copy the streaming job's log here (where the time goes)")
    benchmarks.add_results_option(parser)
    args = parser.parse_args(argv)
    command = " ".join(["python -m processing.bench_live", *(argv if argv is not None else sys.argv[1:])])
    load_at_start = benchmarks.load_average()
    settings = load()
    topic = f"bench-live-{uuid.uuid4().hex[:8]}"
    ensure_topic(admin_client(settings), TopicSpec(topic, retention_ms=3600_000))
    root = tempfile.mkdtemp(prefix="tripclick-bench-live-")
    log_path = Path(root) / "stream.log"
    env = {**os.environ, "LAKE_ROOT": root, "KAFKA_TOPIC": topic, "PYTHONUNBUFFERED": "1"}
    with live_sink.connect(settings, timeout=10) as conn, conn.cursor() as cur:
        live_sink.discard_date(cur, DAY)
    conn.close()
    # The DAG's command line (its warm-up included), with this bench's date, runtime and ready token.
    argv = STEPS_BY_ID["streaming_to_silver"].render_argv(
        {"date": DAY.isoformat(), "stream_seconds": str(round(args.seconds + 600)), "run": READY_TOKEN,
         "warm_up_rows": str(dag_config(resolve()).stream_warm_up_rows)})
    job = subprocess.Popen([sys.executable, *argv], env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    query_id = None
    try:
        # As the DAG's wait_for_stream: the first clicks are sent once the stream reports its queries running
        # (not necessarily a micro-batch: they still wait for the Kafka consumers' set-up and the first planning).
        marker = Path(stream_ready.marker_path(root, READY_TOKEN))
        if stream_ready.wait(lambda: marker.exists() or job.poll() is not None,
                             stream_ready.DEFAULT_TIMEOUT_SECONDS) is None or job.poll() is not None:
            raise RuntimeError(f"streaming job did not come up:\n{log_path.read_text()[-3000:]}")
        waves = max(1, round(args.seconds / args.wave))
        size = -(-args.events // waves)
        handed: dict[int, float] = {}
        visible: dict[int, float] = {}
        totals: list[tuple[float, int]] = []
        producing = threading.Event()
        producing.set()

        def poll_postgres() -> None:
            conn = live_sink.connect(settings, timeout=10)
            conn.autocommit = True
            with conn.cursor() as cur:
                while producing.is_set() or len(visible) < len(handed):
                    cur.execute("SELECT document_id - %s, SUM(clicks) FROM live.document_minutes "
                                "WHERE event_date = %s AND document_id >= %s GROUP BY 1",
                                (FIRST_DOCUMENT, DAY, FIRST_DOCUMENT))
                    now = time.time()
                    counted = dict(cur.fetchall())
                    for wave, clicks in counted.items():
                        if wave in handed and clicks >= wave_size[wave]:
                            visible.setdefault(wave, now)
                    totals.append((now, sum(counted.values())))
                    if not producing.is_set() and time.time() - last_sent[0] > 180:
                        break
                    time.sleep(0.2)
            conn.close()

        wave_size: dict[int, int] = {}
        last_sent = [time.time()]
        poller = threading.Thread(target=poll_postgres, daemon=True)
        poller.start()
        producer = Producer({"bootstrap.servers": settings.kafka_brokers, "enable.idempotence": True,
                             "linger.ms": 20, "compression.type": "lz4"})
        begin = time.monotonic()
        sent = 0
        for wave in range(waves):
            target = begin + wave * args.wave
            time.sleep(max(0.0, target - time.monotonic()))
            count = min(size, args.events - sent)
            if count <= 0:
                break
            wave_size[wave] = count
            handed[wave] = time.time()
            for value in wave_records(wave, count, args.events, sent):
                send(producer, topic, value)
            producer.poll(0)
            sent += count
            last_sent[0] = time.time()
        if producer.flush(120):
            raise RuntimeError("producer could not deliver every message")
        produce_seconds = time.monotonic() - begin
        producing.clear()
        poller.join(240)
        found = re.search(r"live_marts query id=(\S+)", log_path.read_text())
        query_id = found.group(1) if found else None
        missing = sorted(set(handed) - set(visible))
        if missing:
            raise RuntimeError(f"{len(missing)} waves never became visible (first {missing[:5]}):\n"
                               f"{log_path.read_text()[-3000:]}")
        fresh = [visible[w] - handed[w] for w in handed for _ in range(wave_size[w])]
        # Steady state: clicks handed over after the first --warmup seconds (the JVM's first batches are slow).
        first = min(handed.values())
        steady = [visible[w] - handed[w] for w in handed if handed[w] - first >= args.warmup
                  for _ in range(wave_size[w])] or fresh
        arriving = [t for t, _ in totals if t <= max(visible.values())]
        changes = [t for (t, n), (_, before) in zip(totals[1:], totals) if n != before and t in arriving]
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        print(f"bench-live: produced {sent} clicks in {produce_seconds:.1f}s ({len(handed)} waves); "
              f"live updates seen {len(changes)}", flush=True)
        line = (f"bench-live: events={sent} rate_per_s={sent / produce_seconds:.0f} "
                f"fresh_p50_s={percentile(fresh, 0.50):.1f} fresh_p95_s={percentile(fresh, 0.95):.1f} "
                f"fresh_max_s={max(fresh):.1f} steady_p50_s={percentile(steady, 0.50):.1f} "
                f"steady_p95_s={percentile(steady, 0.95):.1f} update_gap_max_s={max(gaps, default=0.0):.1f}")
        print(line, flush=True)
        benchmarks.record(command, line, load_at_start, args.results)
        return 0
    finally:
        if job.poll() is None:
            job.send_signal(signal.SIGTERM)
            try:
                job.wait(timeout=180)
            except subprocess.TimeoutExpired:
                job.kill()
        if args.keep_log and log_path.exists():
            shutil.copyfile(log_path, args.keep_log)
        if query_id is None and log_path.exists():
            found = re.search(r"live_marts query id=(\S+)", log_path.read_text())
            query_id = found.group(1) if found else None
        cleanup(settings, topic, root, query_id)


if __name__ == "__main__":
    sys.exit(main())
