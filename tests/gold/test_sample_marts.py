"""The sample marts agree with each other the way real marts must (pure, no database)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from gold.sample_marts import MART_COLUMNS, build

pytestmark = pytest.mark.unit
TZ = ZoneInfo("Asia/Seoul")
DAYS = [date(2031, 5, 1), date(2031, 5, 2)]


@pytest.fixture(scope="module")
def rows():
    return build(DAYS, TZ, seed=11)


def by_day(rows, mart):
    grouped = defaultdict(list)
    for row in rows[mart]:
        grouped[row[0]].append(dict(zip(MART_COLUMNS[mart], row)))
    return grouped


def test_same_seed_same_rows_other_seed_other_rows(rows):
    assert build(DAYS, TZ, seed=11) == rows
    assert build(DAYS, TZ, seed=12) != rows


def test_every_row_has_its_mart_column_count(rows):
    for mart, columns in MART_COLUMNS.items():
        assert rows[mart], mart
        assert {len(row) for row in rows[mart]} == {len(columns)}, mart


def test_daily_totals_match_sessions_and_documents(rows):
    sessions, documents = by_day(rows, "mart_session_analysis"), by_day(rows, "mart_popular_documents")
    for daily in (dict(zip(MART_COLUMNS["mart_daily_traffic"], r)) for r in rows["mart_daily_traffic"]):
        day = daily["event_date"]
        assert daily["total_events"] == sum(s["click_count"] for s in sessions[day])
        assert daily["total_events"] == sum(d["view_count"] for d in documents[day])
        assert daily["unique_sessions"] == len(sessions[day])
        assert daily["unique_documents"] == len(documents[day])
        assert 0 <= daily["peak_hour"] <= 23


def test_area_shares_add_up_to_the_clicks_with_a_none_bucket(rows):
    areas = by_day(rows, "mart_clinical_areas")
    for daily in (dict(zip(MART_COLUMNS["mart_daily_traffic"], r)) for r in rows["mart_daily_traffic"]):
        day = daily["event_date"]
        assert sum(a["click_share"] for a in areas[day]) == pytest.approx(daily["total_events"])
        assert sum(a["click_count"] for a in areas[day]) >= daily["total_events"]
        assert "(none)" in {a["clinical_area"] for a in areas[day]}


def test_terms_are_the_words_of_the_queries(rows):
    queries, terms = by_day(rows, "mart_search_keywords"), by_day(rows, "mart_search_terms")
    for day, day_terms in terms.items():
        words = {w for q in queries[day] for w in q["query"].replace("[", " ").replace("]", " ").split()}
        assert {t["term"] for t in day_terms} == words
        sample = next(t for t in day_terms if t["term"] == "sample")  # the marker is in every query
        assert sample["queries"] == len(queries[day])
        assert sample["clicks"] == sum(q["clicks"] for q in queries[day])
        for t in day_terms:
            assert 1 <= t["sessions"] <= t["clicks"] and t["queries"] >= 1


def test_documents_are_ranked_by_views_without_gaps(rows):
    for documents in by_day(rows, "mart_popular_documents").values():
        ordered = sorted(documents, key=lambda d: d["rank"])
        assert [d["rank"] for d in ordered] == list(range(1, len(ordered) + 1))
        views = [d["view_count"] for d in ordered]
        assert views == sorted(views, reverse=True)


def test_sessions_are_consistent(rows):
    for day, sessions in by_day(rows, "mart_session_analysis").items():
        for s in sessions:
            assert s["first_click_ts"] <= s["last_click_ts"]
            assert s["first_click_ts"].astimezone(TZ).date() == day == s["last_click_ts"].astimezone(TZ).date()
            assert s["session_duration_sec"] == (s["last_click_ts"] - s["first_click_ts"]).total_seconds()
            assert 1 <= s["unique_docs"] <= s["click_count"]


def test_sample_data_is_marked_as_sample(rows):
    assert all(r[2].startswith("[sample] ") for r in rows["mart_popular_documents"])
    assert all(r[1].startswith("[sample] ") for r in rows["mart_search_keywords"])
