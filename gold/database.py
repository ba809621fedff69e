"""Connections to the Gold database, one helper per role, and the one per-mart count and delete of dates.

The loader owns schemas gold and live and writes them (load_to_postgres, the live sink, the quality gate);
the reader may only look (Superset, the demo's summary), so whatever reads for a person uses the reader.
"""
from __future__ import annotations

import psycopg2

from gold import marts


def _connect(settings, user: str, password: str, application: str | None, timeout: int):
    return psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
                            user=user, password=password, application_name=application, connect_timeout=timeout)


def connect_loader(settings, application: str | None = None, timeout: int = 10):
    return _connect(settings, settings.postgres_user, settings.postgres_password, application, timeout)


def connect_reader(settings, application: str | None = None, timeout: int = 10):
    return _connect(settings, settings.postgres_ro_user, settings.postgres_ro_password, application, timeout)


def rows_of_date(cur, day) -> dict[str, int]:
    """Mart name -> rows of the pipeline date `day`."""
    counts = {}
    for mart in marts.MARTS:
        cur.execute(f"SELECT count(*) FROM {mart.table} WHERE event_date = %s", (day,))
        counts[mart.name] = cur.fetchone()[0]
    return counts


def delete_dates(cur, days) -> dict[str, int]:
    """Delete every mart's rows of the pipeline dates `days`; mart name -> rows deleted."""
    deleted = {}
    for mart in marts.MARTS:
        cur.execute(f"DELETE FROM {mart.table} WHERE event_date = ANY(%s::date[])", (list(days),))
        deleted[mart.name] = cur.rowcount
    return deleted
