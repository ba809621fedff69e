"""The six Gold marts, defined once: name, meaning, columns in table order (PostgreSQL type, meaning), key.

Everything that names a mart or its columns reads this module: the Spark builders conform their output to
it (processing/transforms.py), load_to_postgres copies these columns, reconcile and the demo count these
marts, and tests hold the rest to it: gold/postgres/init/10_marts.sql creates exactly these columns with
these comments (tests/gold/test_mart_definition.py) and the Superset datasets describe them alike
(tests/gold/test_assets.py). How each value is computed is in gold/README.md and processing/transforms.py.
Pure Python, so the processing image, Superset's and the tests import it without Spark or a database.
"""
from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "gold"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL type as information_schema.columns spells it
    description: str


@dataclass(frozen=True)
class Mart:
    name: str
    key: tuple[str, ...]  # the primary key; every mart's starts with event_date
    description: str
    columns: tuple[Column, ...]

    @property
    def table(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


EVENT_DATE = Column("event_date", "date", "Pipeline date of the clicks (PIPELINE_TZ).")

MARTS = (
    Mart(
        "mart_daily_traffic", key=("event_date",),
        description=(
            "One row per pipeline date: volume of clicks, sessions and documents, and the busiest hour."),
        columns=(
            Column("event_date", "date", "Pipeline date of the events (YYYY-MM-DD in PIPELINE_TZ); primary key."),
            Column("total_events", "bigint", "Deduplicated click events of the day."),
            Column("unique_sessions", "bigint", "Distinct SessionId values that clicked that day."),
            Column("unique_documents", "bigint", "Distinct DocumentId values clicked that day."),
            Column("peak_hour", "smallint",
                   "UTC hour (0-23) of the original TripClick click time (DateCreated) with the most clicks, lowest "
                   "on a tie; the replay compresses event_ts into one window, so the original time carries the "
                   "hourly pattern."),
        ),
    ),
    Mart(
        "mart_session_analysis", key=("event_date", "session_id"),
        description=(
            "One row per search session and pipeline date: how much and how long (in real seconds, on the original "
            "TripClick click time DateCreated) the session clicked."),
        columns=(
            Column("event_date", "date",
                   "Pipeline date of the clicks (PIPELINE_TZ); a session whose clicks fall on two pipeline dates has"
                   " one row per date."),
            Column("session_id", "text", "TripClick SessionId."),
            Column("click_count", "integer", "Deduplicated clicks of the session on that date."),
            Column("unique_docs", "integer", "Distinct documents the session clicked on that date."),
            Column("first_click_ts", "timestamp with time zone",
                   "Original click time (DateCreated, UTC) of the first click of the session on that date; not the "
                   "replay time event_ts."),
            Column("last_click_ts", "timestamp with time zone",
                   "Original click time (DateCreated, UTC) of the last click of the session on that date; not the "
                   "replay time event_ts."),
            Column("session_duration_sec", "double precision",
                   "last_click_ts - first_click_ts in real seconds (original clock, millisecond precision); 0 for a "
                   "single click."),
        ),
    ),
    Mart(
        "mart_clinical_areas", key=("event_date", "clinical_area"),
        description=(
            "One row per clinical area and pipeline date, plus the bucket (none) for clicks without an area; a click"
            " on a document with several areas counts in click_count for each, and SUM(click_share) over a date = "
            "its clicks."),
        columns=(
            EVENT_DATE,
            Column("clinical_area", "text",
                   "Area of the comma-separated ClinicalAreas field, matched trimmed, whitespace-collapsed and "
                   "case-insensitively, shown in title case (first letter and letters after a space, / or - "
                   "upper-case, the rest lower-case); (none) = clicks whose ClinicalAreas is null, empty or only "
                   "commas and blanks."),
            Column("click_count", "bigint",
                   "Clicks on documents tagged with this area that day (an area listed twice on one click counts "
                   "once)."),
            Column("unique_sessions", "bigint",
                   "Distinct sessions that clicked a document of this area that day (not additive over dates or "
                   "areas)."),
            Column("click_share", "double precision",
                   "Sum over the area's clicks of 1 / (distinct areas of the click): each click split equally among "
                   "its areas, so the areas (with (none)) add up to the day's clicks. NULL only on rows loaded "
                   "before this column existed."),
        ),
    ),
    Mart(
        "mart_popular_documents", key=("event_date", "document_id"),
        description=(
            "Every document clicked on a pipeline date, ranked by views (rank 1 = most viewed)."),
        columns=(
            EVENT_DATE,
            Column("document_id", "bigint", "TripClick DocumentId."),
            Column("title", "text",
                   "Greatest non-empty title logged for the document that day (NULL when no click carried one)."),
            Column("view_count", "bigint", "Clicks on the document that day."),
            Column("unique_sessions", "bigint",
                   "Distinct sessions that clicked the document that day (a sum over dates counts session-days, not "
                   "sessions)."),
            Column("rank", "integer",
                   "Position by view_count within the day, 1 = most viewed; ties broken by the lower document_id, so"
                   " unique."),
        ),
    ),
    Mart(
        "mart_search_keywords", key=("event_date", "query"),
        description=(
            "One row per search QUERY (the whole Keywords string of a click, normalised) and pipeline date; "
            "individual words are in mart_search_terms."),
        columns=(
            EVENT_DATE,
            Column("query", "text",
                   "The Keywords field of a click with whitespace runs collapsed to one space, trimmed, lower-cased;"
                   " clicks with an empty or null query are not counted."),
            Column("sessions", "bigint",
                   "Distinct sessions with a click carrying this query that day (a sum over dates counts "
                   "session-days)."),
            Column("clicks", "bigint", "Clicks carrying this query that day."),
            Column("unique_documents", "bigint", "Distinct documents clicked with this query that day."),
        ),
    ),
    Mart(
        "mart_search_terms", key=("event_date", "term"),
        description=(
            "One row per search term (word of the normalised queries of mart_search_keywords) and pipeline date."),
        columns=(
            EVENT_DATE,
            Column("term", "text",
                   "A space-separated piece of the normalised query, with characters other than Unicode letters and "
                   "digits stripped from both ends; empty pieces dropped; a term repeated in one query counts once. "
                   "No stop words removed."),
            Column("sessions", "bigint",
                   "Distinct sessions with a click whose query contains the term that day (a sum over dates counts "
                   "session-days)."),
            Column("clicks", "bigint", "Clicks whose query contains the term that day."),
            Column("queries", "bigint", "Distinct normalised queries containing the term that day."),
            Column("unique_documents", "bigint",
                   "Distinct documents clicked with a query containing the term that day."),
        ),
    ),
)
NAMES = tuple(m.name for m in MARTS)
BY_NAME = {m.name: m for m in MARTS}
