"""Gold marts of one date -> PostgreSQL schema gold, replacing that date's rows in ONE transaction.

Per mart: DELETE the date's rows, then COPY the Gold rows (PostgreSQL text format) from the driver.
Readers see the old day or the new day, never half of it; a rerun leaves the same rows. The same
transaction deletes the date's provisional live marts (schema live, written by the stream): from the
commit on, the exact marts replace them.
"""
from __future__ import annotations

import io
import sys
import time

import psycopg2
from pyspark.sql import functions as F
from pyspark.sql import types as T

from processing import cli, lake, lake_io, live_sink
from processing.spark.session import build_session

JOB = "load_to_postgres"
SCHEMA = "gold"


def text_field(value) -> str:
    """One value in COPY text format: \\N for NULL, backslash escapes for the characters COPY reserves."""
    if value is None:
        return r"\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_buffer(rows) -> io.StringIO:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(text_field(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    return buffer


def gold_rows(spark, settings, mart: str, day):
    """(columns, rows) of a mart's date partition; timestamps rendered in UTC with an explicit offset."""
    frame = lake_io.require_partition(spark, lake.gold_partition(settings.lake_root, mart, day),
                                      f"no Gold {mart} for {day}: run etl_to_gold first")
    rendered = [F.date_format(c.name, "yyyy-MM-dd HH:mm:ss.SSSSSSxxx").alias(c.name)
                if isinstance(c.dataType, T.TimestampType) else F.col(c.name) for c in frame.schema.fields]
    columns = ["event_date", *frame.columns]
    return columns, ([day.isoformat(), *row] for row in frame.select(*rendered).toLocalIterator())


def connect(settings):
    return psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
                            user=settings.postgres_user, password=settings.postgres_password,
                            application_name=JOB, connect_timeout=10)


def load_date(spark, settings, day, marts) -> tuple[dict[str, int], float]:
    """Replace the date's rows of every mart in one transaction, deleting its live rows in it too;
    returns rows loaded per table and the seconds the transaction took."""
    buffers = {}
    for mart in marts:
        columns, rows = gold_rows(spark, settings, mart, day)
        buffers[mart] = (columns, copy_buffer(rows))
    loaded = {}
    started = time.monotonic()
    with connect(settings) as conn, conn.cursor() as cur:  # `with conn` = one transaction, rolled back on error
        live_rows = live_sink.discard_date(cur, day)
        for mart, (columns, buffer) in buffers.items():
            table = f"{SCHEMA}.{mart}"
            cur.execute(f"DELETE FROM {table} WHERE event_date = %s", (day,))
            cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
            loaded[mart] = cur.rowcount
    conn.close()
    cli.log(JOB, f"replaced live rows={live_rows} of {day} (schema {live_sink.SCHEMA}) by the exact marts")
    return loaded, time.monotonic() - started


def body(settings, args) -> int:
    spark = build_session(settings, JOB)
    target = f"{settings.postgres_user}@{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_db}"
    cli.log(JOB, f"input {settings.lake_root}/gold date={args.date} -> output {target} schema {SCHEMA}")
    loaded, seconds = load_date(spark, settings, args.date, lake.MARTS)
    for mart, rows in loaded.items():
        cli.log(JOB, f"loaded table={SCHEMA}.{mart} rows={rows}")
    total = sum(loaded.values())
    cli.log(JOB, f"summary date={args.date} tables={len(loaded)} rows={total} transaction_s={seconds:.2f} "
                 f"rows_per_s={total / max(seconds, 1e-6):.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(JOB, __doc__.splitlines()[0], several=True).parse_args(argv)
    return cli.run_per_date(JOB, args, body)  # several dates: one SparkSession, one transaction per date


if __name__ == "__main__":
    sys.exit(main())
