"""gold/postgres/init/10_marts.sql creates the marts of gold/marts.py: same tables, columns in order, types,
primary keys and, word for word, the same table and column comments (pure, reads the SQL as text); and
40_pipeline_runs.sql creates gold.pipeline_runs as report_date writes it, a comment on the table and every column."""
from __future__ import annotations

import re

import pytest

from gold import marts
from infrastructure.settings import REPO_ROOT

pytestmark = pytest.mark.unit
INIT = REPO_ROOT / "gold" / "postgres" / "init"
DDL = (INIT / "10_marts.sql").read_text(encoding="utf-8")
RUNS_DDL = (INIT / "40_pipeline_runs.sql").read_text(encoding="utf-8")
# The DDL's short spelling of a type -> the one information_schema (and so the definition) uses.
ALIASES = {"timestamptz": "timestamp with time zone"}

_CREATE = re.compile(r"^CREATE TABLE IF NOT EXISTS gold\.(\w+) \((.*?)^\);", re.S | re.M)
_COMMENT = re.compile(r"^COMMENT ON (?:TABLE|COLUMN) gold\.(\w+)(?:\.(\w+))? IS\s+((?:'(?:[^']|'')*'\s*)+);", re.M)
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def created(ddl: str = DDL) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """Table -> ([(column, type)], primary key) of each CREATE TABLE."""
    tables = {}
    for table, body in _CREATE.findall(ddl):
        columns, key = [], []
        for line in (raw.strip().rstrip(",") for raw in body.strip().splitlines()):
            if line.startswith("CONSTRAINT"):
                found = re.search(r"PRIMARY KEY \(([^)]*)\)", line)
                key = [name.strip() for name in found.group(1).split(",")] if found else key
                continue
            name, rest = line.split(None, 1)
            kind = re.match(r"double precision|\w+", rest).group(0)
            columns.append((name, ALIASES.get(kind, kind)))
        tables[table] = (columns, key)
    return tables


def comments(ddl: str = DDL) -> dict[tuple[str, str | None], str]:
    """(table, column or None for the table) -> comment, adjacent SQL string literals joined."""
    return {(table, column or None): "".join(text.replace("''", "'") for text in _LITERAL.findall(literals))
            for table, column, literals in _COMMENT.findall(ddl)}


def test_the_ddl_creates_the_defined_marts_with_their_columns_types_and_keys():
    expected = {m.name: ([(c.name, c.type) for c in m.columns], list(m.key)) for m in marts.MARTS}
    assert created() == expected


def test_the_ddl_comments_are_the_definition_word_for_word():
    expected = {(m.name, None): m.description for m in marts.MARTS}
    expected.update({(m.name, c.name): c.description for m in marts.MARTS for c in m.columns})
    assert comments() == expected


def test_every_key_starts_with_event_date_and_names_columns_of_its_mart():
    for mart in marts.MARTS:
        assert mart.key[0] == "event_date" and set(mart.key) <= set(mart.column_names), mart.name


def test_pipeline_runs_has_the_columns_report_date_writes_its_key_and_a_comment_on_each():
    columns = [("step", "text"), ("event_date", "date"), ("success", "boolean"), ("rows", "bigint"),
               ("seconds", "double precision"), ("finished_at", "timestamp with time zone")]
    assert created(RUNS_DDL) == {"pipeline_runs": (columns, ["step", "event_date"])}
    described = comments(RUNS_DDL)
    assert set(described) == {("pipeline_runs", None), *(("pipeline_runs", name) for name, _ in columns)}
    assert all(described.values())
    assert "SET ROLE :\"loader\";" in RUNS_DDL and "GRANT SELECT ON gold.pipeline_runs TO :\"reader\";" in RUNS_DDL
