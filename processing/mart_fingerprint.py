"""Content fingerprints of a mart's rows of one date, computed alike over the Gold partition (Spark) and over
gold.<mart> (one PostgreSQL query per mart), so reconcile holds PostgreSQL equal to Gold by content, not only
by row counts.

A fingerprint is a few sums over the rows, so neither engine has to order them:
  * per column with an integer form, the exact sum of that form: an integer column as it is, a double rounded
    half-even to SCALE decimals (counted in units of 10^-SCALE), a timestamp as epoch microseconds;
  * `key digest`: the sum, modulo 2^60, of the first 15 hex digits (60 bits) of md5 of the key's canonical text;
  * `row digest`: the same over every column, which catches what the sums cannot: a text column outside the
    key, a NULL instead of a 0, values swapped between rows.
Canonical text of a row: each value as text (an integer form in decimal, a date as YYYY-MM-DD, a text as it
is) written as <characters>:<text>, NULL as ~, all concatenated; the lengths keep it unambiguous whatever
characters a text holds, so no separator has to be kept out of the data.
Columns, types and keys come from gold/marts.py: nothing here names a mart or a column.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column as SparkColumn
from pyspark.sql import Row
from pyspark.sql import functions as F

from gold import marts

SCALE = 6  # decimals of a double that its checksum keeps: both engines round to this
UNITS = 10 ** SCALE
DIGEST_HEX_DIGITS = 15  # 60 bits: a bigint in PostgreSQL, a long in Spark
DIGEST_MODULUS = 2 ** (4 * DIGEST_HEX_DIGITS)
KEY_DIGEST, ROW_DIGEST = "key digest", "row digest"
NULL_TEXT = "~"  # cannot be mistaken for a value's text, which starts with its length

Fingerprint = dict[str, int]

# PostgreSQL type -> the integer form of a value in SQL ({c}: the quoted column); a type absent here has none.
# The double is multiplied as float8 by float8, the same IEEE product Spark computes, and rint() rounds half-even
# like Spark's bround; extract(epoch ...) is numeric, so the microseconds are exact.
SQL_INTEGER = {
    "smallint": "{c}", "integer": "{c}", "bigint": "{c}",
    "double precision": f"round({{c}} * {UNITS}::float8)::bigint",
    "timestamp with time zone": "(extract(epoch FROM {c}) * 1000000)::bigint",
}
SQL_TEXT = {"text": "{c}", "date": "to_char({c}, 'YYYY-MM-DD')"}  # the other types: their integer form as text

SPARK_INTEGER: dict[str, Callable[[str], SparkColumn]] = {
    "smallint": F.col, "integer": F.col, "bigint": F.col,
    "double precision": lambda name: F.bround(F.col(name) * float(UNITS)).cast("bigint"),
    "timestamp with time zone": lambda name: F.expr(f"unix_micros(`{name}`)"),  # no Python wrapper in 3.4
}
SPARK_TEXT: dict[str, Callable[[str], SparkColumn]] = {"text": F.col, "date": lambda name: F.col(name).cast("string")}


def checksum_columns(mart: marts.Mart) -> tuple[marts.Column, ...]:
    return tuple(c for c in mart.columns if c.type in SQL_INTEGER)


def components(mart: marts.Mart) -> tuple[str, ...]:
    """The fingerprint's parts in order: the checksummed columns in table order, then the two digests."""
    return (*(c.name for c in checksum_columns(mart)), KEY_DIGEST, ROW_DIGEST)


def key_columns(mart: marts.Mart) -> tuple[marts.Column, ...]:
    by_name = {c.name: c for c in mart.columns}
    return tuple(by_name[name] for name in mart.key)


# PostgreSQL

def sql_integer(column: marts.Column) -> str:
    return SQL_INTEGER[column.type].format(c=f'"{column.name}"')


def sql_text(column: marts.Column) -> str:
    if column.type in SQL_TEXT:
        return SQL_TEXT[column.type].format(c=f'"{column.name}"')
    return f"({sql_integer(column)})::text"


def sql_canonical_text(columns: Sequence[marts.Column]) -> str:
    """SQL of the canonical text of these columns of a row."""
    fields = [f"coalesce(char_length({t})::text || ':' || {t}, '{NULL_TEXT}')" for t in map(sql_text, columns)]
    return " || ".join(fields)


def sql_digest(columns: Sequence[marts.Column]) -> str:
    return f"sum(('x' || substr(md5({sql_canonical_text(columns)}), 1, {DIGEST_HEX_DIGITS}))" \
           f"::bit({4 * DIGEST_HEX_DIGITS})::bigint)"


def sql_query(mart: marts.Mart) -> str:
    """One query: the fingerprint's raw sums (components order) over the mart's rows of the date parameter."""
    sums = [f"sum({sql_integer(c)})" for c in checksum_columns(mart)]
    sums += [sql_digest(key_columns(mart)), sql_digest(mart.columns)]
    return f"SELECT {', '.join(sums)} FROM {mart.table} WHERE event_date = %s"


def of_postgres(cur, day) -> dict[str, Fingerprint]:
    """Mart name -> fingerprint of its rows of the pipeline date `day`."""
    prints = {}
    for mart in marts.MARTS:
        cur.execute(sql_query(mart), (day,))
        prints[mart.name] = fingerprint(mart, cur.fetchone())
    return prints


# Spark

def spark_integer(column: marts.Column) -> SparkColumn:
    return SPARK_INTEGER[column.type](column.name)


def spark_text(column: marts.Column) -> SparkColumn:
    if column.type in SPARK_TEXT:
        return SPARK_TEXT[column.type](column.name)
    return spark_integer(column).cast("string")


def spark_canonical_text(columns: Sequence[marts.Column]) -> SparkColumn:
    fields = [F.coalesce(F.concat(F.length(t).cast("string"), F.lit(":"), t), F.lit(NULL_TEXT))
              for t in map(spark_text, columns)]
    return F.concat(*fields)


def spark_digest(columns: Sequence[marts.Column]) -> SparkColumn:
    # decimal(38,0): a sum of 60-bit numbers overflows a long after 8 rows
    hashed = F.conv(F.substring(F.md5(spark_canonical_text(columns)), 1, DIGEST_HEX_DIGITS), 16, 10)
    return F.sum(hashed.cast("decimal(38,0)"))


def spark_aggregates(mart: marts.Mart) -> list[SparkColumn]:
    """The fingerprint's raw sums as aggregates over a frame of the mart's rows (with event_date), aliased
    `fingerprint:<component>`; read back with of_spark_row."""
    sums = [F.sum(spark_integer(c).cast("decimal(38,0)")) for c in checksum_columns(mart)]
    sums += [spark_digest(key_columns(mart)), spark_digest(mart.columns)]
    return [total.alias(f"fingerprint:{name}") for total, name in zip(sums, components(mart), strict=True)]


def of_spark_row(mart: marts.Mart, row: Row | None) -> Fingerprint:
    """The fingerprint from a row holding spark_aggregates' columns; None (no rows) = the empty fingerprint."""
    return fingerprint(mart, [row[f"fingerprint:{name}"] if row else None for name in components(mart)])


# Both

def fingerprint(mart: marts.Mart, sums: Sequence) -> Fingerprint:
    """Raw sums in components order (a sum over no rows is NULL) -> the fingerprint, digests modulo 2^60."""
    values = dict(zip(components(mart), (int(s or 0) for s in sums), strict=True))
    for name in (KEY_DIGEST, ROW_DIGEST):
        values[name] %= DIGEST_MODULUS
    return values


def differences(postgres: Fingerprint, gold: Fingerprint) -> list[str]:
    """'<component> <postgres> vs <gold>' for each part that differs (aggregates, so safe to print)."""
    return [f"{name} {postgres[name]} vs {gold[name]}" for name in gold if postgres[name] != gold[name]]
