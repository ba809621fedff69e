"""gold/postgres/init/30_live.sql on the shared platform's PostgreSQL: schema `live` apart from `gold`,
owned by the loader (the stream writes as it), comments everywhere, and a reader that can only look."""
from __future__ import annotations

import pytest

from infrastructure.local.postgres import apply_init_sql
from tests.gold.pg_helpers import assert_reader_refused, assert_reader_selects, fetch

pytestmark = pytest.mark.integration

TABLES = {
    "clicks_per_minute": ["event_date", "minute", "source_server", "clicks", "updated_at"],
    "document_minutes": ["event_date", "minute", "document_id", "title", "clicks", "updated_at"],
    "area_minutes": ["event_date", "minute", "clinical_area", "clicks", "click_share", "updated_at"],
    "applied_batches": ["query_id", "batch_id", "applied_at"],
}
VIEWS = {
    "clicks_per_minute_newest": ["event_date", "minute", "source_server", "clicks", "updated_at"],
    "top_documents_15m": ["event_date", "window_start", "window_end", "document_id", "title", "clicks", "rank"],
    "top_clinical_areas_15m": ["event_date", "window_start", "window_end", "clinical_area", "clicks",
                               "click_share", "rank"],
}


@pytest.fixture(scope="module")
def initialised(platform):
    first, second = apply_init_sql(platform), apply_init_sql(platform)
    assert "30_live.sql" in first and first == second  # re-runnable, applied by `make up`'s path
    return platform


def test_live_tables_and_views_have_their_columns_the_loader_owns_them(initialised):
    for name, columns in {**TABLES, **VIEWS}.items():
        rows = fetch(initialised, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'live' "
                                  "AND table_name = %s ORDER BY ordinal_position", (name,))
        assert [r[0] for r in rows] == columns, name
        (owner,), = fetch(initialised, "SELECT pg_get_userbyid(relowner) FROM pg_class "
                                       "WHERE oid = %s::regclass", (f"live.{name}",))
        assert owner == initialised.postgres_user, name
    (schema_owner,), = fetch(initialised, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'live'")
    assert schema_owner == initialised.postgres_user


def test_every_live_table_view_and_column_has_a_comment(initialised):
    for name, columns in {**TABLES, **VIEWS}.items():
        (comment,), = fetch(initialised, "SELECT obj_description(%s::regclass, 'pg_class')", (f"live.{name}",))
        assert comment, name
        comments = dict(fetch(initialised, "SELECT a.attname, col_description(a.attrelid, a.attnum) "
                                           "FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0",
                              (f"live.{name}",)))
        assert all(comments[c] for c in columns), (name, comments)


def test_reader_can_select_every_live_table_and_view(initialised):
    assert_reader_selects(initialised, (f"live.{name}" for name in {**TABLES, **VIEWS}))


@pytest.mark.parametrize("statement", [
    "INSERT INTO live.clicks_per_minute VALUES ('2031-07-01', now(), 'server0', 1, now())",
    "UPDATE live.document_minutes SET clicks = 0",
    "DELETE FROM live.area_minutes",
    "TRUNCATE live.clicks_per_minute",
    "INSERT INTO live.applied_batches VALUES ('x', 1, now())",
    "CREATE TABLE live.reader_made (x int)",
    "CREATE OR REPLACE VIEW live.top_documents_15m AS SELECT 1",
    "DROP VIEW live.top_clinical_areas_15m",
])
def test_reader_cannot_write_or_create_in_live(initialised, statement):
    assert_reader_refused(initialised, statement)
