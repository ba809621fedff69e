"""Preparation on a crafted raw sample: server split, day mapping, window placement, order, rejects."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
import xxhash

from ingestion import prepare as prep

pytestmark = pytest.mark.unit

SEOUL = ZoneInfo("Asia/Seoul")
# Source 2013-01-01..2013-01-04 onto target 2026-01-01..2026-01-02: two source days per target day.
TIMELINE = prep.Timeline(date(2013, 1, 1), date(2013, 1, 4), date(2026, 1, 1), date(2026, 1, 2), SEOUL)


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp() * 1000)


def raw(session: str, document: int, created_ms: int, **extra) -> bytes:
    record = {"DateCreated": f"/Date({created_ms})/", "SessionId": session, "DocumentId": document,
              "Url": "u", "Title": "t", "DOI": "", "ClinicalAreas": ",Oncology", "Keywords": "", "Documents": []}
    return orjson.dumps({**record, **extra})


# Per source file: lines in file order (deliberately not in time order inside 2013-01-02).
GOOD = {
    "2013-01-01.json": [raw("sess-a", 1, ms(2013, 1, 1, 0, 0, 0)), raw("sess-a", 2, ms(2013, 1, 1, 0, 0, 24)),
                        raw("sess-b", 3, ms(2013, 1, 1, 12, 0, 0))],
    "2013-01-02.json": [raw("sess-c", 4, ms(2013, 1, 2, 23, 59, 59, 999000)), raw("sess-d", 5, ms(2013, 1, 2, 6))],
    "2013-01-04.json": [raw("sess-a", 6, ms(2013, 1, 4, 18)), raw("sess-e", 7, ms(2013, 1, 4, 1))],
}
BAD_LINES = [  # (line, expected reason), appended to 2013-01-04.json after its good lines
    (b'{"DateCreated": "/Date(1357257600000)/", "SessionId": "x"', "invalid_json"),
    (raw("sess-f", 8, ms(2013, 1, 4, 2)).replace(b'"t"', b'"\xff\xfe"'), "not_utf8"),
    (orjson.dumps({"DateCreated": f"/Date({ms(2013, 1, 4, 2)})/", "DocumentId": 9}), "missing_field:SessionId"),
    (orjson.dumps({"DateCreated": f"/Date({ms(2013, 1, 4, 2)})/", "SessionId": "s"}), "missing_field:DocumentId"),
    (orjson.dumps({"SessionId": "s", "DocumentId": 9}), "missing_field:DateCreated"),
    (raw("sess-g", 9, 0, DateCreated="2013-01-04 02:00"), "bad_date:DateCreated"),
    (raw("sess-h", 10, ms(2013, 1, 4, 2), DocumentId="ten"), "wrong_type:DocumentId"),
    (raw("sess-i", 11, ms(2013, 1, 4, 2), Documents="none"), "wrong_type:Documents"),
    (raw("sess-j", 12, ms(2013, 1, 5, 2)), "out_of_span"),
    (b"", "empty_line"),
    (b"[1, 2]", "not_an_object"),
]


def write_raw(folder: Path) -> Path:
    folder.mkdir()
    for name, lines in GOOD.items():
        body = lines + [line for line, _ in BAD_LINES] if name == "2013-01-04.json" else lines
        (folder / name).write_bytes(b"\n".join(body) + b"\n")
    (folder / "README.txt").write_text("not a day file")
    return folder


def read_out(out: Path) -> dict[tuple[str, str], list[dict]]:
    return {(p.parent.parent.name, p.parent.name): [orjson.loads(line) for line in p.read_bytes().splitlines()]
            for p in sorted(out.glob("server*/date=*/events.json"))}


@pytest.fixture
def prepared(tmp_path):
    raw_dir = write_raw(tmp_path / "raw")
    out = tmp_path / "data"
    stats = prep.prepare(raw_dir, out, TIMELINE)
    return stats, out


def test_server_is_a_stable_hash_of_the_session():
    assert prep.server_for("k2fzq355xy0ab1cd2ef3gh45") == "server0"  # pinned: the split must never move
    assert prep.server_for("sess-a") == ("server0", "server1")[xxhash.xxh64_intdigest(b"sess-a") % 2]


def test_split_is_session_affine_and_complete(prepared):
    stats, out = prepared
    files = read_out(out)
    servers_of_session: dict[str, set[str]] = {}
    for (server, _), records in files.items():
        for record in records:
            servers_of_session.setdefault(record["SessionId"], set()).add(server)
            assert server == prep.server_for(record["SessionId"])
    assert all(len(servers) == 1 for servers in servers_of_session.values())
    assert sorted(r["DocumentId"] for records in files.values() for r in records) == [1, 2, 3, 4, 5, 6, 7]
    assert stats.read == 7 + len(BAD_LINES)
    assert sum(stats.written.values()) == 7
    # Every date that got events has a file for both servers (possibly empty), so producers always find one.
    assert {day for _, day in files} == {"date=2026-01-01", "date=2026-01-02"}
    assert len(files) == 4


def test_day_mapping_and_window_placement(prepared):
    _, out = prepared
    by_document = {r["DocumentId"]: r for records in read_out(out).values() for r in records}
    # 15:00 in Seoul is 06:00Z; 24 h of a source day become the hour 06:00-07:00Z.
    expected = {
        1: ("2026-01-01", "2026-01-01T06:00:00.000Z"),  # 2013-01-01 00:00:00
        2: ("2026-01-01", "2026-01-01T06:00:01.000Z"),  # 24 s later -> 1 s later
        3: ("2026-01-01", "2026-01-01T06:30:00.000Z"),  # noon -> half past
        4: ("2026-01-01", "2026-01-01T06:59:59.999Z"),  # 2013-01-02 23:59:59.999 -> last ms of the window
        5: ("2026-01-01", "2026-01-01T06:15:00.000Z"),
        6: ("2026-01-02", "2026-01-02T06:45:00.000Z"),  # 2013-01-04 -> second target day
        7: ("2026-01-02", "2026-01-02T06:02:30.000Z"),
    }
    for document, (event_date, event_ts) in expected.items():
        record = by_document[document]
        assert (record["event_date"], record["event_ts"]) == (event_date, event_ts), document
        assert record["DateCreated"] == orjson.loads(
            next(line for lines in GOOD.values() for line in lines if orjson.loads(line)["DocumentId"] == document)
        )["DateCreated"]  # the raw field is untouched


def test_every_file_is_sorted_by_event_ts(prepared):
    _, out = prepared
    for records in read_out(out).values():
        stamps = [r["event_ts"] for r in records]
        assert stamps == sorted(stamps)


def test_every_bad_line_is_rejected_with_its_line_number_and_reason(prepared):
    stats, out = prepared
    rejects = [orjson.loads(line) for line in (out / prep.REJECTS_FILE).read_bytes().splitlines()]
    first_bad_line = len(GOOD["2013-01-04.json"]) + 1
    assert [(r["source"], r["line"], r["reason"]) for r in rejects] == [
        ("2013-01-04.json", first_bad_line + i, reason) for i, (_, reason) in enumerate(BAD_LINES)]
    assert "\\xff\\xfe" in rejects[1]["raw"]  # undecodable bytes are kept visibly
    assert sum(stats.rejected.values()) == len(BAD_LINES)
    assert stats.skipped_files == ["README.txt"]


def test_external_sort_with_tiny_runs_gives_identical_files(tmp_path, prepared):
    _, in_memory_out = prepared
    spilled_out = tmp_path / "spilled"
    prep.prepare(write_raw(tmp_path / "raw2"), spilled_out, TIMELINE, run_lines=2)
    for path in in_memory_out.glob("server*/date=*/events.json"):
        assert (spilled_out / path.relative_to(in_memory_out)).read_bytes() == path.read_bytes()
    assert not list(spilled_out.glob(".prepare-*"))  # spill folder removed


def test_the_datasets_tar_gz_is_read_without_extracting_and_gives_the_same_files(tmp_path, prepared):
    import tarfile

    _, from_folder = prepared
    raw_dir = write_raw(tmp_path / "raw2")
    archive = tmp_path / "logs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(raw_dir.iterdir(), reverse=True):  # archive order must not matter
            tar.add(path, arcname=f"logs/{path.name}")
    stats = prep.prepare(archive, tmp_path / "from_archive", TIMELINE)
    for path in from_folder.glob("server*/date=*/events.json"):
        assert (tmp_path / "from_archive" / path.relative_to(from_folder)).read_bytes() == path.read_bytes()
    assert sum(stats.rejected.values()) == len(BAD_LINES) and stats.skipped_files == ["logs/README.txt"]


def test_windows_line_ends_and_a_byte_order_mark_are_accepted(tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    lines = GOOD["2013-01-01.json"]
    (raw_dir / "2013-01-01.json").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    stats = prep.prepare(raw_dir, tmp_path / "out", TIMELINE)
    assert (stats.read, sum(stats.written.values()), sum(stats.rejected.values())) == (len(lines), len(lines), 0)


def test_linear_day_mapping_of_the_default_spans():
    timeline = prep.Timeline(*prep.DEFAULT_SOURCE_SPAN, *prep.DEFAULT_TARGET_SPAN, SEOUL)
    assert timeline.target_day(date(2013, 1, 1)) == date(2026, 1, 1)
    assert timeline.target_day(date(2020, 10, 30)) == date(2026, 2, 1)
    assert timeline.target_day(date(2012, 12, 31)) is None
    days = [timeline.target_day(date.fromordinal(n)) for n in range(date(2013, 1, 1).toordinal(),
                                                                       date(2020, 10, 31).toordinal())]
    assert days == sorted(days) and len(set(days)) == 32


def test_cli_writes_the_layout_and_ends_with_a_json_summary(tmp_path, capsys):
    raw_dir = write_raw(tmp_path / "raw")
    code = prep.main(["--raw", str(raw_dir), "--out", str(tmp_path / "out"), "--source-start", "2013-01-01",
                      "--source-end", "2013-01-04", "--target-start", "2026-01-01", "--target-end", "2026-01-02"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = orjson.loads(last.removeprefix("prepare: "))
    assert summary["read"] == summary["written"] + summary["rejected"] == 7 + len(BAD_LINES)
    assert summary["rejected_by_reason"]["out_of_span"] == 1
    assert prep.main(["--raw", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
