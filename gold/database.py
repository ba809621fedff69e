"""Connections to the Gold database, one helper per role, the one per-mart count and delete of dates, and the
upsert of a step's outcome into gold.pipeline_runs.

The loader owns schemas gold and live and writes them (load_to_postgres, the live sink, the quality gate, the
jobs' pipeline_runs rows);
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


def record_run(cur, step: str, day, success: bool, rows: int, seconds: float, finished_at) -> None:
    """Upsert the outcome of an attempt of `step` at pipeline date `day` into gold.pipeline_runs (40_pipeline_runs.sql):
    one row per (step, date), the last attempt's."""
    cur.execute("INSERT INTO gold.pipeline_runs (step, event_date, success, rows, seconds, finished_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (step, event_date) DO UPDATE SET "
                "success = EXCLUDED.success, rows = EXCLUDED.rows, seconds = EXCLUDED.seconds, "
                "finished_at = EXCLUDED.finished_at",
                (step, day, success, max(int(rows), 0), max(float(seconds), 0.0), finished_at))
