"""10_marts.sql upgrades a Gold database created before issue 11 in place, on a private throwaway
PostgreSQL 15 cluster (own folder, socket and free port), never the shared platform's.

Before issue 11: mart_search_keywords had (keyword, searches) and mart_clinical_areas had no click_share.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from infrastructure.settings import REPO_ROOT

pytestmark = pytest.mark.integration
MARTS_SQL = REPO_ROOT / "gold" / "postgres" / "init" / "10_marts.sql"

OLD_SCHEMA = """
CREATE TABLE gold.mart_clinical_areas (
    event_date date NOT NULL, clinical_area text NOT NULL,
    click_count bigint NOT NULL CHECK (click_count >= 0), unique_sessions bigint NOT NULL CHECK (unique_sessions >= 0),
    CONSTRAINT mart_clinical_areas_pk PRIMARY KEY (event_date, clinical_area));
CREATE TABLE gold.mart_search_keywords (
    event_date date NOT NULL, keyword text NOT NULL, searches bigint NOT NULL CHECK (searches >= 0),
    clicks bigint NOT NULL CHECK (clicks >= 0), unique_documents bigint NOT NULL CHECK (unique_documents >= 0),
    CONSTRAINT mart_search_keywords_pk PRIMARY KEY (event_date, keyword));
INSERT INTO gold.mart_clinical_areas VALUES ('2026-01-01', 'Oncology', 5, 2);
INSERT INTO gold.mart_search_keywords VALUES ('2026-01-01', 'asthma', 3, 4, 2);
"""


@pytest.fixture
def old_database(throwaway_postgres):
    """Roles t_loader/t_reader, database t_gold, schema gold and the old marts, on a throwaway cluster."""
    def psql(db: str, script: str) -> str:
        run = subprocess.run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", db,
                              "-f", "-"], input=script, capture_output=True, text=True,
                             env={**os.environ, **throwaway_postgres})
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    psql("postgres", "CREATE ROLE t_loader LOGIN;\nCREATE ROLE t_reader LOGIN;\n")
    psql("postgres", "CREATE DATABASE t_gold;\n")
    psql("t_gold", "CREATE SCHEMA gold AUTHORIZATION t_loader;\nSET ROLE t_loader;\n" + OLD_SCHEMA)
    return psql


def test_old_marts_are_upgraded_in_place_and_the_upgrade_is_rerunnable(old_database):
    psql = old_database
    apply = "\\set loader t_loader\n\\set reader t_reader\n" + MARTS_SQL.read_text(encoding="utf-8")
    for _ in range(2):
        psql("t_gold", apply)

    def columns(table: str) -> str:
        return psql("t_gold", f"SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                              f"information_schema.columns WHERE table_schema = 'gold' AND table_name = '{table}';")

    assert columns("mart_search_keywords") == "event_date,query,sessions,clicks,unique_documents"
    assert columns("mart_clinical_areas") == "event_date,clinical_area,click_count,unique_sessions,click_share"
    assert columns("mart_search_terms") == "event_date,term,sessions,clicks,queries,unique_documents"
    # rows loaded before the upgrade are kept; the new column is NULL until the date is reloaded
    assert psql("t_gold", "SELECT query, sessions, clicks FROM gold.mart_search_keywords;") == "asthma|3|4"
    assert psql("t_gold", "SELECT clinical_area, click_count, click_share IS NULL FROM gold.mart_clinical_areas;") \
        == "Oncology|5|t"
    assert psql("t_gold", "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                          "WHERE conname = 'mart_search_keywords_pk';") == "PRIMARY KEY (event_date, query)"
    assert psql("t_gold", "SELECT count(*) FROM pg_constraint WHERE conrelid = 'gold.mart_clinical_areas'::regclass "
                          "AND pg_get_constraintdef(oid) LIKE '%click_share%';") == "1"  # not added twice
    assert psql("t_gold", "SELECT has_table_privilege('t_reader', 'gold.mart_search_terms', 'SELECT');") == "t"
    assert psql("t_gold", "SELECT col_description('gold.mart_search_keywords'::regclass, 2) LIKE 'The Keywords%';") \
        == "t"
