"""The backfill on the real platform (Kafka x3, Spark, PostgreSQL): dates by backfill and by daily runs, in both
orders on one lake, all give the marts the independent computation of tests/processing/scenario.py gives (so the
two paths agree row for row, and each is idempotent with the other), and a corrupt day file fails its date only,
which is reported while the other dates load.

"Daily run" here is the daily DAG's steps for one date, run as the DAG runs them in order (both producers,
batch_to_bronze, etl_to_gold, check_lake, load_to_postgres, reconcile --stage postgres), without the DAG's
clock: the producers send in batch mode (the DAG's realtime mode only paces the same messages over the hour)
and streaming is left out (the exact Silver is rebuilt from Bronze either way; the stream's rows can only
add copies that the exact dedup removes). The first test runs orchestration.backfill.run as `make backfill`
does (its Spark steps in this process, here on the test's SparkSession; its producers as processes); the
corrupt-date test runs `python -m orchestration.backfill` itself. Private topics, lakes, data folder and dates;
their PostgreSQL rows are deleted.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from datetime import date

import pytest

from gold.database import connect_loader
from messaging.contract import SOURCE_SERVERS
from orchestration import backfill
from tests.processing.helpers import delete_day, delete_topic, new_topic, postgres_rows
from tests.processing.scenario import assert_marts_match, expected_marts

pytestmark = pytest.mark.integration
DAYS = [date(2031, 8, 1), date(2031, 8, 2), date(2031, 8, 3)]  # this module's own dates
BAD_DAYS = [date(2031, 8, 11), date(2031, 8, 12), date(2031, 8, 13)]
EVENTS = 200  # per day, both servers together
DAILY_JOBS = (("batch_to_bronze", []), ("etl_to_gold", []), ("reconcile", ["--stage", "lake"]),
              ("load_to_postgres", []), ("reconcile", ["--stage", "postgres"]))


def generate(out, first: date, days: int) -> None:
    subprocess.run([sys.executable, "-m", "ingestion.generate", "--prepared", "--out", str(out), "--start",
                    first.isoformat(), "--days", str(days), "--events-per-day", str(EVENTS), "--seed", "5"],
                   check=True, capture_output=True)


def delete_results(settings, days) -> None:
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM gold.dq_results WHERE event_date = ANY(%s)", (list(days),))
    conn.close()


@pytest.fixture()
def target(platform, spark, tmp_path, monkeypatch):
    """Points jobs and producers at fresh topics and a lake: call it again for another set."""
    created = []

    def point(name: str) -> dict[str, str]:
        env = {"KAFKA_TOPIC": new_topic(platform, f"bf-{name}"),
               "KAFKA_MANIFEST_TOPIC": new_topic(platform, f"bf-{name}-manifests"),
               "LAKE_ROOT": str(tmp_path / f"lake-{name}")}
        created.extend([env["KAFKA_TOPIC"], env["KAFKA_MANIFEST_TOPIC"]])
        use(env)
        return env

    def use(env: dict[str, str]) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    monkeypatch.setenv("RUN_DIR", str(tmp_path / "run"))  # producer manifests and dead-letter files
    yield point, use
    for name in created:
        delete_topic(platform, name)


def daily_runs(data_dir, days) -> None:
    for day in days:
        for server in ("server0", "server1"):
            run = subprocess.run([sys.executable, "-m", "ingestion.producer", "--file",
                                  str(data_dir / server / f"date={day}" / "events.json"), "--server", server,
                                  "--mode", "batch"], capture_output=True, text=True)
            assert run.returncode == 0, run.stderr[-2000:]
        for job, extra in DAILY_JOBS:
            module = importlib.import_module(f"processing.spark.jobs.{job}")
            assert module.main(["--date", day.isoformat(), *extra]) == 0, (job, day)


def rows_of(settings, days) -> dict:
    return {day: postgres_rows(settings, day) for day in days}


@pytest.fixture()
def clean(platform):
    def wipe():
        for day in DAYS + BAD_DAYS:
            delete_day(platform, day)
        delete_results(platform, DAYS + BAD_DAYS)

    wipe()
    yield
    wipe()


def assert_exact(settings, data_dir, days) -> None:
    """Each date's marts in PostgreSQL against the independent computation over its two day files (the
    generator writes valid, distinct events only: every line is one event of the marts)."""
    for day in days:
        events = [json.loads(line) for server in SOURCE_SERVERS
                  for line in (data_dir / server / f"date={day}" / "events.json").open("rb")]
        assert_marts_match(postgres_rows(settings, day), expected_marts(day, events))


def test_backfill_and_daily_runs_give_the_exact_marts_in_either_order(platform, target, tmp_path, clean):
    point, _ = target
    data_dir = tmp_path / "data"
    generate(data_dir, DAYS[0], len(DAYS))
    point("lake")

    daily_runs(data_dir, DAYS[:1])
    assert_exact(platform, data_dir, DAYS[:1])
    # The first date was run daily, so the backfill sends its files again and Bronze rereads its recorded
    # offsets; the other two are new to the lake. Every date must come out exact, replays removed.
    reasons, _ = backfill.run(DAYS, str(data_dir), tmp_path / "logs")
    assert reasons == {}
    assert_exact(platform, data_dir, DAYS)
    daily_runs(data_dir, DAYS[1:2])  # and a backfilled date run daily afterwards
    assert_exact(platform, data_dir, DAYS)


def test_a_corrupt_day_file_fails_its_date_only_and_is_reported(platform, target, tmp_path, clean, monkeypatch):
    point, _ = target
    data_dir = tmp_path / "data"
    generate(data_dir, BAD_DAYS[0], len(BAD_DAYS))
    bad = BAD_DAYS[1]
    (data_dir / "server1" / f"date={bad}" / "events.json").write_text("{not json\n" * 50)
    point("bad")
    monkeypatch.setenv("DATA_DIR", str(data_dir))

    run = subprocess.run([sys.executable, "-m", "orchestration.backfill", "--start", BAD_DAYS[0].isoformat(),
                          "--end", BAD_DAYS[-1].isoformat()], capture_output=True, text=True)

    out = run.stdout
    assert run.returncode == 1, out[-3000:] + run.stderr[-2000:]
    assert out.rstrip().splitlines()[-1].startswith("backfill: dates=3 ok=2 failed=1 ")
    assert out.rstrip().endswith(f"failed_dates={bad}(producer_server1_failed)")
    assert "producer_server1 | " in out and f"date {bad} (2/3) FAILED exit=" in out  # the producer's own line
    rows = rows_of(platform, BAD_DAYS)
    assert not any(rows[bad].values()), "the bad date reached PostgreSQL"
    for day in (BAD_DAYS[0], BAD_DAYS[2]):
        assert rows[day]["mart_daily_traffic"][0][1] == EVENTS, day  # every event of the good dates loaded
    # the Spark steps never saw the bad date; all five ran in the backfill's process, their stderr in spark.log
    assert (f"batch_to_bronze | [batch_to_bronze] summary dates=2 ok=2 failed=0 "
            f"ok_dates={BAD_DAYS[0]},{BAD_DAYS[2]} ") in out
    spark_log = (tmp_path / "run" / "logs" / "backfill" / "spark.log").read_text()
    assert spark_log.count("backfill: ---- step ") == 5
