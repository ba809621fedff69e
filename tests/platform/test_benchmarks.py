"""The benchmark recorder appends one row to the results table and refuses a file without one."""
import re

import pytest

from infrastructure import benchmarks

pytestmark = pytest.mark.unit


def test_a_result_becomes_the_last_row_with_date_machine_load_and_command(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Benchmarks\n\n{benchmarks.RESULTS_HEADER}\n|---|---|---|---|---|\n| old | row | - | `x` | `y` |")
    benchmarks.record("make bench-x", "bench-x: a=1 b=2", "0.5/0.4/0.3", doc)
    lines = doc.read_text().splitlines()
    assert lines[-2] == "| old | row | - | `x` | `y` |"
    cells = [cell.strip() for cell in lines[-1].strip("|").split("|")]
    assert len(cells) == 5 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells[0])
    assert cells[1] == benchmarks.machine() and " cores (" in cells[1] and " GiB, Python 3." in cells[1]
    assert cells[2:] == ["0.5/0.4/0.3", "`make bench-x`", "`bench-x: a=1 b=2`"]


def test_a_file_without_the_results_table_is_refused(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n")
    with pytest.raises(RuntimeError, match="no results table"):
        benchmarks.record("make bench-x", "bench-x: a=1", "0.1/0.1/0.1", doc)
    assert doc.read_text() == "# Benchmarks\n"
