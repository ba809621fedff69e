"""Mart content fingerprints: the SQL and canonical text with exact expected output, the comparison, and Spark's
fingerprint equal to PostgreSQL's (a throwaway cluster) on the same tiny rows of every mart."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg2
import pytest

from gold import marts
from processing import mart_fingerprint as fp
from processing.spark.jobs import reconcile
from processing.transforms import SPARK_TYPES

DAY = date(2031, 4, 7)
TOY = marts.Mart("mart_toy", ("event_date", "name"), "", (
    marts.Column("event_date", "date", ""), marts.Column("name", "text", ""), marts.Column("hits", "bigint", ""),
    marts.Column("share", "double precision", ""), marts.Column("seen", "timestamp with time zone", "")))
TOY_KEY_SQL = ("coalesce(char_length(to_char(\"event_date\", 'YYYY-MM-DD'))::text || ':' || "
               "to_char(\"event_date\", 'YYYY-MM-DD'), '~') || "
               "coalesce(char_length(\"name\")::text || ':' || \"name\", '~')")


def md5_60(text: str) -> int:
    return int(hashlib.md5(text.encode()).hexdigest()[:15], 16)


@pytest.mark.unit
def test_the_key_text_in_sql():
    assert fp.sql_canonical_text(fp.key_columns(TOY)) == TOY_KEY_SQL


@pytest.mark.unit
def test_the_fingerprint_query():
    row_sql = (TOY_KEY_SQL
               + " || coalesce(char_length((\"hits\")::text)::text || ':' || (\"hits\")::text, '~')"
               " || coalesce(char_length((round(\"share\" * 1000000::float8)::bigint)::text)::text || ':' || "
               "(round(\"share\" * 1000000::float8)::bigint)::text, '~')"
               " || coalesce(char_length(((extract(epoch FROM \"seen\") * 1000000)::bigint)::text)::text || ':' || "
               "((extract(epoch FROM \"seen\") * 1000000)::bigint)::text, '~')")
    assert fp.sql_query(TOY) == (
        "SELECT sum(\"hits\"), sum(round(\"share\" * 1000000::float8)::bigint), "
        "sum((extract(epoch FROM \"seen\") * 1000000)::bigint), "
        f"sum(('x' || substr(md5({TOY_KEY_SQL}), 1, 15))::bit(60)::bigint), "
        f"sum(('x' || substr(md5({row_sql}), 1, 15))::bit(60)::bigint) "
        "FROM gold.mart_toy WHERE event_date = %s")


@pytest.mark.unit
def test_the_parts_come_from_the_mart_definition():
    assert fp.components(TOY) == ("hits", "share", "seen", "key digest", "row digest")
    assert fp.components(marts.BY_NAME["mart_popular_documents"]) == (
        "document_id", "view_count", "unique_sessions", "rank", "key digest", "row digest")


@pytest.mark.unit
def test_raw_sums_become_a_fingerprint():
    assert fp.fingerprint(TOY, [Decimal(7), None, 3, 2 ** 60 + 5, Decimal(2 ** 61)]) == {
        "hits": 7, "share": 0, "seen": 3, "key digest": 5, "row digest": 0}


@pytest.mark.unit
def test_the_comparison_names_each_differing_part_with_both_values():
    gold = {"hits": 7, "share": 0, "seen": 3, "key digest": 5, "row digest": 9}
    assert fp.differences(dict(gold), gold) == []
    assert fp.differences({**gold, "share": 1, "row digest": 8}, gold) == ["share 1 vs 0", "row digest 8 vs 9"]


@pytest.mark.unit
def test_content_checks_per_mart():
    same = {m.name: fp.fingerprint(m, [1] * len(fp.components(m))) for m in marts.MARTS}
    changed = {**same, "mart_search_terms": {**same["mart_search_terms"], "key digest": 2}}
    results = reconcile.content_checks(changed, same)
    assert [name for name, _, _ in results] == [f"postgres_content_eq_gold:{m}" for m in marts.NAMES]
    assert [(name, detail) for name, ok, detail in results if not ok] == [
        ("postgres_content_eq_gold:mart_search_terms", "key digest 2 vs 1")]
    assert dict((n, d) for n, _, d in results)["postgres_content_eq_gold:mart_daily_traffic"] == \
        "6 checksums and digests equal"


@pytest.mark.unit
def test_spark_fingerprint_of_known_rows(spark):
    mart = marts.BY_NAME["mart_clinical_areas"]
    frame = spark.createDataFrame([(DAY, "Oncology", 3, 2, 1 / 3), (DAY, "(none)", 1, 1, None)], spark_schema(mart))
    got = fp.of_spark_row(mart, frame.agg(*fp.spark_aggregates(mart)).first())
    assert got == {
        "click_count": 4, "unique_sessions": 3, "click_share": 333333,
        "key digest": (md5_60("10:2031-04-078:Oncology") + md5_60("10:2031-04-076:(none)")) % 2 ** 60,
        "row digest": (md5_60("10:2031-04-078:Oncology1:31:26:333333") + md5_60("10:2031-04-076:(none)1:11:1~"))
        % 2 ** 60}


UTC = timezone.utc
# Values per PostgreSQL type, cycled over the rows: NULLs, a text with the canonical text's own characters and
# multi-byte ones, doubles whose scaled value lands on or near .5, timestamps before 1970 and with microseconds.
SAMPLES = {
    "text": ["Oncology", "3:a~b|c", "Ünïcödé ✓ 中文", None, ""],
    "smallint": [0, 23, -7, None, 32767],
    "integer": [1, 2 ** 31 - 1, -2 ** 31, None, 42],
    "bigint": [0, 2 ** 62, -(2 ** 53) - 1, None, 987654321],
    "double precision": [1 / 3, 2.5e-6, 0.1 + 0.2, None, 123456789.0000005, 5e-7, -0.0000015],
    "timestamp with time zone": [datetime(2031, 4, 7, 23, 59, 59, 999999, UTC), datetime(1969, 12, 31, 23, 59, 59,
                                 500001, UTC), None, datetime(2031, 4, 7, tzinfo=UTC)],
}


def sample_rows(mart: marts.Mart, count: int = 7) -> list[tuple]:
    """Rows of the date whose values vary per row and column (each column starts at another sample)."""
    return [tuple(DAY if c.name == "event_date" else SAMPLES[c.type][(row + i) % len(SAMPLES[c.type])]
                  for i, c in enumerate(mart.columns)) for row in range(count)]


def spark_schema(mart: marts.Mart) -> str:
    return ", ".join(f"`{c.name}` {SPARK_TYPES[c.type]}" for c in mart.columns)


@pytest.mark.integration
def test_spark_and_postgresql_agree_on_every_mart(spark, throwaway_postgres):
    conn = psycopg2.connect(host=throwaway_postgres["PGHOST"], port=throwaway_postgres["PGPORT"], user="postgres",
                            dbname="postgres")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE SCHEMA gold")
            for mart in marts.MARTS:  # no constraints: NULL keys too
                cur.execute(f"CREATE TABLE {mart.table} ({', '.join(f'{c.name} {c.type}' for c in mart.columns)})")
                cur.executemany(f"INSERT INTO {mart.table} VALUES ({', '.join(['%s'] * len(mart.columns))})",
                                sample_rows(mart))
            postgres = fp.of_postgres(cur, DAY)
    finally:
        conn.close()
    for mart in marts.MARTS:
        frame = spark.createDataFrame(sample_rows(mart), spark_schema(mart))
        gold = fp.of_spark_row(mart, frame.agg(*fp.spark_aggregates(mart)).first())
        assert gold == postgres[mart.name], mart.name
        assert all(gold.values()), (mart.name, gold)  # the samples reach every part
