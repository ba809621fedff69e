"""Every reconcile check can fail: one small day is built once, then each test breaks exactly one
invariant in a copy of its lake (or in PostgreSQL, or in the manifests) and expects exit 1 naming that
check. Also: Bronze reruns read the recorded offsets, and refuse when Kafka no longer holds them."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from gold.database import connect_loader
from processing import kafka_source, lake, lake_io
from tests.processing.helpers import (delete_day, delete_topic, job_env, lake_copy, new_topic, produce, produce_keyed,
                                      republish, run_in_process, stage_day)
from tests.processing.scenario import build_day, manifests

pytestmark = pytest.mark.integration
DAY = date(2031, 4, 7)


@pytest.fixture(scope="module")
def built(platform, spark_session, tmp_path_factory):
    """One small day through Bronze, ETL and the load; reconcile is green on it."""
    root = str(tmp_path_factory.mktemp("lake-rec"))
    scenario, env, topics = stage_day(platform, root, "proc-rec", DAY, 60, seed=5)
    for job in ("batch_to_bronze", "etl_to_gold", "load_to_postgres"):
        assert run_in_process(job, ["--date", DAY.isoformat()], env) == 0, job
    yield {"root": root, "env": env, "scenario": scenario, "settings": platform, "topics": topics}
    delete_day(platform, DAY)
    for name in topics:
        delete_topic(platform, name)


def reconcile(env, capsys, *extra: str) -> tuple[int, set[str], str]:
    capsys.readouterr()
    code = run_in_process("reconcile", ["--date", DAY.isoformat(), *extra], env)
    out = capsys.readouterr().out
    return code, set(re.findall(r"\[reconcile\] FAIL (\S+):", out)), out


@pytest.fixture()
def broken(built, tmp_path):
    """A private copy of the built lake to break; (env, root) pointing at it."""
    return lake_copy(built, tmp_path)


def test_the_built_day_is_green(built, capsys):
    code, failed, out = reconcile(built["env"], capsys)
    assert (code, failed) == (0, set()), out[-3000:]
    assert "stage=all checks=" in out and "mismatches=0" in out


def test_a_deleted_bronze_file_fails_kafka_eq_bronze(broken, spark, capsys):
    env, root = broken
    version = Path(lake_io.published_version(spark, lake.partition(root, "bronze", DAY)))
    next(version.glob("part-*.parquet")).unlink()
    code, failed, out = reconcile(env, capsys, "--stage", "lake")
    assert code == 1 and "kafka_eq_bronze" in failed, out[-3000:]


def test_a_duplicate_silver_row_fails_silver_no_duplicate(broken, spark, capsys):
    env, root = broken
    republish(spark, root, "silver", DAY, lambda f: f.unionByName(f.limit(1)))
    code, failed, out = reconcile(env, capsys, "--stage", "lake")
    assert code == 1 and "silver_no_duplicate_dedup_key" in failed, out[-3000:]


def test_a_missing_silver_row_fails_silver_eq_distinct_valid_bronze(broken, spark, capsys):
    env, root = broken
    keep = lake_io.read_partition(spark, lake.partition(root, "silver", DAY)).first().dedup_key
    republish(spark, root, "silver", DAY, lambda f: f.where(F.col("dedup_key") != keep))
    code, failed, out = reconcile(env, capsys, "--stage", "lake")
    assert code == 1 and "silver_eq_distinct_valid_bronze" in failed, out[-3000:]
    assert "silver_no_duplicate_dedup_key" not in failed


def test_a_lost_quarantine_row_fails_valid_plus_quarantined(broken, spark, capsys):
    env, root = broken
    republish(spark, root, "quarantine", DAY, lambda f: f.limit(f.count() - 1))
    code, failed, out = reconcile(env, capsys, "--stage", "lake")
    assert (code, failed) == (1, {"valid_plus_quarantined_eq_bronze"}), out[-3000:]


def test_a_changed_gold_total_fails_gold_eq_silver(broken, spark, capsys):
    env, root = broken
    republish(spark, root, "gold/mart_daily_traffic", DAY,
              lambda f: f.withColumn("total_events", F.col("total_events") + 1))
    code, failed, out = reconcile(env, capsys, "--stage", "lake")
    assert (code, failed) == (1, {"gold_total_events_eq_silver"}), out[-3000:]


def test_a_partition_without_its_completion_marker_is_refused(broken, capsys):
    env, root = broken
    Path(lake.partition(root, "silver", DAY), lake_io.MARKER).unlink()
    code, _, out = reconcile(env, capsys, "--stage", "lake")
    assert code == 1 and re.search(r"ERROR UnpublishedPartition: partition \S+silver/event_date=2031-04-07 has no "
                                   r"completion marker _CURRENT", out), out[-3000:]


@pytest.mark.parametrize("changes, check", [
    ({"server1": {"complete": False, "exit_code": 1}}, "manifest_complete:server1"),
    ({"server0": {"lines_read": 1000}}, "manifest_balanced:server0"),
    ({"server0": {"acknowledged": 10_000, "lines_read": 10_000, "sent": 10_000}}, "acknowledged_le_bronze:server0"),
])
def test_a_broken_manifest_fails_its_check(built, capsys, changes, check):
    topic = new_topic(built["settings"], "proc-rec-bad-manifests")
    try:
        produce_keyed(built["settings"], topic, manifests(built["scenario"], **changes))
        code, failed, out = reconcile({**built["env"], "KAFKA_MANIFEST_TOPIC": topic}, capsys, "--stage", "lake")
        assert (code, failed) == (1, {check}), out[-3000:]
    finally:
        delete_topic(built["settings"], topic)


def test_a_missing_manifest_fails(built, capsys):
    topic = new_topic(built["settings"], "proc-rec-no-manifests")
    try:
        produce_keyed(built["settings"], topic, manifests(built["scenario"])[:1])  # server1's never came
        code, failed, out = reconcile({**built["env"], "KAFKA_MANIFEST_TOPIC": topic}, capsys, "--stage", "lake")
        assert code == 1 and failed == {"manifest_complete:server1", "manifest_balanced:server1",
                                        "acknowledged_le_bronze:server1"}, out[-3000:]
    finally:
        delete_topic(built["settings"], topic)


def test_exact_silver_needs_no_stream_output(broken, capsys):
    """The module's day never ran the stream (no silver/_stream: Silver came from Bronze alone); a stream
    that failed before its first commit leaves an empty sink log, which the ETL must also survive."""
    env, root = broken
    assert not Path(lake.silver_stream(root)).exists()
    (Path(lake.silver_stream(root)) / "_spark_metadata").mkdir(parents=True)
    assert run_in_process("etl_to_gold", ["--date", DAY.isoformat()], env) == 0
    assert "building Silver from Bronze alone" in capsys.readouterr().out
    code, failed, out = reconcile(env, capsys, "--stage", "lake")
    assert (code, failed) == (0, set()), out[-3000:]


def test_a_deleted_postgres_row_fails_postgres_eq_gold(built, capsys):
    settings = built["settings"]
    with connect_loader(settings) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM gold.mart_clinical_areas WHERE ctid IN (SELECT ctid FROM gold.mart_clinical_areas "
                    "WHERE event_date = %s LIMIT 1)", (DAY,))
        assert cur.rowcount == 1
    conn.close()
    try:
        code, failed, out = reconcile(built["env"], capsys, "--stage", "postgres")
        assert (code, failed) == (1, {"postgres_eq_gold:mart_clinical_areas",
                                      "postgres_content_eq_gold:mart_clinical_areas"}), out[-3000:]
    finally:
        assert run_in_process("load_to_postgres", ["--date", DAY.isoformat()], built["env"]) == 0


# (mart, change to one row of the day, its inverse): a number, and a key's text ('#' ends no term, so no clash)
ALTERATIONS = [("mart_popular_documents", "view_count = view_count + 1", "view_count = view_count - 1"),
               ("mart_search_terms", "term = term || '#'", "term = left(term, -1)")]


def test_an_altered_postgres_value_or_key_fails_postgres_content_eq_gold(built, capsys):
    """Same row counts, other content: only the fingerprint sees it, and names the checksum or the digest."""
    altered = []
    with connect_loader(built["settings"]) as conn, conn.cursor() as cur:
        for mart, change, inverse in ALTERATIONS:
            cur.execute(f"UPDATE gold.{mart} SET {change} WHERE ctid IN (SELECT ctid FROM gold.{mart} "
                        f"WHERE event_date = %s LIMIT 1) RETURNING ctid", (DAY,))
            altered += [(mart, inverse, ctid) for (ctid,) in cur.fetchall()]
    conn.close()
    try:
        assert len(altered) == len(ALTERATIONS)
        code, failed, out = reconcile(built["env"], capsys, "--stage", "postgres")
        assert (code, failed) == (1, {"postgres_content_eq_gold:mart_popular_documents",
                                      "postgres_content_eq_gold:mart_search_terms"}), out[-3000:]
        views = re.search(r"FAIL postgres_content_eq_gold:mart_popular_documents: view_count (\d+) vs (\d+); "
                          r"row digest \d+ vs \d+\n", out)
        assert views and int(views[1]) == int(views[2]) + 1, out[-3000:]
        assert re.search(r"FAIL postgres_content_eq_gold:mart_search_terms: key digest \d+ vs \d+; "
                         r"row digest \d+ vs \d+\n", out), out[-3000:]
    finally:
        with connect_loader(built["settings"]) as conn, conn.cursor() as cur:
            for mart, inverse, ctid in altered:
                cur.execute(f"UPDATE gold.{mart} SET {inverse} WHERE ctid = %s::tid", (ctid,))
                assert cur.rowcount == 1
        conn.close()


def test_bronze_rerun_reads_the_recorded_offsets_and_refuses_when_kafka_lost_them(platform, spark, tmp_path,
                                                                                    capsys):
    """Late arrivals after the first run stay out of a rerun; after retention deleted recorded offsets the
    rerun refuses to overwrite (exit 1, one clear line); --rebuild-from-kafka rebuilds from what is left."""
    from confluent_kafka import TopicPartition
    from messaging.topics import admin_client

    day = date(2031, 4, 8)
    topic = new_topic(platform, "proc-offsets")
    try:
        scenario = build_day(day, 30, seed=3)
        produce(platform, topic, scenario.phases[0])
        env = job_env(platform, str(tmp_path / "lake"), topic)
        assert run_in_process("batch_to_bronze", ["--date", day.isoformat()], env) == 0
        path = lake.partition(env["LAKE_ROOT"], "bronze", day)
        first = sorted(lake_io.read_partition(spark, path).collect())
        _, _, ranges = kafka_source.read_record(spark, _settings(env), day)
        assert sum(r.messages for r in ranges) == len(first) == len(scenario.phases[0])

        produce(platform, topic, scenario.phases[1])  # arrives after the first run
        assert run_in_process("batch_to_bronze", ["--date", day.isoformat()], env) == 0
        assert sorted(lake_io.read_partition(spark, path).collect()) == first

        victim = ranges[0]  # retention deletes the head of one partition
        admin = admin_client(platform)
        for future in admin.delete_records([TopicPartition(topic, victim.partition, victim.first + 1)]).values():
            future.result()
        capsys.readouterr()
        assert run_in_process("batch_to_bronze", ["--date", day.isoformat()], env) == 1
        out = capsys.readouterr().out
        line = [x for x in out.splitlines() if "ERROR" in x]
        assert len(line) == 1 and "refusing to overwrite" in line[0] and (
            f"partition {victim.partition}: earliest offset {victim.first + 1} > recorded first offset "
            f"{victim.first}") in line[0], out[-3000:]
        assert sorted(lake_io.read_partition(spark, path).collect()) == first  # the partition was kept

        assert run_in_process("batch_to_bronze", ["--date", day.isoformat(), "--rebuild-from-kafka"], env) == 0
        rebuilt = lake_io.read_partition(spark, path).count()
        assert rebuilt == scenario.messages_of_day - len(scenario.late) - 1  # both phases, minus the deleted one
        _, _, new_ranges = kafka_source.read_record(spark, _settings(env), day)
        assert sum(r.messages for r in new_ranges) == rebuilt
    finally:
        delete_topic(platform, topic)


def _settings(env):
    from infrastructure.settings import load

    return load({"LAKE_ROOT": env["LAKE_ROOT"], "KAFKA_TOPIC": env["KAFKA_TOPIC"]})
