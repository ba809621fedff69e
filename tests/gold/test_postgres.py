"""gold/postgres/init against the shared platform's PostgreSQL 15: re-runnable, the fixed mart
interface, comments everywhere, and a reader that can look but never touch."""
from __future__ import annotations

import uuid

import psycopg2
import pytest
from psycopg2 import errors

from infrastructure.local.postgres import apply_init_sql

pytestmark = pytest.mark.integration

# The fixed interface of the conventions (column order matters to load_to_postgres).
MARTS = {
    "mart_daily_traffic": [("event_date", "date"), ("total_events", "bigint"), ("unique_sessions", "bigint"),
                           ("unique_documents", "bigint"), ("peak_hour", "smallint")],
    "mart_session_analysis": [("event_date", "date"), ("session_id", "text"), ("click_count", "integer"),
                              ("unique_docs", "integer"), ("first_click_ts", "timestamp with time zone"),
                              ("last_click_ts", "timestamp with time zone"),
                              ("session_duration_sec", "double precision")],
    "mart_clinical_areas": [("event_date", "date"), ("clinical_area", "text"), ("click_count", "bigint"),
                            ("unique_sessions", "bigint"), ("click_share", "double precision")],
    "mart_popular_documents": [("event_date", "date"), ("document_id", "bigint"), ("title", "text"),
                               ("view_count", "bigint"), ("unique_sessions", "bigint"), ("rank", "integer")],
    "mart_search_keywords": [("event_date", "date"), ("query", "text"), ("sessions", "bigint"),
                             ("clicks", "bigint"), ("unique_documents", "bigint")],
    "mart_search_terms": [("event_date", "date"), ("term", "text"), ("sessions", "bigint"), ("clicks", "bigint"),
                          ("queries", "bigint"), ("unique_documents", "bigint")],
}
PRIMARY_KEYS = {"mart_daily_traffic": ["event_date"], "mart_session_analysis": ["event_date", "session_id"],
                "mart_clinical_areas": ["event_date", "clinical_area"],
                "mart_popular_documents": ["event_date", "document_id"],
                "mart_search_keywords": ["event_date", "query"], "mart_search_terms": ["event_date", "term"]}


def connect(settings, reader: bool = False):
    user, password = ((settings.postgres_ro_user, settings.postgres_ro_password) if reader
                      else (settings.postgres_user, settings.postgres_password))
    return psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
                            user=user, password=password, connect_timeout=10)


@pytest.fixture(scope="module")
def initialised(platform):
    """The init SQL applied twice more on top of `make up`'s run: it must be re-runnable."""
    first, second = apply_init_sql(platform), apply_init_sql(platform)
    assert "10_marts.sql" in first and first == second
    return platform


def fetch(settings, sql, params=(), reader=False):
    conn = connect(settings, reader)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def test_marts_have_the_fixed_columns_in_order_and_the_loader_owns_them(initialised):
    for table, columns in MARTS.items():
        rows = fetch(initialised, "SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'gold' AND table_name = %s ORDER BY ordinal_position", (table,))
        assert rows == columns, table
        (owner,), = fetch(initialised, "SELECT tableowner FROM pg_tables WHERE schemaname = 'gold' AND tablename = %s",
                          (table,))
        assert owner == initialised.postgres_user


def test_primary_keys(initialised):
    for table, key in PRIMARY_KEYS.items():
        rows = fetch(initialised, """
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s::regclass AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)""", (f"gold.{table}",))
        assert [r[0] for r in rows] == key, table


def test_every_table_and_column_has_a_comment(initialised):
    for table, columns in MARTS.items():
        (table_comment,), = fetch(initialised, "SELECT obj_description(%s::regclass, 'pg_class')", (f"gold.{table}",))
        assert table_comment, table
        comments = dict(fetch(initialised, """
            SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped""", (f"gold.{table}",)))
        assert all(comments[name] for name, _ in columns), (table, comments)


def test_reader_can_select_every_mart(initialised):
    for table in MARTS:
        (count,), = fetch(initialised, f"SELECT count(*) FROM gold.{table}", reader=True)
        assert count >= 0


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


def assert_reader_refused(settings, statement: str) -> None:
    conn = connect(settings, reader=True)
    try:
        with conn.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement)
    finally:
        conn.rollback()
        conn.close()


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
