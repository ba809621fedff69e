"""Least privilege on a throwaway PostgreSQL 15 cluster with the init SQL applied (tests/gold/init_cluster.py):
the reader reads Gold and nothing else, its sessions start read-only and bounded, no database is open to PUBLIC,
the loader still writes, and applying the init SQL again changes none of it."""
from __future__ import annotations

import time
import uuid

import psycopg2
import pytest
from psycopg2 import errors

from gold import marts
from tests.gold.init_cluster import INIT_ENV, apply_init, cluster_env, gold_settings, query
from tests.gold.pg_helpers import assert_reader_refused, assert_reader_selects, connect, fetch

pytestmark = pytest.mark.integration
LOADER, READER = INIT_ENV["GOLD_LOADER"], INIT_ENV["GOLD_READER"]
OWNED_DATABASES = {INIT_ENV["AIRFLOW_USER"]: INIT_ENV["AIRFLOW_DB"], INIT_ENV["SUPERSET_USER"]: INIT_ENV["SUPERSET_DB"]}
# What the init SQL decides about roles and databases, as the catalog records it.
ACCESS_SNAPSHOT = ("SELECT string_agg(datname || ' ' || coalesce(datacl::text, 'default'), E'\\n' ORDER BY datname) "
                   "FROM pg_database UNION ALL "
                   "SELECT string_agg(rolname || ' ' || rolconnlimit || ' ' || coalesce(rolconfig::text, '-'), E'\\n' "
                   "ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 't\\_%'")


@pytest.fixture(scope="module")
def cluster(module_throwaway_postgres):
    """(psql environment, Settings) of one cluster with the init SQL applied; each test leaves it as it was but
    for tables of its own."""
    env = cluster_env(module_throwaway_postgres)
    apply_init(env)
    return env, gold_settings(module_throwaway_postgres)


def login_error(settings, user: str, database: str) -> str:
    """Why `user` may not connect to `database` ('' when it may)."""
    try:
        psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, user=user, dbname=database).close()
    except psycopg2.OperationalError as exc:
        return str(exc)
    return ""


def test_the_reader_starts_read_only_bounded_and_limited(cluster):
    env, _ = cluster
    (config, limit), = [row.split("|") for row in query(env, "postgres", "SELECT rolconfig, rolconnlimit FROM "
                                                        f"pg_roles WHERE rolname = '{READER}'").splitlines()]
    assert config == ("{default_transaction_read_only=on,statement_timeout=1s,"
                      "idle_in_transaction_session_timeout=1min,idle_session_timeout=15min}")
    assert limit == "20"


def test_no_database_is_open_to_public_and_each_role_reaches_only_its_own(cluster):
    env, settings = cluster
    acl = dict(row.split("|") for row in query(env, "postgres", "SELECT datname, datacl FROM pg_database "
                                                                "WHERE datallowconn").splitlines())
    # An empty ACL is the default one, which grants PUBLIC; a PUBLIC entry reads "=c/owner".
    assert [db for db, entries in acl.items() if not entries or "{=" in entries or ",=" in entries] == [], acl
    gold = settings.postgres_db
    for database in ("postgres", "template1", *OWNED_DATABASES.values()):
        for role in (READER, LOADER):
            assert "permission denied for database" in login_error(settings, role, database), (role, database)
    for role, own in OWNED_DATABASES.items():
        for database in ("postgres", gold, *(set(OWNED_DATABASES.values()) - {own})):
            assert "permission denied for database" in login_error(settings, role, database), (role, database)
    allowed = [(READER, gold), (LOADER, gold), *OWNED_DATABASES.items()]
    assert [login_error(settings, role, database) for role, database in allowed] == [""] * len(allowed)


@pytest.mark.parametrize("statement", [
    "INSERT INTO gold.mart_daily_traffic VALUES ('2031-07-01', 1, 1, 1, 0)",
    "UPDATE gold.pipeline_runs SET success = true",
    "DELETE FROM live.clicks_per_minute",
    "CREATE TABLE gold.reader_made (x int)",
    "CREATE TABLE public.reader_made (x int)",
    "CREATE TEMPORARY TABLE reader_made (x int)",
])
def test_the_reader_reads_and_its_privileges_refuse_every_write_even_read_write(cluster, statement):
    _, settings = cluster
    assert_reader_selects(settings, (mart.table for mart in marts.MARTS))
    assert_reader_refused(settings, statement)


def test_a_write_of_the_reader_fails_as_read_only_first(cluster):
    _, settings = cluster
    conn = connect(settings, reader=True)
    try:
        with conn.cursor() as cur, pytest.raises(errors.ReadOnlySqlTransaction):
            cur.execute("INSERT INTO gold.mart_daily_traffic VALUES ('2031-07-01', 1, 1, 1, 0)")
    finally:
        conn.close()


def test_the_statement_timeout_cancels_a_long_query_of_the_reader(cluster):
    _, settings = cluster
    conn = connect(settings, reader=True)
    started = time.monotonic()
    try:
        with conn.cursor() as cur, pytest.raises(errors.QueryCanceled, match="statement timeout"):
            cur.execute("SELECT pg_sleep(60)")
    finally:
        conn.close()
    assert time.monotonic() - started < 30  # cancelled by the 1 s timeout, not finished


def test_the_loader_still_creates_and_writes_and_the_reader_reads_what_it_wrote(cluster):
    _, settings = cluster
    table = f"gold.loader_made_{uuid.uuid4().hex[:8]}"
    loader = connect(settings)
    try:
        with loader, loader.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (x int)")
            cur.execute(f"INSERT INTO {table} VALUES (42)")
    finally:
        loader.close()
    assert fetch(settings, f"SELECT x FROM {table}", reader=True) == [(42,)]


def test_applying_the_init_sql_again_changes_nothing(cluster):
    env, _ = cluster
    before = query(env, "postgres", ACCESS_SNAPSHOT)
    apply_init(env)
    assert query(env, "postgres", ACCESS_SNAPSHOT) == before
