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
from datetime import date

from pyspark.sql import functions as F
from pyspark.sql import types as T

from gold import marts
from gold.database import connect_loader
from infrastructure.settings import Settings
from processing import cli, lake, lake_io, live_sink
from processing.spark.session import build_session

JOB = "load_to_postgres"


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
    """Rows of a mart's date partition in its defined column order (the folder gives event_date);
    timestamps rendered in UTC with an explicit offset."""
    frame = lake_io.require_partition(spark, lake.gold_partition(settings.lake_root, mart, day),
                                      f"no Gold {mart} for {day}: run etl_to_gold first")
    stored = frame.select(*marts.BY_NAME[mart].column_names[1:])
    rendered = [F.date_format(c.name, "yyyy-MM-dd HH:mm:ss.SSSSSSxxx").alias(c.name)
                if isinstance(c.dataType, T.TimestampType) else F.col(c.name) for c in stored.schema.fields]
    return ([day.isoformat(), *row] for row in stored.select(*rendered).toLocalIterator())


def load_date(spark, settings, day, names) -> tuple[dict[str, int], float]:
    """Replace the date's rows of every mart in one transaction, deleting its live rows in it too;
    returns rows loaded per table and the seconds the transaction took."""
    buffers = {mart: copy_buffer(gold_rows(spark, settings, mart, day)) for mart in names}
    loaded = {}
    started = time.monotonic()
    with connect_loader(settings, JOB) as conn, conn.cursor() as cur:  # `with conn` = one transaction
        live_rows = live_sink.discard_date(cur, day)
        for name, buffer in buffers.items():
            mart = marts.BY_NAME[name]
            cur.execute(f"DELETE FROM {mart.table} WHERE event_date = %s", (day,))
            cur.copy_expert(f"COPY {mart.table} ({', '.join(mart.column_names)}) FROM STDIN", buffer)
            loaded[name] = cur.rowcount
    conn.close()
    cli.log(JOB, f"replaced live rows={live_rows} of {day} (schema {live_sink.SCHEMA}) by the exact marts")
    return loaded, time.monotonic() - started


def run_date(settings: Settings, day: date) -> int:
    spark = build_session(settings, JOB)
    target = f"{settings.postgres_user}@{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_db}"
    cli.log(JOB, f"input {settings.lake_root}/gold date={day} -> output {target} schema {marts.SCHEMA}")
    loaded, seconds = load_date(spark, settings, day, marts.NAMES)
    for mart, rows in loaded.items():
        cli.log(JOB, f"loaded table={marts.SCHEMA}.{mart} rows={rows}")
    total = sum(loaded.values())
    cli.log(JOB, f"summary date={day} tables={len(loaded)} rows={total} transaction_s={seconds:.2f} "
                 f"rows_per_s={total / max(seconds, 1e-6):.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(JOB, __doc__.splitlines()[0], several=True).parse_args(argv)
    return cli.run_per_date(JOB, args, run_date)  # several dates: one SparkSession, one transaction per date


if __name__ == "__main__":
    sys.exit(main())
