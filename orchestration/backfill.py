"""`make backfill START=YYYY-MM-DD END=YYYY-MM-DD`: prepared day files of a range of dates -> PostgreSQL.

    .venv/bin/python -m orchestration.backfill --start 2026-01-02 --end 2026-02-01

Runs `orchestration.steps.BACKFILL_STEPS` — the same list the DAG `tripclick_backfill` is built from — with the
same argv: both producers in batch mode (in parallel processes, one producer run per date), then Bronze, exact
Silver + Gold, the lake gate, the load and the PostgreSQL reconcile, each ONE run of its job for all its dates.
Here the Spark steps run one after the other inside this process on one SparkSession (one Spark application,
one JVM for the whole range: Spark's start and the JIT's warm-up are paid once, not once per step); the DAG runs
each as its own task and process. Every job ends with the summary line of infrastructure.dates; the next step
gets the dates the steps before it finished ok, so a bad date (missing or corrupt file, a failed gate, ...) is
left out of what follows and the others go on. Progress: the steps' own lines prefixed with the task id; the
stderr of each producer goes to RUN_DIR/logs/backfill/<task>.log, that of the Spark steps (and of the JVM) to
RUN_DIR/logs/backfill/spark.log. The last line is
`backfill: dates=N ok=K failed=F seconds=S failed_dates=...` and the exit code is 1 when any date failed.

The pure part (which dates a step works on, which dates failed and where) is shared with the DAG's report task.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

from infrastructure import dates as date_options
from infrastructure.settings import REPO_ROOT, load
from orchestration.steps import BACKFILL_STEPS, SPARK_JOB_IMAGE, Step

Outcome = tuple[list[date], list[date]]  # (ok dates, failed dates) of one step
PREFIX = "backfill:"


# ---- pure: how dates flow through the steps -------------------------------------------------------------

def step_dates(requested: list[date], after: tuple[str, ...], outcomes: dict[str, Outcome | None]) -> list[date]:
    """The dates a step that comes `after` these steps works on: the requested range for a first step, else
    the dates EVERY step it comes after finished ok (a step that did not finish contributes none)."""
    ok = set(requested)
    for upstream in after:
        outcome = outcomes.get(upstream)
        ok &= set(outcome[0]) if outcome else set()
    return sorted(ok)


def outcome_of(step_input: list[date], output: str | None, exit_code: int | None) -> Outcome | None:
    """A finished step's (ok, failed) from its summary line; without one (the process died before its end)
    every input date failed; None when the step never ran."""
    if exit_code is None and output is None:
        return None
    parsed = date_options.parse_summary(output)
    if parsed is None:
        return [], list(step_input)
    return parsed


def failed_dates(requested: list[date], steps: tuple[Step, ...],
                 outcomes: dict[str, Outcome | None]) -> dict[date, str]:
    """Date -> why it did not reach the end: the first step that failed it, or the first step that never
    finished. A date is done when the last step finished it ok."""
    final = outcomes.get(steps[-1].task_id)
    done = set(final[0]) if final else set()
    reasons: dict[date, str] = {}
    for day in sorted(requested):
        if day in done:
            continue
        for step in steps:
            outcome = outcomes.get(step.task_id)
            if outcome is None:
                reasons[day] = f"{step.task_id} did not finish"
                break
            if day in outcome[1]:
                reasons[day] = f"{step.task_id} failed"
                break
        else:
            reasons[day] = "not processed"
    return reasons


def report_line(requested: list[date], reasons: dict[date, str], seconds: float) -> str:
    bad = ",".join(f"{d}({why})".replace(" ", "_") for d, why in sorted(reasons.items()))
    return (f"{PREFIX} dates={len(requested)} ok={len(requested) - len(reasons)} failed={len(reasons)} "
            f"seconds={seconds:.1f} failed_dates={bad or '-'}")


# ---- the local run ----------------------------------------------------------------------------------------

_PRINT_LOCK = threading.Lock()


def process_step(step: Step, argv: list[str], log_dir: Path) -> tuple[str, int]:
    """A step as `python <argv>` in the repository (what the DAG's local runner does); its stdout lines are
    echoed with the task id, its stderr goes to <log_dir>/<task>.log. Returns (stdout, exit code)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    with open(log_dir / f"{step.task_id}.log", "w") as stderr:
        process = subprocess.Popen([sys.executable, *argv], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, errors="replace")
        for line in process.stdout:
            lines.append(line)
            _echo(step.task_id, line)
        code = process.wait()
    return "".join(lines), code


def _echo(task_id: str, line: str, sink=None) -> None:
    with _PRINT_LOCK:
        print(f"{task_id} | {line.rstrip()}", file=sink or sys.stdout, flush=True)


class _StepOutput(io.TextIOBase):
    """What an in-process step prints: kept for its summary line and echoed line by line with its task id."""

    def __init__(self, task_id: str, sink) -> None:
        self.task_id, self.sink, self.parts, self.pending = task_id, sink, [], ""

    def write(self, text: str) -> int:
        self.parts.append(text)
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            _echo(self.task_id, line, self.sink)
        return len(text)

    def text(self) -> str:
        if self.pending:
            _echo(self.task_id, self.pending, self.sink)
            self.pending = ""
        return "".join(self.parts)


_IN_PROCESS = threading.Lock()  # redirect_stdout is process-wide: one in-process step at a time


def in_this_process(step: Step, argv: list[str], log_dir: Path) -> tuple[str, int]:
    """A Spark step as a call of its job's main() in this process, so every Spark step of a run shares one
    SparkSession and JVM (each step's own JVM compiled Spark's hot code again: the JIT used 39 % of their CPU
    at 8 days, see BENCHMARKS.md); the producers as processes (process_step). The step's stdout is echoed and
    returned as a process's would be; its stderr is this process's."""
    if step.image != SPARK_JOB_IMAGE:
        return process_step(step, argv, log_dir)
    with _IN_PROCESS:
        output = _StepOutput(step.task_id, sys.stdout)
        print(f"{PREFIX} ---- step {step.task_id}: {' '.join(argv)}", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(output):
            try:
                code = importlib.import_module(step.module).main(argv[argv.index("-m") + 2:])
            except SystemExit as exc:  # a usage error of the job's argument parser
                code = exc.code if isinstance(exc.code, int) else 2
        return output.text(), code


@contextlib.contextmanager
def stderr_to(path: Path):
    """This process's stderr (file descriptor 2, which the Spark JVM and its Python workers inherit when they
    start) written to `path` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    with open(path, "w") as log:
        sys.stderr.flush()
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _timed(execute, step: Step, argv: list[str], log_dir: Path, results: dict) -> None:
    started = time.monotonic()
    try:
        output, code = execute(step, argv, log_dir)
    except Exception as exc:  # noqa: BLE001 - a step that cannot even start fails its dates, not the backfill
        output, code = f"{type(exc).__name__}: {exc}", 1
    results[step.task_id] = (output, code, time.monotonic() - started)


def run(requested: list[date], data_dir: str, log_dir: Path, steps: tuple[Step, ...] = BACKFILL_STEPS,
        echo=print, execute=in_this_process) -> tuple[dict[date, str], dict[str, float]]:
    """Runs every step (steps whose predecessors are done together, e.g. both producers) with
    `execute(step, argv, log_dir) -> (stdout, exit code)` and returns (failed date -> reason, seconds per
    step)."""
    outcomes: dict[str, Outcome | None] = {}
    seconds: dict[str, float] = {}
    pending = list(steps)
    while pending:
        wave = [s for s in pending if all(u in outcomes for u in s.after)]
        results: dict[str, tuple[str, int, float]] = {}
        threads = []
        inputs = {}
        for step in wave:
            inputs[step.task_id] = step_dates(requested, step.after, outcomes)
            argv = step.render_argv({"data_dir": data_dir,
                                     "dates": ",".join(d.isoformat() for d in inputs[step.task_id])})
            echo(f"{PREFIX} step {step.task_id} started: {len(inputs[step.task_id])} dates")
            thread = threading.Thread(target=_timed, args=(execute, step, argv, log_dir, results))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        for step in wave:
            output, code, took = results.get(step.task_id, (None, None, 0.0))
            outcomes[step.task_id] = outcome_of(inputs[step.task_id], output, code)
            seconds[step.task_id] = took
            ok, bad = outcomes[step.task_id] or ([], [])
            echo(f"{PREFIX} step {step.task_id} finished exit={code} in {took:.1f}s: ok={len(ok)} failed={len(bad)}"
                 + (f" ({','.join(d.isoformat() for d in bad)})" if bad else ""))
            pending.remove(step)
    return failed_dates(requested, steps, outcomes), seconds


def main(argv: list[str] | None = None) -> int:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m orchestration.backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first date (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="last date, included")
    args = parser.parse_args(argv)
    try:
        requested = date_options.date_range(args.start, args.end)
    except ValueError as exc:
        parser.error(str(exc))
    data_dir = str(settings.data_dir if settings.data_dir.is_absolute() else REPO_ROOT / settings.data_dir)
    log_dir = settings.run_dir / "logs" / "backfill"
    started = time.monotonic()
    print(f"{PREFIX} {len(requested)} dates {args.start}..{args.end} data_dir={data_dir} lake={settings.lake_root} "
          f"(stderr of the steps in {log_dir})", flush=True)
    with stderr_to(log_dir / "spark.log"):
        reasons, _ = run(requested, data_dir, log_dir, echo=lambda line: print(line, flush=True))
    for day, why in sorted(reasons.items()):
        print(f"{PREFIX} date {day} FAILED: {why}", flush=True)
    print(report_line(requested, reasons, time.monotonic() - started), flush=True)
    return 1 if reasons else 0


if __name__ == "__main__":
    sys.exit(main())
