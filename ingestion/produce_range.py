"""Batch-mode producer runs of one web server for several dates (the first step of a backfill).

    python -m ingestion.produce_range --server server0 [--data-dir DIR] --start 2026-01-01 --end 2026-01-31

For each date, in order, runs `python -m ingestion.producer --file DIR/<server>/date=D/events.json --server
<server> --mode batch` as its own process (its own manifest, dead-letter file and exit code, exactly as a
single producer run; no real-time pacing). A date whose producer fails (missing or corrupt file, too many
rejected lines, delivery failure) is reported and the next date goes on. Progress: one line per date; the
last line is infrastructure.dates' summary (`summary dates=N ok=K failed=F ok_dates=... failed_dates=...`);
exit 1 if any date failed (0 with --keep-going).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import orjson

from infrastructure import dates
from infrastructure.settings import REPO_ROOT, load
from messaging.contract import SOURCE_SERVERS

PREFIX = "[produce_range]"


def day_file(data_dir: Path, server: str, day) -> Path:
    return data_dir / server / f"date={day.isoformat()}" / "events.json"


def last_json(output: str) -> dict:
    """The producer's JSON summary (its last stdout line), or {} when it printed none."""
    for line in reversed(output.strip().splitlines()):
        try:
            found = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(found, dict):
            return found
    return {}


def main(argv: list[str] | None = None) -> int:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m ingestion.produce_range", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=SOURCE_SERVERS, required=True)
    parser.add_argument("--data-dir", type=Path, default=settings.data_dir,
                        help="prepared files root: <dir>/<server>/date=D/events.json (default DATA_DIR)")
    dates.add_date_arguments(parser)
    args = dates.resolve(parser, parser.parse_args(argv))
    data_dir = args.data_dir if args.data_dir.is_absolute() else REPO_ROOT / args.data_dir
    started = time.monotonic()
    failed, sent = {}, 0
    print(f"{PREFIX} server={args.server} data_dir={data_dir} topic={settings.kafka_topic} dates={len(args.dates)}",
          flush=True)
    for i, day in enumerate(args.dates, 1):
        path = day_file(data_dir, args.server, day)
        day_started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "ingestion.producer", "--file", str(path), "--server", args.server,
                              "--mode", "batch"], capture_output=True, text=True, errors="replace")
        summary = last_json(run.stdout)
        acked = summary.get("acked", 0)
        if run.returncode == 0:
            sent += acked
            outcome = f"ok acknowledged={acked}"
        else:
            tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
            failed[day] = f"exit code {run.returncode}"
            outcome = f"FAILED exit={run.returncode}: {tail}"
        print(f"{PREFIX} date {day} ({i}/{len(args.dates)}) {outcome} in {time.monotonic() - day_started:.1f}s",
              flush=True)
    print(f"{PREFIX} {dates.summary_line(args.dates, failed)} acknowledged={sent} "
          f"seconds={time.monotonic() - started:.1f}", flush=True)
    return 1 if failed and not args.keep_going else 0


if __name__ == "__main__":
    sys.exit(main())
