"""A generated pipeline day with injected faults, and an independent plain-Python computation of the marts
(with the one comparison of PostgreSQL's mart rows against it)."""
from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import pytest

from tests.processing.helpers import encode, make_event

AREAS = [",Oncology", ",Oncology,Surgery", ", Cardiology ,Oncology,", "", ",Primary care", None]
KEYWORDS = ["breast cancer", "  Breast   Cancer ", "asthma", "ASTHMA in children", "", None]
MALFORMED = {  # mutation of a valid record -> contract reason
    "missing_field:SessionId": {"SessionId": ""},
    "wrong_type:DocumentId": {"DocumentId": "12"},
    "bad_date:DateCreated": {"DateCreated": "/Date(abc)/"},
    "wrong_type:event_ts": {"event_ts": "2031-03-01 06:00"},
    "bad_value:source_server": {"source_server": "server9"},
    "missing_field:dedup_key": {"dedup_key": None},
}
GARBAGE = {b"{not json": "malformed_json", b"[1, 2]": "not_an_object", b"": "empty_value"}


def generate_events(day: date, count: int, seed: int, prefix: str = "s", start_utc: time = time(6, 0)) -> list[dict]:
    rng = random.Random(seed)
    start = datetime.combine(day, start_utc, tzinfo=timezone.utc)  # 06:00 UTC = 15:00 in Asia/Seoul
    sessions = [f"{prefix}{day:%m%d}-{i}" for i in range(max(3, count // 6))]
    events = []
    for i in range(count):
        ts = start + timedelta(milliseconds=i * 1500 + rng.randint(0, 999))
        created = 1420070400000 + rng.randint(0, 23) * 3600_000 + rng.randint(0, 3599_999)
        document = rng.randint(1, max(5, count // 8))
        events.append(make_event(rng.choice(sessions), document, ts, created_ms=created,
                                 areas=rng.choice(AREAS), keywords=rng.choice(KEYWORDS),
                                 title=rng.choice([f"Doc {document}", ""]), event_date=day.isoformat(),
                                 server=rng.choice(["server0", "server1"])))
    return events


@dataclass
class Day:
    """What was produced for one date and what must come out."""
    day: date
    phases: list[list[bytes]] = field(default_factory=list)
    late: list[bytes] = field(default_factory=list)  # sent last, once the stream's watermark is past them
    valid: dict[str, dict] = field(default_factory=dict)  # dedup_key -> record, every distinct valid event
    late_keys: set[str] = field(default_factory=set)
    messages_of_day: int = 0
    quarantine_reasons: Counter = field(default_factory=Counter)  # reasons of the day's malformed records
    garbage_reasons: Counter = field(default_factory=Counter)  # undated garbage (dated by Kafka timestamp)


def build_day(day: date, count: int, seed: int) -> Day:
    """Phase A (before streaming starts), phase B (during/after the crash): duplicates, malformed
    records, a whole-file replay of server1 and the next day's events. `late` holds events of the day an
    hour older than all others (05:00 UTC = 14:00 Seoul, still the day): sent after the stream has seen
    the rest, they are behind its watermark, so only Bronze can bring them into Silver."""
    rng = random.Random(seed + 1)
    events = generate_events(day, count, seed)
    late = generate_events(day, 6, seed + 7, prefix="late", start_utc=time(5, 0))
    next_day = generate_events(day + timedelta(days=1), 5, seed + 9)
    half = len(events) // 2
    a = [encode(e) for e in events[:half]]
    a += [encode(e) for e in rng.sample(events[:half], len(events) // 20)]  # injected duplicates
    b = [encode(e) for e in events[half:]]
    malformed = []
    for change in MALFORMED.values():
        malformed.append(encode({**rng.choice(events), **change}))
    b[len(b) // 2:len(b) // 2] = malformed + list(GARBAGE)
    replay = [encode(e) for e in events if e["source_server"] == "server1"]
    b += replay + [encode(e) for e in next_day]
    scenario = Day(day, [a, b], [encode(e) for e in late])
    scenario.valid = {e["dedup_key"]: e for e in events + late}
    scenario.late_keys = {e["dedup_key"] for e in late}
    scenario.messages_of_day = len(a) + len(b) + len(late) - len(next_day) - len(GARBAGE)
    scenario.quarantine_reasons = Counter(MALFORMED.keys())
    scenario.garbage_reasons = Counter(GARBAGE.values())
    return scenario


def manifests(scenario: Day, **changes) -> list[tuple[str, bytes]]:
    """One complete, balanced producer manifest per server whose `acknowledged` is the number of distinct
    valid events of the day it logged (Bronze holds at least that many: it also keeps duplicates)."""
    import orjson

    # The manifest stands for the producer run that has just sent the scenario, so its times are now: the
    # quality gate checks every row's Kafka timestamp against them (load_time_within_window).
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = []
    for server in ("server0", "server1"):
        acknowledged = sum(1 for e in scenario.valid.values() if e["source_server"] == server)
        m = {"event_date": scenario.day.isoformat(), "server": server, "file": f"/data/{server}/events.json",
             "mode": "realtime", "run_id": "test", "started_at": now,
             "finished_at": now, "lines_read": acknowledged, "blank_lines": 0,
             "sent": acknowledged, "acknowledged": acknowledged, "dead_lettered": 0, "delivery_failed": 0,
             "rejected_by_reason": {}, "complete": True, "exit_code": 0, **changes.get(server, {})}
        items.append((f"{scenario.day.isoformat()}|{server}", orjson.dumps(m)))
    return items


# ---- independent computation of the marts (plain Python over the distinct valid events)

def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _created_hour(record: dict) -> int:
    millis = int(re.match(r"/Date\((-?\d+)", record["DateCreated"]).group(1))
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).hour


def _created(record: dict) -> datetime:
    millis = int(re.match(r"/Date\((-?\d+)", record["DateCreated"]).group(1))
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc)


_JAVA_SPACE = re.compile(r"[ \t\n\x0b\f\r]+")  # Java regex \s (ASCII whitespace only)


def _normalised(text: str | None) -> str:
    return _JAVA_SPACE.sub(" ", text or "").strip(" ").lower()


def _area_display(key: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"(?<=[ /-])", key))


def _terms(query: str) -> set[str]:
    def letter_or_digit(c: str) -> bool:
        return unicodedata.category(c)[0] in "LN"

    terms = set()
    for piece in query.split(" "):
        start, end = 0, len(piece)
        while start < end and not letter_or_digit(piece[start]):
            start += 1
        while end > start and not letter_or_digit(piece[end - 1]):
            end -= 1
        if start < end:
            terms.add(piece[start:end])
    return terms


def expected_marts(day: date, records: list[dict]) -> dict[str, list[tuple]]:
    hours = Counter(_created_hour(r) for r in records)
    peak = min(hours, key=lambda h: (-hours[h], h))
    traffic = [(day, len(records), len({r["SessionId"] for r in records}), len({r["DocumentId"] for r in records}),
                peak)]
    by_session = defaultdict(list)
    for r in records:
        by_session[r["SessionId"]].append(r)
    sessions = []
    for sid, rows in by_session.items():  # original click time (DateCreated), real seconds
        times = sorted(_created(r) for r in rows)
        sessions.append((day, sid, len(rows), len({r["DocumentId"] for r in rows}), times[0], times[-1],
                         (times[-1] - times[0]).total_seconds()))
    areas = defaultdict(lambda: [0, set(), 0.0])
    for r in records:
        keys = {_normalised(a) for a in (r["ClinicalAreas"] or "").split(",")} - {""}
        for key in keys or {"(none)"}:
            areas[key][0] += 1
            areas[key][1].add(r["SessionId"])
            areas[key][2] += 1 / max(len(keys), 1)
    clinical = [(day, a if a == "(none)" else _area_display(a), n, len(s), share) for a, (n, s, share) in areas.items()]
    docs = defaultdict(list)
    for r in records:
        docs[r["DocumentId"]].append(r)
    ordered = sorted(docs, key=lambda d: (-len(docs[d]), d))
    popular = [(day, d, max((r["Title"] for r in docs[d] if r["Title"]), default=None), len(docs[d]),
                len({r["SessionId"] for r in docs[d]}), ordered.index(d) + 1) for d in docs]
    queries = defaultdict(list)
    terms = defaultdict(list)
    for r in records:
        query = _normalised(r["Keywords"])
        if query:
            queries[query].append(r)
            for term in _terms(query):
                terms[term].append((query, r))
    search = [(day, q, len({r["SessionId"] for r in rows}), len(rows), len({r["DocumentId"] for r in rows}))
              for q, rows in queries.items()]
    term_rows = [(day, t, len({r["SessionId"] for _, r in rows}), len(rows), len({q for q, _ in rows}),
                  len({r["DocumentId"] for _, r in rows})) for t, rows in terms.items()]
    return {"mart_daily_traffic": traffic, "mart_session_analysis": sessions, "mart_clinical_areas": clinical,
            "mart_popular_documents": popular, "mart_search_keywords": search, "mart_search_terms": term_rows}


def assert_marts_match(got: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> None:
    """Every mart row for row (PostgreSQL's typed rows against expected_marts); session durations are doubles
    computed two ways, so they agree to 1e-6."""
    assert got.keys() == expected.keys()
    for mart, want in expected.items():
        have, want = sorted(got[mart]), sorted(want)
        assert len(have) == len(want), (mart, len(have), len(want))
        for g, w in zip(have, want):
            if mart == "mart_session_analysis":
                assert g[:-1] == w[:-1] and g[-1] == pytest.approx(w[-1], abs=1e-6), (mart, g, w)
            else:
                assert g == w, (mart, g, w)
