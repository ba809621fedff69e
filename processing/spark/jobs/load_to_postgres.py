"""Gold marts of one date -> PostgreSQL schema gold, replacing that date's rows in ONE transaction.

Per mart: DELETE the date's rows, then COPY the Gold rows (PostgreSQL text format), streamed from the lake
through the driver part by part, so a date of any size loads at the same heap.
Readers see the old day or the new day, never half of it; a rerun leaves the same rows. The same
transaction deletes the date's provisional live marts (schema live, written by the stream): from the
commit on, the exact marts replace them.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_type

from gold import marts
from gold.database import connect_loader
from infrastructure.settings import Settings
from processing import cli, lake, lake_io, live_sink
from processing.spark.session import build_session

JOB = "load_to_postgres"


# COPY text format: a backslash starts an escape, so it is doubled first; tab, newline and carriage return would end
# a field or a row.
COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
COPY_NULL = "\\N"


def copy_field(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """One column in COPY text format: NULL as \\N, text escaped; numbers as Arrow spells them (a double in its
    shortest round-trip form, e.g. 0 for 0.0, which PostgreSQL reads back as the same value)."""
    if pa.types.is_string(column.type):
        for char, escaped in COPY_ESCAPES:
            column = pc.replace_substring(column, char, escaped)
    else:
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, COPY_NULL)


def copy_text(table: pa.Table, day: date) -> str:
    """The rows of a mart's date in COPY text format, event_date first (the folder gives it, the table has it)."""
    if not table.num_rows:
        return ""
    fields = [pa.chunked_array([[day.isoformat()] * table.num_rows], pa.string())]
    lines = pc.binary_join_element_wise(*fields, *(copy_field(c) for c in table.columns), "\t")
    return "\n".join(lines.to_pylist()) + "\n"


def arrow_rows(frame, mart: str) -> pa.Table:
    """Rows of a mart in its defined column order, collected through Arrow; timestamps rendered in UTC with an
    explicit offset (the folder gives event_date)."""
    stored = frame.select(*marts.BY_NAME[mart].column_names[1:])
    rendered = stored.select(*(F.date_format(c.name, "yyyy-MM-dd HH:mm:ss.SSSSSSxxx").alias(c.name)
                               if isinstance(c.dataType, T.TimestampType) else F.col(c.name)
                               for c in stored.schema.fields))
    # PySpark 3.4 has no public Arrow collect (DataFrame.toArrow comes with 4.0); toPandas would turn an integer
    # column holding a NULL into floats.
    batches = rendered._collect_as_arrow()
    schema = pa.schema([pa.field(c.name, to_arrow_type(c.dataType)) for c in rendered.schema.fields])
    return pa.Table.from_batches(batches, schema=schema)


def copy_chunks(spark, settings, mart: str, day) -> Iterator[str]:
    """A mart's date partition as COPY text, one Parquet file at a time: a file holds at most
    `spark.sql.files.maxRecordsPerFile` rows, so neither the driver's heap nor this process ever holds the whole
    mart, and a small date is one Arrow collect per mart."""
    for part in lake_io.require_partition_files(spark, lake.gold_partition(settings.lake_root, mart, day),
                                                f"no Gold {mart} for {day}: run etl_to_gold first"):
        text = copy_text(arrow_rows(part, mart), day)
        if text:
            yield text


class ChunkReader:
    """The file object COPY FROM STDIN reads: each read() hands over the next chunk ("" at the end)."""

    def __init__(self, chunks: Iterable[str]):
        self._chunks = iter(chunks)

    def read(self, size: int = -1) -> str:
        return next(self._chunks, "")


def load_date(spark, settings, day, names) -> tuple[dict[str, int], float]:
    """Replace the date's rows of every mart in one transaction, deleting its live rows in it too; each mart is
    streamed from the lake into its COPY. Returns rows loaded per table and the seconds the transaction took
    (reading Gold included)."""
    loaded = {}
    started = time.monotonic()
    with connect_loader(settings, JOB) as conn, conn.cursor() as cur:  # `with conn` = one transaction
        live_rows = live_sink.discard_date(cur, day)
        for name in names:
            mart = marts.BY_NAME[name]
            cur.execute(f"DELETE FROM {mart.table} WHERE event_date = %s", (day,))
            cur.copy_expert(f"COPY {mart.table} ({', '.join(mart.column_names)}) FROM STDIN",
                            ChunkReader(copy_chunks(spark, settings, name, day)))
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
    cli.summary(JOB, day, total, tables=len(loaded), rows=total, transaction_s=f"{seconds:.2f}",
                rows_per_s=f"{total / max(seconds, 1e-6):.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = cli.parser(JOB, __doc__.splitlines()[0], several=True).parse_args(argv)
    return cli.run_per_date(JOB, args, run_date)  # several dates: one SparkSession, one transaction per date


if __name__ == "__main__":
    sys.exit(main())
