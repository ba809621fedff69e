"""The pure parts of the backfill: date options and summary line (infrastructure.dates), how dates flow from
step to step and which dates failed where (orchestration.backfill), and the per-date loop of the jobs
(processing.cli.run_per_date) on a fake body."""
from __future__ import annotations

import argparse
from datetime import date

import pytest

from infrastructure import dates
from orchestration import backfill
from orchestration.steps import BACKFILL_STEPS, PLACEHOLDERS
from processing import cli

pytestmark = pytest.mark.unit
D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dates.add_date_arguments(parser)
    return dates.resolve(parser, parser.parse_args(list(argv)))


def test_one_date_is_the_daily_single_date_mode_and_everything_else_a_range():
    single = parse("--date", "2026-01-02")
    assert (single.date, single.dates, single.range_mode) == (D2, [D2], False)
    assert parse("--start", "2026-01-01", "--end", "2026-01-03").dates == [D1, D2, D3]
    assert parse("--date", "2026-01-03", "--date", "2026-01-01").dates == [D1, D3]
    assert parse("--dates", "2026-01-03,2026-01-01,2026-01-03").dates == [D1, D3]
    empty = parse("--dates", "")
    assert (empty.dates, empty.range_mode) == ([], True)


@pytest.mark.parametrize("argv", [[], ["--start", "2026-01-01"], ["--start", "2026-01-03", "--end", "2026-01-01"],
                                  ["--dates", "2026-01-01,nope"]])
def test_a_missing_or_wrong_selection_is_a_usage_error(argv):
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2


def test_the_summary_line_round_trips_and_the_last_one_wins():
    line = dates.summary_line([D1, D2, D3], {D2: "boom"})
    assert line == ("summary dates=3 ok=2 failed=1 ok_dates=2026-01-01,2026-01-03 failed_dates=2026-01-02")
    text = f"[job] {dates.summary_line([D1], {})} seconds=1\nnoise\n[job] {line} seconds=2\n"
    assert dates.parse_summary(text) == ([D1, D3], [D2])
    assert dates.parse_summary("[job] summary date=2026-01-01 rows=3") is None  # a single-date summary


def test_the_backfill_steps_use_known_placeholders_and_every_step_after_the_producers_takes_dates():
    assert "dates" in PLACEHOLDERS
    assert [s.task_id for s in BACKFILL_STEPS] == ["producer_server0", "producer_server1", "batch_to_bronze",
                                                   "etl_to_gold", "check_lake", "load_to_postgres", "reconcile"]
    for step in BACKFILL_STEPS:
        argv = step.render_argv({"dates": "2026-01-01,2026-01-02", "data_dir": "/data"})
        assert argv[argv.index("--dates") + 1] == "2026-01-01,2026-01-02" and "--keep-going" in argv


def test_a_step_gets_the_dates_every_step_before_it_finished_ok():
    outcomes = {"producer_server0": ([D1, D3], [D2]), "producer_server1": ([D1, D2, D3], []),
                "batch_to_bronze": None}
    assert backfill.step_dates([D1, D2, D3], (), outcomes) == [D1, D2, D3]
    assert backfill.step_dates([D1, D2, D3], ("producer_server0", "producer_server1"), outcomes) == [D1, D3]
    assert backfill.step_dates([D1, D2, D3], ("batch_to_bronze",), outcomes) == []  # did not finish


def test_failed_dates_name_the_first_step_that_failed_them_or_did_not_finish():
    requested = [D1, D2, D3]
    outcomes = {s.task_id: ([D1, D3], []) for s in BACKFILL_STEPS}
    outcomes["producer_server1"] = ([D1, D3], [D2])
    assert backfill.failed_dates(requested, BACKFILL_STEPS, outcomes) == {D2: "producer_server1 failed"}
    outcomes["check_lake"] = ([D1], [D3])
    outcomes["load_to_postgres"] = outcomes["reconcile"] = ([D1], [])
    assert backfill.failed_dates(requested, BACKFILL_STEPS, outcomes) == {
        D2: "producer_server1 failed", D3: "check_lake failed"}
    outcomes["reconcile"] = None
    assert backfill.failed_dates(requested, BACKFILL_STEPS, outcomes)[D1] == "reconcile did not finish"
    line = backfill.report_line(requested, {D2: "producer_server1 failed"}, 12.34)
    assert line == ("backfill: dates=3 ok=2 failed=1 seconds=12.3 "
                    "failed_dates=2026-01-02(producer_server1_failed)")


def test_a_step_without_summary_failed_all_its_dates():
    assert backfill.outcome_of([D1, D2], "Traceback ...", 1) == ([], [D1, D2])
    assert backfill.outcome_of([D1, D2], None, None) is None
    assert backfill.outcome_of([D1, D2], f"x\n[job] {dates.summary_line([D1, D2], {D1: 'x'})}", 0) == ([D2], [D1])


@pytest.fixture
def nowhere_to_report(monkeypatch):
    """A fake job's outcomes must not reach the shared Pushgateway or gold.pipeline_runs: nothing listens on the
    discard port."""
    monkeypatch.setenv("PUSHGATEWAY_URL", "")
    monkeypatch.setenv("POSTGRES_PORT", "9")


def test_run_per_date_goes_on_after_a_bad_date_and_names_it(capsys, nowhere_to_report):
    parser = cli.parser("fake", "fake job", several=True)
    seen = []

    def body(_settings, day):
        seen.append(day)
        if day == D2:
            raise ValueError("corrupt day")
        return 0

    assert cli.run_per_date("fake", parser.parse_args(["--start", "2026-01-01", "--end", "2026-01-03"]), body) == 1
    out = capsys.readouterr().out
    assert seen == [D1, D2, D3]
    assert "[fake] date 2026-01-02 FAILED" in out and "ValueError: corrupt day" in out
    assert dates.parse_summary(out) == ([D1, D3], [D2])
    assert cli.run_per_date("fake", parser.parse_args(["--dates", "2026-01-02,2026-01-03", "--keep-going"]),
                            body) == 0


def test_run_per_date_with_one_date_is_the_single_date_run(capsys, nowhere_to_report):
    args = cli.parser("fake", "fake job", several=True).parse_args(["--date", "2026-01-02"])
    assert cli.run_per_date("fake", args, lambda _s, day: 0 if day == D2 else 1) == 0
    assert "summary dates=" not in capsys.readouterr().out
