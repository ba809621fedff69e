"""Synthetic generator: determinism, exact injected counts, realistic shape, direct prepared output."""
from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from ingestion import generate as gen
from ingestion import prepare as prep

pytestmark = pytest.mark.unit

START = date(2026, 3, 1)


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        gen.generate(tmp_path / name, START, days=2, events_per_day=1500, seed=seed, duplicates=3, malformed=4)
    for day in ("2026-03-01.json", "2026-03-02.json"):
        assert (tmp_path / "a" / day).read_bytes() == (tmp_path / "b" / day).read_bytes()
        assert (tmp_path / "a" / day).read_bytes() != (tmp_path / "c" / day).read_bytes()


def test_requested_duplicates_and_malformed_lines_are_exact(tmp_path):
    raw_dir = tmp_path / "raw"
    gen.generate(raw_dir, START, days=2, events_per_day=2000, seed=1, duplicates=11, malformed=9)
    for path in sorted(raw_dir.iterdir()):
        lines = path.read_bytes().splitlines()
        assert len(lines) == 2000 + 11 + 9
        assert sum(count - 1 for count in Counter(lines).values()) == 11
    timeline = prep.Timeline(START, date(2026, 3, 2), START, date(2026, 3, 2), ZoneInfo("Asia/Seoul"))
    stats = prep.prepare(raw_dir, tmp_path / "data", timeline)
    assert sum(stats.rejected.values()) == 2 * 9
    assert len(stats.rejected) == 7  # every malformed kind occurs
    assert sum(stats.written.values()) == 2 * (2000 + 11)


def test_generated_logs_look_like_tripclick(tmp_path):
    gen.generate(tmp_path, START, days=2, events_per_day=6000, seed=3)
    records = [orjson.loads(line) for p in sorted(tmp_path.glob("*.json")) for line in p.read_bytes().splitlines()]
    assert len(records) == 12_000
    sessions = Counter(r["SessionId"] for r in records)
    assert 2.0 < len(records) / len(sessions) < 4.5  # several clicks per session
    assert all(len(s) == 24 for s in sessions)
    documents = Counter(r["DocumentId"] for r in records)
    top = documents.most_common(10)
    assert top[0][1] > 20 * (len(records) / len(documents))  # Zipf head: the top document is far above average
    by_document = {}
    for r in records:  # stable title/URL/DOI/areas per document, across days
        attributes = (r["Title"], r["Url"], r["DOI"], r["ClinicalAreas"])
        assert by_document.setdefault(r["DocumentId"], attributes) == attributes
    areas = {a for r in records for a in r["ClinicalAreas"].split(",") if a}
    assert {"Cardiology", "Oncology", "OB-Gyn", "Surgery", "Emergency Medicine", "Pediatrics"} <= areas
    assert areas <= set(gen.CLINICAL_AREAS)
    assert all(r["ClinicalAreas"] == "" or r["ClinicalAreas"].startswith(",") for r in records)
    empty_doi = sum(1 for d in by_document.values() if d[2] == "") / len(by_document)
    assert 0.4 < empty_doi < 0.7
    keywords_by_session = {r["SessionId"]: r["Keywords"] for r in records}
    empty_keywords = sum(1 for k in keywords_by_session.values() if k == "") / len(keywords_by_session)
    assert 0.2 < empty_keywords < 0.4
    created = [r["DateCreated"] for r in records]
    assert all(r["Documents"] == [] for r in records)
    assert [int(c[6:-2]) for c in created] == sorted(int(c[6:-2]) for c in created)  # files are in time order


def test_prepared_mode_writes_ready_to_produce_day_files(tmp_path, capsys):
    out = tmp_path / "data"
    assert gen.main(["--days", "1", "--start", "2026-03-05", "--events-per-day", "3000", "--out", str(out),
                     "--prepared"]) == 0
    files = sorted(out.glob("server*/date=2026-03-05/events.json"))
    assert [f.parent.parent.name for f in files] == ["server0", "server1"]
    records = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
    assert len(records) == 3000
    assert all(r["event_date"] == "2026-03-05" for r in records)
    assert all("2026-03-05T06:00:00.000Z" <= r["event_ts"] < "2026-03-05T07:00:00.000Z" for r in records)
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("prepare: "))
    assert summary == {**summary, "read": 3000, "written": 3000, "rejected": 0, "files": 2}


def test_committed_sample_is_exactly_what_the_documented_commands_produce(tmp_path):
    """ingestion/sample_data was made with the commands in ingestion/README.md; it must stay reproducible."""
    sample = Path(gen.__file__).parent / "sample_data"
    gen.generate(tmp_path / "raw", date(2026, 1, 1), days=2, events_per_day=600, seed=42, duplicates=2, malformed=7)
    timeline = prep.Timeline(date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 1), date(2026, 1, 2),
                             ZoneInfo("Asia/Seoul"))
    prep.prepare(tmp_path / "raw", tmp_path / "prepared", timeline)
    committed = sorted(p.relative_to(sample) for p in sample.rglob("*") if p.is_file())
    assert committed == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for relative in committed:
        assert (sample / relative).read_bytes() == (tmp_path / relative).read_bytes(), relative
    assert sum((sample / p).stat().st_size for p in committed) <= 1_000_000
