"""`make bench-backfill`: a month at full TripClick scale through the backfill, and its cost per event.

    .venv/bin/python -m orchestration.bench_backfill [--days 32] [--events-per-day 162500]

Generates 32 prepared days x ~162,500 events (ingestion.generate --prepared: the real dataset's size and the
prepared files' shape; cached under RUN_DIR/bench/backfill/data and reused while the parameters are the same,
generation is not timed), then runs `make backfill`'s command (orchestration.backfill: producers in batch mode
-> Kafka -> Bronze -> exact Silver -> Gold -> gate -> PostgreSQL -> reconcile; the Spark steps in one Spark
application, each run a fresh process and JVM) three times, each on its own fresh topic, manifest topic and
lake: 32 days, 8 days, 1 day (the month first). Every run must end
with every date green (gate and PostgreSQL reconcile), else the bench fails. Prints the seconds per step of
each run (where the time goes) and ends with

    bench-backfill: days=32 events=N end_to_end_s=S us_per_event_1d=A us_per_event_8d=B us_per_event_32d=C

(end_to_end_s = the 32-day run; us_per_event = the run's wall time / its events), also appended to
BENCHMARKS.md. The bench dates' rows are removed from PostgreSQL (unless --keep-rows) and the topics and lakes
deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from infrastructure import benchmarks
from infrastructure.settings import REPO_ROOT, load
from orchestration import backfill
from orchestration.steps import BACKFILL_STEPS

FIRST_DAY = date(2032, 1, 1)  # far from the demo's and the tests' dates: PostgreSQL rows of its own
RUNS = (1, 8, 32)
PREFIX = "[bench-backfill]"
STEP_FINISHED = re.compile(rf"{backfill.PREFIX} step (?P<task>\S+) finished exit=\S+ in (?P<seconds>[0-9.]+)s")


def log(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def generate(data_dir: Path, days: int, events_per_day: int) -> int:
    """Prepared files for `days` dates from FIRST_DAY (reused when already generated with these parameters);
    returns the number of events."""
    stamp = data_dir / "generated.json"
    wanted = {"start": FIRST_DAY.isoformat(), "days": days, "events_per_day": events_per_day, "seed": 42}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        log(f"prepared files present in {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        started = time.monotonic()
        log(f"generating {days} days x {events_per_day:,} events into {data_dir} (not timed) ...")
        subprocess.run([sys.executable, "-m", "ingestion.generate", "--prepared", "--out", str(data_dir),
                        "--start", FIRST_DAY.isoformat(), "--days", str(days), "--events-per-day", str(events_per_day),
                        "--seed", "42"], check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
        stamp.write_text(json.dumps(wanted))
        log(f"generated in {time.monotonic() - started:.0f}s")
    files = data_dir.glob("server*/date=*/events.json")
    return sum(sum(1 for line in path.open("rb") if line.strip()) for path in files)


def events_of(data_dir: Path, days: list[date]) -> int:
    return sum(sum(1 for line in (data_dir / server / f"date={d}" / "events.json").open("rb") if line.strip())
               for d in days for server in ("server0", "server1"))


def delete_rows(settings, first: date, last: date) -> None:
    from gold.database import connect_loader, delete_dates
    from infrastructure.dates import date_range

    with connect_loader(settings, "bench_backfill") as conn, conn.cursor() as cur:
        delete_dates(cur, date_range(first, last))
        cur.execute("DELETE FROM gold.dq_results WHERE event_date BETWEEN %s AND %s", (first, last))
    conn.close()


def one_run(settings, data_dir: Path, work: Path, days: list[date]) -> tuple[float, dict[str, float]]:
    """`python -m orchestration.backfill` (what `make backfill` runs, so each run starts its own JVM) for `days`
    on fresh topics and a fresh lake; (wall seconds, seconds per step from its progress lines)."""
    from messaging.topics import TopicSpec, admin_client, ensure_topic

    tag = uuid.uuid4().hex[:8]
    topic, manifests = f"bench-backfill-{tag}", f"bench-backfill-{tag}-manifests"
    admin = admin_client(settings)
    for name in (topic, manifests):
        ensure_topic(admin, TopicSpec(name))
    lake_root = work / f"lake-{tag}"
    env = {**os.environ, "KAFKA_TOPIC": topic, "KAFKA_MANIFEST_TOPIC": manifests, "LAKE_ROOT": str(lake_root),
           "DATA_DIR": str(data_dir)}
    delete_rows(settings, days[0], days[-1])
    seconds, last = {}, ""
    try:
        started = time.monotonic()
        with subprocess.Popen([sys.executable, "-m", "orchestration.backfill", "--start", days[0].isoformat(),
                               "--end", days[-1].isoformat()], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              text=True, errors="replace") as process:
            for line in process.stdout:
                log(line.rstrip())
                finished = STEP_FINISHED.match(line)
                if finished:
                    seconds[finished["task"]] = float(finished["seconds"])
                last = line.strip() or last
        wall = time.monotonic() - started
    finally:
        for future in admin.delete_topics([topic, manifests], request_timeout=30).values():
            try:
                future.result()
            except Exception:  # noqa: BLE001 - cleanup only
                pass
        shutil.rmtree(lake_root, ignore_errors=True)
    if process.returncode != 0:
        raise RuntimeError(f"the backfill of {len(days)} dates exited {process.returncode}: {last}")
    return wall, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.bench_backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=32)
    parser.add_argument("--events-per-day", type=int, default=162_500)
    parser.add_argument("--keep-rows", action="store_true",
                        help="leave the bench dates' rows in PostgreSQL, for dashboard screenshots (the next run "
                             "without it removes them)")
    benchmarks.add_results_option(parser)
    args = parser.parse_args(argv)
    command = " ".join(["python -m orchestration.bench_backfill", *(argv if argv is not None else sys.argv[1:])])
    settings = load()
    runs = tuple(n for n in RUNS if n < args.days) + (args.days,)
    order = sorted(runs, reverse=True)  # the month first: its figure is the one that must not be missing
    work = settings.run_dir / "bench" / "backfill"
    data_dir = work / "data"
    work.mkdir(parents=True, exist_ok=True)
    load_at_start = benchmarks.load_average()
    log(f"machine: {benchmarks.machine()}, load average {load_at_start}")
    total = generate(data_dir, args.days, args.events_per_day)
    log(f"{total:,} events in {args.days} days")
    all_days = [FIRST_DAY + timedelta(days=i) for i in range(args.days)]
    results = {}
    try:
        for n in order:
            days = all_days[:n]
            events = events_of(data_dir, days)
            log(f"run: {n} days, {events:,} events ...")
            wall, seconds = one_run(settings, data_dir, work, days)
            results[n] = (events, wall, seconds)
            log(f"run {n} days: {wall:.1f}s, {wall / events * 1e6:.1f} us/event; per step: "
                + " ".join(f"{step.task_id}={seconds.get(step.task_id, 0):.0f}s" for step in BACKFILL_STEPS))
    finally:
        if not args.keep_rows:
            delete_rows(settings, all_days[0], all_days[-1])
    log("where the time goes (seconds per step; producers run in parallel):")
    log("step               " + " ".join(f"{n:>8}d" for n in runs))
    for step in BACKFILL_STEPS:
        log(f"{step.task_id:<18} " + " ".join(f"{results[n][2].get(step.task_id, 0):>9.1f}" for n in runs))
    per_event = {n: results[n][1] / results[n][0] * 1e6 for n in runs}
    line = (f"bench-backfill: days={args.days} events={results[args.days][0]} end_to_end_s={results[args.days][1]:.1f} "
            + " ".join(f"us_per_event_{n}d={per_event[n]:.1f}" for n in runs))
    print(line, flush=True)
    benchmarks.record(command, line, load_at_start, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
