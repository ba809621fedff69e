"""The run's clock: processed date, timeline points and the streaming window, as pure functions.

A run's timeline is anchored at the moment the run actually started (the scheduler starts the daily
run at 15:00 PIPELINE_TZ, so there the anchor IS 15:00). A clock time T of the seed's day maps to
`anchor + (T - 15:00) / time_scale`: at TIME_SCALE=1 that is the real 17:00/18:00, at 60 the whole
15:00-18:00 day takes three minutes. Anchoring at the actual start (rather than the logical date) means
a manually triggered or delayed run still gets its full producer hour instead of skipping it.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from infrastructure.dates import ISO_DATE

# The seed's day, as clock times in PIPELINE_TZ: the run starts at DAY_START (the DAG's cron "0 15 * * *",
# asserted equal by tests/orchestration/test_dag.py), the producers' hour ends at PRODUCERS_END.
DAY_START = "15:00"
PRODUCERS_END = "16:00"
# The `date` the daily DAG's trigger form and the backfill's `start`/`end` accept (YYYY-MM-DD).
DATE_PATTERN = f"^{ISO_DATE}$"


def clock_offset(clock: str) -> timedelta:
    """'17:00' -> 2 h: how far a clock time of the seed's day lies after DAY_START."""
    def minutes(hh_mm: str) -> int:
        hours, _, mins = hh_mm.partition(":")
        return int(hours) * 60 + int(mins)
    offset = minutes(clock) - minutes(DAY_START)
    if offset < 0:
        raise ValueError(f"clock time {clock} is before the day's start {DAY_START}")
    return timedelta(minutes=offset)


def timeline_point(anchor: datetime, clock: str, time_scale: float) -> datetime:
    """The wall-clock moment of `clock` in a run anchored at `anchor`."""
    return anchor + clock_offset(clock) / time_scale


def stream_seconds(anchor: datetime, now: datetime, time_scale: float, drain_seconds: int) -> int:
    """Runtime for a streaming job started at `now`: until the 16:00 point, plus the drain margin
    (STREAM_DRAIN_SECONDS: the trigger interval plus Spark's batch time on a busy host).

    A retry after 16:00 still gets the drain margin, so it resumes from its checkpoint and catches up.
    """
    remaining = (timeline_point(anchor, PRODUCERS_END, time_scale) - now).total_seconds()
    return math.ceil(max(0.0, remaining) + drain_seconds)


def processed_date(logical_date: datetime, tz_name: str, override: str | None = None) -> str:
    """The pipeline date a run processes: an explicit override (a manual trigger's `date`), else the
    run's logical date in PIPELINE_TZ. The daily trigger fires at 15:00 of day D, so its logical
    date is D 15:00 and it processes day D's files."""
    if override:
        if not re.match(DATE_PATTERN, override):
            raise ValueError(f"date must be YYYY-MM-DD, got {override!r}")
        return date.fromisoformat(override).isoformat()
    if logical_date.tzinfo is None:
        raise ValueError("logical_date must be timezone-aware")
    return logical_date.astimezone(ZoneInfo(tz_name)).date().isoformat()

