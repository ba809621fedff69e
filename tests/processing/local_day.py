"""The local-mode scenario world: one day through real Kafka, Spark and PostgreSQL, with its faults, built once
per test run (the session fixture `local_day` in tests/processing/conftest.py) and read by the stream, live-marts
and pipeline tests.

The history it records, in order:
1. Phase A is in Kafka before the streaming job starts (S1: the live marts on, 1 s trigger); the live tables
   catch up on a fresh lake. Phase B1 (with duplicates of A) follows, paced over 8 s: its clicks reach
   PostgreSQL within seconds, and the 15-minute views are read then.
2. S1 is killed with kill -9 while phase B2 (malformed records, garbage, a whole-file replay of server1, the
   next day's first clicks) is being produced.
3. S2 runs with PostgreSQL unreachable for the live writer: Silver continues (phase C is new to it), the live
   query pauses; S2 exits 0 after its runtime.
4. S3 (PostgreSQL back) replays what the live writer could not commit, drains and stops.
5. The late events are sent; S4, restored from the checkpoint with its watermark, drops them.
6. Manifests, Bronze, exact Silver, Gold, the lake gate, the load and reconcile, in this process; each batch job
   records its outcome in gold.pipeline_runs (read into the world as "pipeline_runs").
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timezone
from datetime import time as clock
from pathlib import Path

from gold import marts
from gold.database import connect_loader
from processing import lake, lake_io, live_sink
from tests.processing.helpers import (delete_day, delete_topic, encode, job_env, new_topic, pipeline_runs,
                                      postgres_rows, produce, produce_keyed, produce_paced, run_in_process)
from tests.processing.scenario import build_day, generate_events, manifests

# The newest live date of the suite but Superset's sample (2099-12-31): the 15-minute views show the newest date.
DAY = date(2098, 5, 7)
EVENTS = 900
OUTAGE_EVENTS = 150  # phase C: sent just before the outage run, so Silver provably continues through it


def query(settings, sql, params=()):
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def live_total(settings) -> int:
    return query(settings, "SELECT COALESCE(SUM(clicks), 0) FROM live.clicks_per_minute WHERE event_date = %s",
                 (DAY,))[0][0]


def minute_of(record) -> datetime:
    ts = datetime.fromisoformat(record["event_ts"].replace("Z", "+00:00"))
    return ts.astimezone(timezone.utc).replace(second=0, microsecond=0)


def committed_batches(root: str) -> int:
    log = Path(lake.silver_stream(root)) / "_spark_metadata"
    return len([p for p in log.glob("*") if p.name.isdigit()]) if log.is_dir() else 0


def discard(settings) -> None:
    with connect_loader(settings) as conn, conn.cursor() as cur:
        live_sink.discard_date(cur, DAY)
    conn.close()
    delete_day(settings, DAY)


def start_stream(env, log: Path, *args):
    """The streaming job in its own process group, output to a file (a full pipe would stall it)."""
    return subprocess.Popen([sys.executable, "-m", "processing.spark.jobs.streaming_to_silver", "--date",
                             DAY.isoformat(), "--trigger", "2", "--quarantine-trigger", "2", "--live-trigger", "1",
                             "--live-retry", "3", *args],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, process=None) -> float | None:
    """Seconds until predicate() holds (polled every 0.2 s), None on timeout or when the process ended."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        if process is not None and process.poll() is not None:
            return None
        time.sleep(0.2)
    return None


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def of_day(values: list[bytes], scenario) -> set[str]:
    """dedup_keys of the distinct valid events of DAY among `values`."""
    import orjson

    keys = set()
    for value in values:
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("dedup_key") in scenario.valid:
            keys.add(record["dedup_key"])
    return keys


def build(settings, spark, workdir: Path):
    """Records the world's history into a dict; yields it, then removes its rows and topics."""
    topic = new_topic(settings, "local-day")
    manifest_topic = new_topic(settings, "local-day-manifests")
    root = str(workdir / "lake")
    logs = workdir / "logs"
    logs.mkdir()
    env = job_env(settings, root, topic, KAFKA_MANIFEST_TOPIC=manifest_topic)
    scenario = build_day(DAY, EVENTS, seed=11)
    outage_events = generate_events(DAY, OUTAGE_EVENTS, seed=7, prefix="c", start_utc=clock(6, 40))
    scenario.valid.update({e["dedup_key"]: e for e in outage_events})
    scenario.messages_of_day += len(outage_events)
    discard(settings)
    phase_a, phase_b = scenario.phases
    b1, b2 = phase_b[:len(phase_b) // 3], phase_b[len(phase_b) // 3:]
    out = {"scenario": scenario, "root": root, "env": env, "settings": settings, "logs": logs}
    started = time.monotonic()

    def phase_done(name: str) -> None:  # printed with a failure's report, and with -s
        print(f"[local-day] {time.monotonic() - started:6.1f}s {name}", flush=True)

    # 1. Phase A before the job starts; the live tables catch up; phase B1 arrives within seconds.
    produce(settings, topic, phase_a)
    running = start_stream(env, logs / "running.log", "--max-runtime", "600")
    out["live_before_b1"] = len(of_day(phase_a, scenario))
    out["catch_up_s"] = wait_for(lambda: live_total(settings) == out["live_before_b1"], 300, running)
    copies_of_a = phase_a[:40]
    scenario.messages_of_day += len(copies_of_a)
    produce_paced(settings, topic, b1 + copies_of_a, seconds=8, chunks=8)
    out["live_after_b1"] = len(of_day(phase_a + b1, scenario))
    out["fresh_s"] = wait_for(lambda: live_total(settings) == out["live_after_b1"], 120, running)
    time.sleep(3)  # a few more (empty) triggers: nothing may be added twice
    out["total_while_running"] = live_total(settings)
    out["top_documents"] = query(settings, "SELECT event_date, window_start, window_end, document_id, clicks, rank "
                                           "FROM live.top_documents_15m ORDER BY rank")
    out["top_areas"] = query(settings, "SELECT event_date, clinical_area, clicks, rank "
                                       "FROM live.top_clinical_areas_15m ORDER BY rank")
    out["view_events"] = [scenario.valid[k] for k in of_day(phase_a + b1, scenario)]

    phase_done("catch-up, phase B1, views read")

    # 2. kill -9 mid-production of phase B2.
    producer = threading.Thread(target=produce_paced, args=(settings, topic, b2, 5, 10))
    producer.start()
    time.sleep(2)
    out["batches_before_kill"] = committed_batches(root)
    os.killpg(running.pid, signal.SIGKILL)  # the driver and its JVM die mid-run, no cleanup
    running.wait()
    out["producer_alive_at_kill"] = producer.is_alive()
    producer.join()
    out["running_log"] = (logs / "running.log").read_text()

    phase_done("kill -9 mid-production")

    # 3. PostgreSQL unreachable for the live writer: Silver must go on, the job exits 0.
    produce(settings, topic, [encode(r) for r in outage_events])
    out["live_before_outage"] = live_total(settings)
    outage = start_stream({**env, "POSTGRES_PORT": str(closed_port())}, logs / "outage.log", "--max-runtime", "8")
    out["outage_exit"] = outage.wait(timeout=400)
    out["outage_log"] = (logs / "outage.log").read_text()
    out["live_after_outage"] = live_total(settings)

    phase_done("outage run")

    # 4. PostgreSQL back: a restart replays what the live writer could not commit, drains and stops.
    restart = start_stream(env, logs / "restart.log", "--max-runtime", "1")
    out["restart_exit"] = restart.wait(timeout=400)
    out["restart_log"] = (logs / "restart.log").read_text()
    out["total_after_restart"] = live_total(settings)
    out["per_minute"] = query(settings, "SELECT minute, source_server, clicks FROM live.clicks_per_minute "
                                        "WHERE event_date = %s ORDER BY 1, 2", (DAY,))

    phase_done("restart")

    # 5. The late events: a fourth run, restored from the checkpoint (watermark included), must drop them.
    produce(settings, topic, scenario.late)
    late = start_stream(env, logs / "late.log", "--max-runtime", "1")
    out["late_stream_exit"] = late.wait(timeout=400)
    out["late_stream_log"] = (logs / "late.log").read_text()
    produce_keyed(settings, manifest_topic, manifests(scenario))

    phase_done("late run")

    # 6. The day's exact path, in this process on the test SparkSession.
    for job in ("batch_to_bronze", "etl_to_gold"):
        assert run_in_process(job, ["--date", DAY.isoformat()], env) == 0, job
    out["check_lake_exit"] = run_in_process("reconcile", ["--date", DAY.isoformat(), "--stage", "lake"], env)
    assert run_in_process("load_to_postgres", ["--date", DAY.isoformat()], env) == 0
    out["reconcile_exit"] = run_in_process("reconcile", ["--date", DAY.isoformat(), "--stage", "postgres"], env)
    out["postgres"] = postgres_rows(settings, DAY)
    out["pipeline_runs"] = pipeline_runs(settings, DAY)  # written by the jobs' report_date, read before any rerun
    out["layers"] = {layer: lake_rows(spark, root, layer) for layer in
                     ("bronze", "silver", "quarantine", *(f"gold/{m}" for m in marts.NAMES))}
    out["exact_total"] = query(settings, "SELECT total_events FROM gold.mart_daily_traffic WHERE event_date = %s",
                               (DAY,))[0][0]
    out["live_after_load"] = query(
        settings, "SELECT (SELECT count(*) FROM live.clicks_per_minute WHERE event_date = %s)"
                  " + (SELECT count(*) FROM live.document_minutes WHERE event_date = %s)"
                  " + (SELECT count(*) FROM live.area_minutes WHERE event_date = %s)", (DAY, DAY, DAY))[0][0]
    phase_done("Bronze, ETL, gate, load, reconcile")
    yield out
    discard(settings)
    delete_topic(settings, topic)
    delete_topic(settings, manifest_topic)


def lake_rows(spark, root: str, layer: str) -> list:
    return sorted(lake_io.read_partition(spark, lake.partition(root, layer, DAY)).collect())
