"""load_to_postgres streams each mart in parts: what it hands to COPY is the mart's COPY text, whatever the parts."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from infrastructure.settings import load
from processing import lake, lake_io
from processing.spark.jobs.load_to_postgres import ChunkReader, copy_chunks

pytestmark = pytest.mark.unit
DAY = date(2031, 3, 1)


def ts(minute: int) -> datetime:
    return datetime(2031, 3, 1, 8, minute, tzinfo=timezone.utc)


@pytest.fixture
def small_parts(spark):
    """Files of two rows: a five-row mart is written, and arrives, in three parts."""
    key = "spark.sql.files.maxRecordsPerFile"
    before = spark.conf.get(key)
    spark.conf.set(key, "2")
    yield spark
    spark.conf.set(key, before)


def test_a_mart_in_several_files_streams_as_exactly_its_copy_text(small_parts, tmp_path):
    spark = small_parts
    settings = load({"ENV_FILE": "/nonexistent", "LAKE_ROOT": str(tmp_path)})
    rows = [("s1", 2, 1, ts(0), ts(1), 60.0), ("tab\there", 1, 1, ts(2), ts(2), 0.0),
            ("line\nback\\slash", 3, 2, ts(3), ts(5), 120.5), ("s4", 1, 1, ts(6), ts(6), None),
            ("s5", 1, 1, ts(7), ts(7), 0.25)]
    frame = spark.createDataFrame(rows, "session_id string, click_count int, unique_docs int, first_click_ts "
                                        "timestamp, last_click_ts timestamp, session_duration_sec double")
    version = lake_io.replace_partition(frame, lake.gold_partition(str(tmp_path), "mart_session_analysis", DAY))
    assert len([f for f in (tmp_path / version).glob("*.parquet")]) == 3

    chunks = list(copy_chunks(spark, settings, "mart_session_analysis", DAY))
    assert len(chunks) == 3
    assert sorted("".join(chunks).splitlines()) == sorted([
        "2031-03-01\ts1\t2\t1\t2031-03-01 08:00:00.000000+00:00\t2031-03-01 08:01:00.000000+00:00\t60",
        "2031-03-01\ttab\\there\t1\t1\t2031-03-01 08:02:00.000000+00:00\t2031-03-01 08:02:00.000000+00:00\t0",
        "2031-03-01\tline\\nback\\\\slash\t3\t2\t2031-03-01 08:03:00.000000+00:00\t2031-03-01 08:05:00.000000+00:00"
        "\t120.5",
        "2031-03-01\ts4\t1\t1\t2031-03-01 08:06:00.000000+00:00\t2031-03-01 08:06:00.000000+00:00\t\\N",
        "2031-03-01\ts5\t1\t1\t2031-03-01 08:07:00.000000+00:00\t2031-03-01 08:07:00.000000+00:00\t0.25"])


def test_the_copy_reader_hands_over_chunk_after_chunk_then_the_end():
    reader = ChunkReader(["a\n", "b\n"])
    assert [reader.read(8192), reader.read(8192), reader.read(8192)] == ["a\n", "b\n", ""]
