"""Command-line plumbing shared by the jobs: --date parsing, grep-able logging, failure -> exit 1."""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from datetime import date
from typing import Callable

from infrastructure.settings import ConfigError, Settings, load


def parser(job: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m processing.spark.jobs.{job}", description=description)
    p.add_argument("--date", required=True, type=date.fromisoformat, help="pipeline date YYYY-MM-DD")
    return p


def log(job: str, message: str) -> None:
    print(f"[{job}] {message}", flush=True)


def run(job: str, body: Callable[[Settings], int]) -> int:
    """Run a job body with settings; any exception becomes one clear error line and exit code 1."""
    started = time.monotonic()
    try:
        settings = load()
        log(job, f"master={settings.spark_master} lake={settings.lake_root} topic={settings.kafka_topic}")
        code = body(settings)
    except ConfigError as exc:
        log(job, f"ERROR configuration: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the job boundary: report and fail, never hide
        traceback.print_exc(file=sys.stderr)
        log(job, f"ERROR {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return 1
    log(job, f"finished exit={code} in {time.monotonic() - started:.1f}s")
    return code
