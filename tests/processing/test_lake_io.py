"""Atomic publication of lake partitions: versions + completion marker, on a local lake."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from processing import lake_io
from tests.processing.helpers import check_staged_publication

pytestmark = pytest.mark.unit


def test_version_ids_sort_by_time_and_are_skipped_by_partition_discovery():
    early = lake_io.new_version_id(datetime(2031, 3, 1, 8, 0, 0, 5, tzinfo=timezone.utc))
    late = lake_io.new_version_id(datetime(2031, 3, 1, 8, 0, 1, tzinfo=timezone.utc))
    assert early.startswith("_v_20310301T080000000005Z_") and early < late
    assert "=" not in early  # a `_` name with `=` would be read as a partition column by Spark


def test_marker_names_its_version_and_a_bad_marker_is_an_error():
    doc = lake_io.marker_document("_v_1", 7, datetime(2031, 3, 1, tzinfo=timezone.utc))
    assert doc == '{"published_at": "2031-03-01T00:00:00+00:00", "rows": 7, "version": "_v_1"}'
    assert lake_io.parse_marker(doc, "p") == "_v_1"
    for bad in ("", "{}", '{"version": "../x"}', '{"version": "part-0"}'):
        with pytest.raises(lake_io.UnpublishedPartition):
            lake_io.parse_marker(bad, "p")


def test_only_versions_older_than_the_previous_one_are_deleted():
    names = ["_CURRENT", "_v_1", "_v_2", "_v_3", "_v_4", "_v_5"]
    assert lake_io.versions_to_delete(names, "_v_4") == ["_v_1", "_v_2"]  # keeps _v_3 and _v_4; _v_5 is newer
    assert lake_io.versions_to_delete(["_v_1"], "_v_1") == []


def rows(spark, path):
    frame = lake_io.read_partition(spark, str(path))
    return None if frame is None else sorted(tuple(r) for r in frame.collect())


def test_replace_publishes_a_new_version_and_cleans_old_ones(spark, tmp_path):
    part = tmp_path / "silver" / "event_date=2031-03-01"
    assert rows(spark, part) is None  # never written
    for n in (1, 2, 3):
        lake_io.replace_partition(spark.createDataFrame([(i, "x") for i in range(n)], "a int, b string"), str(part))
    assert rows(spark, part) == [(0, "x"), (1, "x"), (2, "x")]
    assert len([p for p in part.iterdir() if p.name.startswith("_v_")]) == 2
    # Partition discovery of the whole layer never mixes versions: `_` folders without `=` are skipped.
    with pytest.raises(Exception, match="UNABLE_TO_INFER_SCHEMA"):
        spark.read.parquet(str(tmp_path / "silver"))
    lake_io.replace_partition(spark.createDataFrame([], "a int, b string"), str(part))
    assert rows(spark, part) == []  # an empty rerun publishes an empty partition


def test_a_failure_during_publication_leaves_the_previous_version_readable(spark, tmp_path):
    part = tmp_path / "gold" / "event_date=2031-03-01"
    lake_io.replace_partition(spark.createDataFrame([(1,)], "a int"), str(part))

    def die(folder):
        assert Path(folder).is_dir()  # the new data is fully written, the marker is not
        raise RuntimeError("killed before publishing")

    with pytest.raises(RuntimeError, match="killed"):
        lake_io.replace_partition(spark.createDataFrame([(7,), (8,)], "a int"), str(part), before_publish=die)
    assert rows(spark, part) == [(1,)]


def test_a_partition_without_marker_is_refused(spark, tmp_path):
    part = tmp_path / "bronze" / "event_date=2031-03-01"
    spark.createDataFrame([(1,)], "a int").write.parquet(str(part))  # the pre-publication layout
    with pytest.raises(lake_io.UnpublishedPartition, match="no completion marker _CURRENT"):
        lake_io.read_partition(spark, str(part))


def test_sigkill_while_writing_a_version_keeps_the_published_one(spark, tmp_path):
    """A writer process killed with SIGKILL in the middle of writing the new version's files."""
    part = tmp_path / "bronze" / "event_date=2031-03-01"
    lake_io.replace_partition(spark.createDataFrame([(1,)], "a int"), str(part))
    script = textwrap.dedent(f"""
        import os, sys, time
        from processing import lake_io
        path = {str(part)!r}
        version = os.path.join(path, lake_io.new_version_id())
        os.makedirs(version)
        with open(os.path.join(version, "part-00000.parquet"), "wb") as f:  # half a Parquet file
            f.write(b"PAR1" + b"x" * 1000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert rows(spark, part) == [(1,)]


def test_dates_staged_together_are_published_one_by_one(spark, tmp_path):
    check_staged_publication(spark, str(tmp_path / "lake"))
