"""Queries as the loader or the reader against a Gold database (the shared platform's, or a throwaway cluster's
through tests/gold/init_cluster.py), for the schema tests."""
from __future__ import annotations

import pytest
from psycopg2 import errors

from gold.database import connect_loader, connect_reader


def connect(settings, reader: bool = False):
    return (connect_reader if reader else connect_loader)(settings, "pytest")


def fetch(settings, sql, params=(), reader=False):
    conn = connect(settings, reader)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def assert_reader_selects(settings, tables) -> None:
    for table in tables:
        (count,), = fetch(settings, f"SELECT count(*) FROM {table}", reader=True)
        assert count >= 0, table


def assert_reader_refused(settings, statement: str) -> None:
    """The reader's privileges refuse `statement`. Its transactions start read-only, but that is a default any
    session may override: this one runs read-write, so the privileges alone must refuse."""
    conn = connect(settings, reader=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ WRITE")
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(statement)
    finally:
        conn.rollback()
        conn.close()
