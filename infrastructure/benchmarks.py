"""One place for benchmark figures: every bench script appends its machine-readable last line to
BENCHMARKS.md with the date, the machine and the command, so the docs never carry prose copies."""
from __future__ import annotations

import argparse
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from infrastructure.settings import REPO_ROOT

BENCHMARKS_FILE = REPO_ROOT / "BENCHMARKS.md"
RESULTS_HEADER = "| date (UTC) | machine | load avg at start | command | result |"


def machine() -> str:
    """Cores, CPU model, memory and Python: the facts a reader needs to compare two rows."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory_gib:.0f} GiB, Python {platform.python_version()}"


def load_average() -> str:
    """1/5/15-minute load: other work on the same cores is what moves these figures most."""
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def results_file(value: str) -> Path:
    """A --results value: an existing file with the results table (checked before a long run, not after it)."""
    path = Path(value)
    if not path.is_file() or RESULTS_HEADER not in path.read_text():
        raise argparse.ArgumentTypeError(f"{path} is not a file with the results table ({RESULTS_HEADER})")
    return path


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """--results: the file whose results table gets the run's row (a smoke run points it at a scratch copy)."""
    parser.add_argument("--results", type=results_file, default=BENCHMARKS_FILE,
                        help="append the result row to this file's results table (default: BENCHMARKS.md)")


def record(command: str, result_line: str, load_at_start: str, path: Path = BENCHMARKS_FILE) -> None:
    """Append one row under the results table (the table is the file's last section)."""
    text = path.read_text()
    if RESULTS_HEADER not in text:
        raise RuntimeError(f"{path} has no results table (header {RESULTS_HEADER!r})")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    row = f"| {when} | {machine()} | {load_at_start} | `{command}` | `{result_line}` |\n"
    path.write_text(text.rstrip("\n") + "\n" + row)
