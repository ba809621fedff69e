"""The live marts' PostgreSQL side: apply one micro-batch of per-minute aggregates, exactly once.

One transaction per micro-batch (schema `live`, gold/postgres/init/30_live.sql), as the loader role:
  1. take the advisory lock LIVE_LOCK (load_to_postgres takes it too, so a batch and a day's load never
     interleave);
  2. read live.applied_batches for the query id: a batch id at or below the recorded one was already
     applied (a replay after a restart, at-least-once from Spark) -> nothing is written;
  3. drop the dates whose exact marts are loaded (gold.mart_daily_traffic has the date): the exact marts
     replace the live rows, and late stream rows must not bring them back;
  4. batch 0 of a query (a fresh checkpoint: its file source reads all of silver/_stream at once) REPLACES
     the live rows of its dates; every later batch ADDS its counts (upsert clicks = clicks + new);
  5. record the batch id. Commit = counts and batch id together, so a batch counts once or not at all.
"""
from __future__ import annotations

from psycopg2.extras import execute_values

from gold.database import connect_loader
from processing.live import TABLES

SCHEMA = "live"
# pg_advisory_xact_lock key shared by the live writer and load_to_postgres (any constant; 'TCLIVE' in hex).
LIVE_LOCK = 0x54434C495645
APPLICATION = "streaming_to_silver:live"

_MERGE = {  # how a batch's value is combined with the stored one
    "clicks": "{t}.clicks + EXCLUDED.clicks",
    "click_share": "{t}.click_share + EXCLUDED.click_share",
    "title": "GREATEST({t}.title, EXCLUDED.title)",  # GREATEST ignores NULLs
}


def connect(settings, timeout: int = 5):
    return connect_loader(settings, APPLICATION, timeout)


def upsert_sql(table: str) -> str:
    keys, values = TABLES[table]
    columns = ", ".join((*keys, *values, "updated_at"))
    merges = ", ".join(f"{v} = {_MERGE[v].format(t=table)}" for v in values)
    return (f"INSERT INTO {SCHEMA}.{table} AS {table} ({columns}) VALUES %s "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {merges}, updated_at = EXCLUDED.updated_at")


def apply_batch(conn, query_id: str, batch_id: int, rows: dict[str, list[tuple]]) -> tuple[str, list]:
    """Apply one micro-batch's rows ({table: [row in TABLES order]}) in one transaction.
    Returns ("applied" | "replayed", dates written)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LIVE_LOCK,))
        cur.execute(f"SELECT batch_id FROM {SCHEMA}.applied_batches WHERE query_id = %s", (query_id,))
        found = cur.fetchone()
        if found is not None and batch_id <= found[0]:
            return "replayed", []
        dates = sorted({row[0] for table_rows in rows.values() for row in table_rows})
        cur.execute("SELECT event_date FROM gold.mart_daily_traffic WHERE event_date = ANY(%s)", (dates,))
        loaded = {r[0] for r in cur.fetchall()}
        keep = [d for d in dates if d not in loaded]
        cur.execute("SELECT now()")
        (now,) = cur.fetchone()
        if batch_id == 0 and keep:
            for table in TABLES:
                cur.execute(f"DELETE FROM {SCHEMA}.{table} WHERE event_date = ANY(%s)", (keep,))
        for table, table_rows in rows.items():
            chosen = [(*row, now) for row in table_rows if row[0] not in loaded]
            if chosen:
                execute_values(cur, upsert_sql(table), chosen, page_size=1000)
        cur.execute(f"INSERT INTO {SCHEMA}.applied_batches (query_id, batch_id, applied_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (query_id) DO UPDATE SET batch_id = EXCLUDED.batch_id, "
                    "applied_at = EXCLUDED.applied_at", (query_id, batch_id, now))
    return "applied", keep


def discard_date(cur, day) -> int:
    """In the caller's transaction (load_to_postgres): delete the date's live rows, under LIVE_LOCK so no
    live batch interleaves. A database without the live schema (not upgraded yet) is left alone.
    Returns the rows deleted."""
    cur.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.clicks_per_minute",))
    if cur.fetchone()[0] is None:
        return 0
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (LIVE_LOCK,))
    deleted = 0
    for table in TABLES:
        cur.execute(f"DELETE FROM {SCHEMA}.{table} WHERE event_date = %s", (day,))
        deleted += cur.rowcount
    return deleted
