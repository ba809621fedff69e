"""Every benchmark script end to end at a tiny size on the real platform, so a bench that breaks fails CI
instead of rotting until its next full-size run (`make bench` runs them at full size)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from infrastructure.benchmarks import RESULTS_HEADER, results_file
from infrastructure.settings import REPO_ROOT


# script -> (its tiny arguments, extra environment, the prefix of its machine-readable last line)
BENCHES = {
    "ingestion.bench": (["--batch-events", "2000", "--day-events", "400", "--realtime-speed", "3600",
                         "--speed1-seconds", "1"], {}, "bench-ingestion: batch_events_per_s="),
    "processing.bench": (["--sizes", "300", "--stream-events", "30", "--stream-seconds", "3", "--gate-runs", "0"],
                         {"STREAM_WARM_UP_ROWS": "500"}, "bench-processing: us_per_event_300="),
    "processing.bench_live": (["--events", "200", "--seconds", "4", "--warmup", "1"],
                              {"STREAM_WARM_UP_ROWS": "500"}, "bench-live: events=200 "),
    "orchestration.bench_backfill": (["--days", "1", "--events-per-day", "200"], {},
                                     "bench-backfill: days=1 events=200 "),
}


@pytest.mark.unit
def test_a_results_file_without_the_table_is_refused_before_the_run(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError, match="not a file with the results table"):
        results_file(str(tmp_path / "missing.md"))
    (tmp_path / "notes.md").write_text("# notes\n")
    with pytest.raises(argparse.ArgumentTypeError):
        results_file(str(tmp_path / "notes.md"))


@pytest.mark.integration
@pytest.mark.parametrize("script", BENCHES)
def test_the_bench_runs_end_to_end_and_records_its_row(platform, tmp_path, script):
    args, extra_env, prefix = BENCHES[script]
    results = tmp_path / "BENCHMARKS.md"
    results.write_text(f"# Benchmarks\n\n## Results\n\n{RESULTS_HEADER}\n|---|---|---|---|---|\n")
    run = subprocess.run([sys.executable, "-m", script, *args, "--results", str(results)], cwd=REPO_ROOT,
                         env={**os.environ, "RUN_DIR": str(tmp_path / "run"), **extra_env},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith(prefix), last
    rows = results.read_text().strip().splitlines()[-1:]
    assert rows[0].endswith(f"`{last}` |") and f"`python -m {script} " in rows[0], rows
