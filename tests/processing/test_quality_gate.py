"""The data quality gate on real pipeline runs: one small day goes through Bronze, ETL, the gate and the load
once; then each test breaks one "fail" expectation in a private copy of the lake and runs the gate and the
load the way the DAG does (the load only after a green gate). A stopped day leaves PostgreSQL's marts exactly
as they were and still records its results in gold.dq_results; a warn-only day loads and records the warning."""
from __future__ import annotations

import json
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from gold import marts
from gold.database import connect_loader
from processing import lake, lake_io, quality
from tests.processing.helpers import (delete_day, delete_topic, lake_copy, postgres_rows, republish, run_in_process,
                                      stage_day)

pytestmark = pytest.mark.integration
DAY = date(2031, 5, 12)


def dq_rows(settings, day: date) -> dict[tuple[str, str], tuple[str, bool, str]]:
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT suite, expectation, severity, success, observed_value FROM gold.dq_results "
                    "WHERE event_date = %s", (day,))
        rows = {(s, e): (sev, ok, obs) for s, e, sev, ok, obs in cur.fetchall()}
    conn.close()
    return rows


def delete_results(settings, day: date) -> None:
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM gold.dq_results WHERE event_date = %s", (day,))
    conn.close()


def gate_then_load(env, capsys) -> tuple[int, set[str], set[str], str]:
    """check_lake, then load_to_postgres only if it passed (as the DAG); (gate code, DQ FAIL, DQ WARN, log)."""
    capsys.readouterr()
    code = run_in_process("reconcile", ["--date", DAY.isoformat(), "--stage", "lake"], env)
    if code == 0:
        assert run_in_process("load_to_postgres", ["--date", DAY.isoformat()], env) == 0
    out = capsys.readouterr().out
    return (code, set(re.findall(r"\[reconcile\] DQ FAIL (\S+) ", out)),
            set(re.findall(r"\[reconcile\] DQ WARN (\S+) ", out)), out)


@pytest.fixture(scope="module")
def built(platform, spark_session, tmp_path_factory):
    """One small day through Bronze, ETL, the gate and the load; times the ETL and the gate."""
    root = str(tmp_path_factory.mktemp("lake-dq"))
    _, env, topics = stage_day(platform, root, "proc-dq", DAY, 60, seed=11)
    delete_results(platform, DAY)
    assert run_in_process("batch_to_bronze", ["--date", DAY.isoformat()], env) == 0
    started = time.monotonic()
    assert run_in_process("etl_to_gold", ["--date", DAY.isoformat()], env) == 0
    etl_seconds = time.monotonic() - started
    yield {"root": root, "env": env, "settings": platform, "etl_seconds": etl_seconds}
    delete_day(platform, DAY)
    delete_results(platform, DAY)
    for name in topics:
        delete_topic(platform, name)


@pytest.fixture(scope="module")
def loaded(built):
    """The clean day through the gate and the load: what must stay when a later run of the day is stopped."""
    started = time.monotonic()
    code = run_in_process("reconcile", ["--date", DAY.isoformat(), "--stage", "lake"], built["env"])
    gate_seconds = time.monotonic() - started
    assert code == 0
    assert run_in_process("load_to_postgres", ["--date", DAY.isoformat()], built["env"]) == 0
    print(f"[timing] etl_to_gold {built['etl_seconds']:.1f}s, gate (count checks + DQ suites) {gate_seconds:.1f}s")
    return {**built, "marts": postgres_rows(built["settings"], DAY), "gate_seconds": gate_seconds}


@pytest.fixture()
def broken(loaded, tmp_path):
    return lake_copy(loaded, tmp_path)


def shift_one_silver_row(spark, root: str, column: str, interval: str) -> None:
    """Republish Silver with `column` of its first row moved by `interval` (a Spark SQL INTERVAL literal)."""
    first = lake_io.read_partition(spark, lake.partition(root, "silver", DAY)).first().dedup_key
    republish(spark, root, "silver", DAY, lambda f: f.withColumn(
        column, F.when(F.col("dedup_key") == first, F.col(column) + F.expr(interval)).otherwise(F.col(column))))


def assert_stopped(loaded, code, failed, out, expectation: str) -> None:
    assert code == 1 and expectation in failed, out[-4000:]
    assert postgres_rows(loaded["settings"], DAY) == loaded["marts"], "a stopped day changed PostgreSQL"
    suite, _, name = expectation.partition("/")
    assert dq_rows(loaded["settings"], DAY)[(suite, name)][:2] == ("fail", False)


def test_the_clean_day_passes_records_and_writes_data_docs(loaded, capsys):
    code, failed, _, out = gate_then_load(loaded["env"], capsys)
    assert (code, failed) == (0, set()), out[-4000:]
    rows = dq_rows(loaded["settings"], DAY)
    assert {suite for suite, _ in rows} == {"silver", *marts.NAMES}
    assert all(ok for sev, ok, _ in rows.values() if sev == "fail"), rows
    assert rows[("silver", "load_time_within_window")][:2] == ("warn", True)  # compared with the manifests
    docs = re.search(r"data docs: (\S+)", out).group(1)
    assert docs == quality.docs_path(loaded["root"], DAY) and "PASS: the day loads" in Path(docs).read_text()


def test_a_row_of_another_date_stops_the_load(loaded, broken, spark, capsys):
    env, root = broken
    shift_one_silver_row(spark, root, "event_ts", "INTERVAL 1 DAY")
    code, failed, _, out = gate_then_load(env, capsys)
    assert_stopped(loaded, code, failed, out, "silver/event_date_is_run_date")
    assert "mismatches=0" in out  # the count checks cannot see it: only the quality suite stops this day


def test_rows_loaded_outside_the_day_producer_runs_warn_and_load(loaded, broken, spark, capsys):
    """As if an old copy of the day's file had been replayed into a run three days later and the stream had
    carried one of its rows into the date's rebuilt Silver: same event, same date, a foreign load time.
    A warning, not a stop: replaying a day on purpose gives the same picture."""
    env, root = broken
    shift_one_silver_row(spark, root, "kafka_timestamp", "INTERVAL 3 DAYS")
    code, failed, warned, out = gate_then_load(env, capsys)
    assert (code, failed) == (0, set()) and "silver/load_time_within_window" in warned, out[-4000:]
    assert dq_rows(loaded["settings"], DAY)[("silver", "load_time_within_window")][:2] == ("warn", False)
    assert "mismatches=0" in out  # the counts cannot see it


def test_a_duplicated_silver_row_stops_the_load(loaded, broken, spark, capsys):
    env, root = broken
    republish(spark, root, "silver", DAY, lambda f: f.unionByName(f.limit(1)))
    code, failed, _, out = gate_then_load(env, capsys)
    assert_stopped(loaded, code, failed, out, "silver/unique:dedup_key")


def test_a_truncated_day_against_seven_trailing_days_stops_the_load(loaded, broken, spark, capsys):
    env, root = broken
    rows = quality.published_rows(spark, lake.partition(root, "silver", DAY))
    for back in range(1, quality.TRAILING_DAYS + 1):  # seven processed days, each 4x today's volume
        marker = Path(lake.partition(root, "silver", DAY - timedelta(days=back)), lake_io.MARKER)
        marker.parent.mkdir(parents=True)
        marker.write_text(json.dumps({"version": "_v_x", "rows": rows * 4}))
    code, failed, _, out = gate_then_load(env, capsys)
    assert_stopped(loaded, code, failed, out, "silver/volume_in_trailing_band")


def test_a_new_clinical_area_warns_loads_and_is_recorded(loaded, broken, spark, capsys):
    env, root = broken
    republish(spark, root, "gold/mart_clinical_areas", DAY, lambda f: f.withColumn(
        "clinical_area", F.when(F.col("clinical_area") == "Oncology", "Xenobiology").otherwise(F.col("clinical_area"))))
    code, failed, warned, out = gate_then_load(env, capsys)
    assert (code, failed) == (0, set()), out[-4000:]
    assert "mart_clinical_areas/known_vocabulary:clinical_area" in warned
    assert dq_rows(loaded["settings"], DAY)[("mart_clinical_areas", "known_vocabulary:clinical_area")][:2] == (
        "warn", False)
    areas = {row[1] for row in postgres_rows(loaded["settings"], DAY)["mart_clinical_areas"]}
    assert "Xenobiology" in areas  # the warned day was loaded
