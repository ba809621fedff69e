"""The step tables of orchestration/README.md, rendered from orchestration.steps rather than retyped.

    python -m orchestration.doc_tables [--check]      (make docs)

Each table sits between `<!-- NAME: ... -->` and `<!-- /NAME -->`, NAME being the list it shows; this
rewrites what lies between them, `--check` only reports a stale one (exit 1). The unit test
tests/orchestration/test_steps.py asserts the README equals its rewrite, so a changed step fails the
fast tests until the README is regenerated.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from orchestration.steps import BACKFILL_STEPS, STEPS, markdown_table

README = Path(__file__).resolve().parent / "README.md"
TABLES = {"STEPS": STEPS, "BACKFILL_STEPS": BACKFILL_STEPS}


def refreshed(text: str) -> str:
    """`text` with every marked table replaced by its rendering; an absent marker pair is an error."""
    for name, steps in TABLES.items():
        block = re.search(rf"(<!-- {name}: [^\n]*-->\n).*?(<!-- /{name} -->)", text, re.DOTALL)
        if not block:
            raise ValueError(f"no <!-- {name}: ... --> ... <!-- /{name} --> block")
        text = f"{text[:block.end(1)]}{markdown_table(steps)}\n{text[block.start(2):]}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the README is up to date")
    args = parser.parse_args()
    text = README.read_text()
    fresh = refreshed(text)
    if fresh == text:
        print(f"{README.name}: step tables up to date")
    elif args.check:
        sys.exit(f"{README}: step tables are stale; run python -m orchestration.doc_tables")
    else:
        README.write_text(fresh)
        print(f"{README.name}: step tables rewritten")


if __name__ == "__main__":
    main()
