"""gold/postgres/init against the shared platform's PostgreSQL 15: re-runnable, the fixed mart
interface, comments everywhere, and a reader that can look but never touch; gold.pipeline_runs likewise."""
from __future__ import annotations

import uuid

import pytest

from gold import marts
from infrastructure.local.postgres import apply_init_sql
from tests.gold.pg_helpers import assert_reader_refused, assert_reader_selects, connect, fetch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def initialised(platform):
    """The init SQL applied twice more on top of `make up`'s run: it must be re-runnable."""
    first, second = apply_init_sql(platform), apply_init_sql(platform)
    assert "10_marts.sql" in first and "40_pipeline_runs.sql" in first and first == second
    return platform


def test_marts_have_the_defined_columns_in_order_and_the_loader_owns_them(initialised):
    for mart in marts.MARTS:
        rows = fetch(initialised, "SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'gold' AND table_name = %s ORDER BY ordinal_position",
                     (mart.name,))
        assert rows == [(c.name, c.type) for c in mart.columns], mart.name
        (owner,), = fetch(initialised, "SELECT tableowner FROM pg_tables WHERE schemaname = 'gold' AND tablename = %s",
                          (mart.name,))
        assert owner == initialised.postgres_user


def test_primary_keys(initialised):
    for mart in marts.MARTS:
        rows = fetch(initialised, """
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s::regclass AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)""", (mart.table,))
        assert tuple(r[0] for r in rows) == mart.key, mart.name


def test_every_table_and_column_has_its_defined_comment(initialised):
    for mart in marts.MARTS:
        (table_comment,), = fetch(initialised, "SELECT obj_description(%s::regclass, 'pg_class')", (mart.table,))
        assert table_comment == mart.description, mart.name
        comments = dict(fetch(initialised, """
            SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped""", (mart.table,)))
        assert comments == {c.name: c.description for c in mart.columns}, mart.name


def test_reader_can_select_every_mart(initialised):
    assert_reader_selects(initialised, (m.table for m in marts.MARTS))


@pytest.mark.parametrize("statement", [
    "INSERT INTO gold.mart_daily_traffic VALUES ('2031-07-01', 1, 1, 1, 0)",
    "UPDATE gold.mart_daily_traffic SET total_events = 0",
    "DELETE FROM gold.mart_search_keywords",
    "TRUNCATE gold.mart_clinical_areas",
    "DELETE FROM gold.mart_search_terms",
    "CREATE TABLE gold.reader_made (x int)",
    "CREATE TABLE public.reader_made (x int)",
    "ALTER TABLE gold.mart_popular_documents ADD COLUMN x int",
    "DROP TABLE gold.mart_session_analysis",
])
def test_reader_cannot_write_or_create(initialised, statement):
    assert_reader_refused(initialised, statement)


def test_tables_the_loader_creates_later_are_readable_by_the_reader(initialised):
    table = f"gold.default_privileges_{uuid.uuid4().hex[:12]}"
    loader = connect(initialised)
    loader.autocommit = True
    try:
        with loader.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (x int)")
            cur.execute(f"INSERT INTO {table} VALUES (42)")
        assert fetch(initialised, f"SELECT x FROM {table}", reader=True) == [(42,)]
    finally:
        with loader.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        loader.close()


def test_pipeline_runs_has_its_columns_key_and_comments_the_loader_owns_it_and_the_reader_only_reads(initialised):
    columns = fetch(initialised, "SELECT column_name, data_type FROM information_schema.columns WHERE "
                                 "table_schema = 'gold' AND table_name = 'pipeline_runs' ORDER BY ordinal_position")
    assert columns == [("step", "text"), ("event_date", "date"), ("success", "boolean"), ("rows", "bigint"),
                       ("seconds", "double precision"), ("finished_at", "timestamp with time zone")]
    (owner, key), = fetch(initialised, "SELECT tableowner, (SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                       "WHERE conrelid = 'gold.pipeline_runs'::regclass AND contype = 'p') "
                                       "FROM pg_tables WHERE schemaname = 'gold' AND tablename = 'pipeline_runs'")
    assert (owner, key) == (initialised.postgres_user, "PRIMARY KEY (step, event_date)")
    comments = fetch(initialised, "SELECT a.attnum, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                                  "WHERE a.attrelid = 'gold.pipeline_runs'::regclass AND a.attnum >= 0 "
                                  "AND NOT a.attisdropped UNION ALL "
                                  "SELECT 0, obj_description('gold.pipeline_runs'::regclass, 'pg_class')")
    assert len(comments) == 7 and all(text for _, text in comments), comments
    assert_reader_selects(initialised, ["gold.pipeline_runs"])
    for statement in ("INSERT INTO gold.pipeline_runs VALUES ('x', '2031-07-01', true, 0, 0, now())",
                      "UPDATE gold.pipeline_runs SET success = true", "DELETE FROM gold.pipeline_runs"):
        assert_reader_refused(initialised, statement)
