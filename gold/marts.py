"""The six Gold marts, defined once in gold/marts.toml: name, meaning, columns in table order (PostgreSQL type,
meaning), primary key.

Everything that names a mart or its columns reads this module: the Spark builders conform their output to
it (processing/transforms.py), load_to_postgres copies these columns, reconcile counts these marts and
fingerprints their content from these types and keys (processing/mart_fingerprint.py), the demo counts them,
and tests hold the rest to it: gold/postgres/init/10_marts.sql creates exactly these columns with these
comments (tests/gold/test_mart_definition.py) and the Superset datasets describe them alike
(tests/gold/test_assets.py). How each value is computed is in gold/README.md and processing/transforms.py.
Standard library only, so the processing image, Superset's and the tests import it without Spark or a database.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

SCHEMA = "gold"
DEFINITION = Path(__file__).with_name("marts.toml")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL type as information_schema.columns spells it
    description: str


@dataclass(frozen=True)
class Mart:
    name: str
    key: tuple[str, ...]  # the primary key; every mart's starts with event_date
    description: str
    columns: tuple[Column, ...]

    @property
    def table(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _read(path: Path) -> tuple[Mart, ...]:
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    return tuple(Mart(m["name"], tuple(m["key"]), m["description"], tuple(Column(**c) for c in m["column"]))
                 for m in document["mart"])


MARTS = _read(DEFINITION)
NAMES = tuple(m.name for m in MARTS)
BY_NAME = {m.name: m for m in MARTS}
