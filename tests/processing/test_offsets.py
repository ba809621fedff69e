"""Bronze by offsets: the pure offset-range logic (record, Spark options, availability, recount)."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from processing.kafka_source import (OffsetRange, availability_problems, count_problems, offsets_record,
                                     parse_offsets_record, range_options, ranges_from_offsets)

pytestmark = pytest.mark.unit
DAY = date(2031, 3, 1)


def test_ranges_from_stored_offsets_are_min_max_count_per_partition():
    pairs = [(2, 40), (0, 7), (0, 5), (2, 44), (0, 9), (2, 41)]
    assert ranges_from_offsets(pairs) == [OffsetRange(0, 5, 9, 3), OffsetRange(2, 40, 44, 3)]
    assert ranges_from_offsets([]) == []


def test_record_round_trip_is_exact_and_stable():
    ranges = [OffsetRange(2, 40, 44, 3), OffsetRange(0, 5, 9, 3)]
    text = offsets_record("raw", DAY, ranges, datetime(2031, 3, 1, 8, 0, tzinfo=timezone.utc))
    assert json.loads(text) == {
        "record_version": 1, "topic": "raw", "event_date": "2031-03-01",
        "recorded_at": "2031-03-01T08:00:00+00:00",
        "partitions": [{"partition": 0, "first_offset": 5, "last_offset": 9, "messages": 3},
                       {"partition": 2, "first_offset": 40, "last_offset": 44, "messages": 3}]}
    assert parse_offsets_record(text) == ("raw", DAY, [OffsetRange(0, 5, 9, 3), OffsetRange(2, 40, 44, 3)])


@pytest.mark.parametrize("partition", [
    {"partition": 0, "first_offset": 9, "last_offset": 5, "messages": 1},  # first after last
    {"partition": 0, "first_offset": 5, "last_offset": 9, "messages": 6},  # more messages than offsets
    {"partition": 0, "first_offset": 5, "last_offset": 9, "messages": 0},
])
def test_an_inconsistent_record_is_refused(partition):
    text = json.dumps({"record_version": 1, "topic": "raw", "event_date": "2031-03-01", "recorded_at": "x",
                       "partitions": [partition]})
    with pytest.raises(ValueError, match="inconsistent"):
        parse_offsets_record(text)


def test_spark_options_read_exactly_the_ranges_with_an_exclusive_end():
    options = range_options("raw", [OffsetRange(2, 40, 44, 3), OffsetRange(0, 5, 9, 3)])
    assert options == {"assign": '{"raw": [0, 2]}', "startingOffsets": '{"raw": {"0": 5, "2": 40}}',
                       "endingOffsets": '{"raw": {"0": 10, "2": 45}}'}


def test_ranges_kafka_still_holds_have_no_problem():
    ranges = [OffsetRange(0, 5, 9, 3), OffsetRange(2, 40, 44, 3)]
    assert availability_problems(ranges, {0: (5, 10), 1: (0, 0), 2: (0, 100)}) == []


def test_retention_or_a_recreated_topic_is_detected_per_partition():
    ranges = [OffsetRange(0, 5, 9, 3), OffsetRange(1, 0, 3, 4), OffsetRange(2, 40, 44, 3)]
    assert availability_problems(ranges, {0: (6, 200), 2: (0, 44)}) == [
        "partition 0: earliest offset 6 > recorded first offset 5 (deleted by retention, or the topic was recreated)",
        "partition 1 no longer exists (recreated topic?)",
        "partition 2: Kafka ends at offset 43 < recorded last offset 44 (the topic was recreated)",
    ]


def test_recount_must_equal_the_record():
    ranges = [OffsetRange(0, 5, 9, 3), OffsetRange(2, 40, 44, 3)]
    assert count_problems(ranges, {0: 3, 2: 3}) == []
    assert count_problems(ranges, {0: 3}) == ["partition 2: 0 messages of the date now, 3 recorded"]
