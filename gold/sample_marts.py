"""Deterministic SAMPLE rows for the six Gold marts, for tests and demos before processing runs.

The rows are aggregated from synthetic click events (fixed seed per date) with the definitions of
gold/README.md, so the marts agree with each other exactly like real ones: a day's total_events equals
the sum of its sessions' click_count and of its areas' click_share, every clicked document is ranked,
and so on. A sample click has one time, used as its original click time (DateCreated); unlike real data
it lies on the pipeline date. Titles and queries carry a "[sample]" marker so nobody mistakes them for
TripClick data (the marker's word "sample" is therefore a term of every query in mart_search_terms).
Real marts are written by processing's load_to_postgres.

    .venv/bin/python -m gold.sample_marts --start 2025-01-06 --days 5
    .venv/bin/python -m gold.sample_marts --start 2025-01-06 --days 5 --delete
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg2
from psycopg2.extras import execute_values

from infrastructure.settings import Settings, load

# Mart name -> column list, in the fixed order of gold/postgres/init/10_marts.sql.
MART_COLUMNS = {
    "mart_daily_traffic": ("event_date", "total_events", "unique_sessions", "unique_documents", "peak_hour"),
    "mart_session_analysis": ("event_date", "session_id", "click_count", "unique_docs", "first_click_ts",
                              "last_click_ts", "session_duration_sec"),
    "mart_clinical_areas": ("event_date", "clinical_area", "click_count", "unique_sessions", "click_share"),
    "mart_popular_documents": ("event_date", "document_id", "title", "view_count", "unique_sessions", "rank"),
    "mart_search_keywords": ("event_date", "query", "sessions", "clicks", "unique_documents"),
    "mart_search_terms": ("event_date", "term", "sessions", "clicks", "queries", "unique_documents"),
}
NO_AREA = "(none)"

CLINICAL_AREAS = ("Cardiology", "Oncology", "Paediatrics", "Infectious Diseases", "Neurology",
                  "Endocrinology", "Respiratory", "Primary Care", "Psychiatry", "Surgery")
TOPICS = ("hypertension", "asthma", "type 2 diabetes", "sepsis", "migraine", "depression", "otitis media",
          "atrial fibrillation", "breast cancer", "copd", "stroke", "pneumonia", "obesity", "anaemia",
          "heart failure", "urinary tract infection")
DOCUMENT_COUNT = 80
DOCUMENT_ID_BASE = 900_000_000  # far from real TripClick ids


@dataclass(frozen=True)
class Click:
    session_id: str
    document_id: int
    ts: datetime


@dataclass(frozen=True)
class Document:
    document_id: int
    title: str
    areas: tuple[str, ...]


def catalogue() -> list[Document]:
    """The fixed sample documents: a title and none, one or two clinical areas each."""
    rng = random.Random("catalogue")
    docs = []
    for n in range(DOCUMENT_COUNT):
        topic = TOPICS[n % len(TOPICS)]
        kind = ("guideline", "systematic review", "RCT", "evidence summary")[n % 4]
        areas = tuple(sorted(set(rng.sample(CLINICAL_AREAS, rng.choice((0, 1, 1, 1, 2))))))
        docs.append(Document(DOCUMENT_ID_BASE + n, f"[sample] {topic.capitalize()} {kind} #{n}", areas))
    return docs


def day_clicks(day: date, tz: ZoneInfo, docs: list[Document], seed: int) -> tuple[list[Click], dict[str, str]]:
    """Synthetic clicks of one day and each session's search query; same inputs, same output."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    busiest = 9 + day.toordinal() % 8  # the peak hour moves from day to day
    hour_weights = [1 + 6 * max(0, 4 - abs(h - busiest)) for h in range(24)]
    doc_weights = [1 / (rank + 1) for rank in range(len(docs))]  # Zipf-like popularity
    midnight = datetime.combine(day, time(0), tzinfo=tz)
    clicks, keywords = [], {}
    for s in range(rng.randint(120, 220)):
        session_id = f"sample-{day.isoformat()}-{s:04d}"
        keywords[session_id] = f"[sample] {rng.choice(TOPICS)}"
        start = midnight + timedelta(hours=rng.choices(range(24), hour_weights)[0], seconds=rng.randrange(3000))
        end_of_day = midnight + timedelta(days=1) - timedelta(milliseconds=1)
        for c in range(min(1 + int(rng.expovariate(0.35)), 25)):
            ts = min(start + timedelta(seconds=c * rng.randint(5, 90)), end_of_day)
            doc = rng.choices(docs, doc_weights)[0]
            clicks.append(Click(session_id, doc.document_id, ts))
    clicks.sort(key=lambda click: click.ts)
    return clicks, keywords


def aggregate(day: date, clicks: list[Click], keywords: dict[str, str], docs: list[Document]) -> dict[str, list[tuple]]:
    """The six marts' rows of one day, computed from its clicks the way the marts are defined
    (peak_hour: UTC hour of the click; every click of a session carries the session's query)."""
    by_id = {d.document_id: d for d in docs}
    rows: dict[str, list[tuple]] = {name: [] for name in MART_COLUMNS}
    if not clicks:
        return rows
    hours = Counter(click.ts.astimezone(timezone.utc).hour for click in clicks)
    peak = max(sorted(hours), key=lambda h: hours[h])  # earliest hour wins a tie
    rows["mart_daily_traffic"].append((day, len(clicks), len({c.session_id for c in clicks}),
                                       len({c.document_id for c in clicks}), peak))

    per_session: dict[str, list[Click]] = defaultdict(list)
    for click in clicks:
        per_session[click.session_id].append(click)
    for session_id, own in sorted(per_session.items()):
        first, last = own[0].ts, own[-1].ts
        rows["mart_session_analysis"].append((day, session_id, len(own), len({c.document_id for c in own}),
                                              first, last, (last - first).total_seconds()))

    area_clicks, area_sessions, area_share = Counter(), defaultdict(set), defaultdict(float)
    doc_views, doc_sessions = Counter(), defaultdict(set)
    for click in clicks:
        doc_views[click.document_id] += 1
        doc_sessions[click.document_id].add(click.session_id)
        areas = by_id[click.document_id].areas or (NO_AREA,)
        for area in areas:
            area_clicks[area] += 1
            area_sessions[area].add(click.session_id)
            area_share[area] += 1 / len(areas)
    rows["mart_clinical_areas"] = [(day, area, area_clicks[area], len(area_sessions[area]), area_share[area])
                                   for area in sorted(area_clicks)]
    ranked = sorted(doc_views, key=lambda d: (-doc_views[d], d))
    rows["mart_popular_documents"] = [(day, d, by_id[d].title, doc_views[d], len(doc_sessions[d]), rank)
                                      for rank, d in enumerate(ranked, start=1)]

    query_sessions: dict[str, set] = defaultdict(set)
    for session_id in per_session:
        query_sessions[keywords[session_id]].add(session_id)
    term_queries: dict[str, set] = defaultdict(set)
    for query, sessions in sorted(query_sessions.items()):
        own = [c for s in sessions for c in per_session[s]]
        rows["mart_search_keywords"].append((day, query, len(sessions), len(own),
                                             len({c.document_id for c in own})))
        for term in set(query.replace("[", " ").replace("]", " ").split()):  # sample queries: letters, digits, []
            term_queries[term].add(query)
    for term, queries in sorted(term_queries.items()):
        sessions = set().union(*(query_sessions[q] for q in queries))
        own = [c for s in sessions for c in per_session[s]]
        rows["mart_search_terms"].append((day, term, len(sessions), len(own), len(queries),
                                          len({c.document_id for c in own})))
    return rows


def build(days: list[date], tz: ZoneInfo, seed: int) -> dict[str, list[tuple]]:
    """All marts' rows for the given days."""
    docs = catalogue()
    rows: dict[str, list[tuple]] = {name: [] for name in MART_COLUMNS}
    for day in days:
        clicks, keywords = day_clicks(day, tz, docs, seed)
        for name, day_rows in aggregate(day, clicks, keywords, docs).items():
            rows[name].extend(day_rows)
    return rows


def connect(settings: Settings):
    """A connection as the loader role, the owner of the marts."""
    return psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
                            user=settings.postgres_user, password=settings.postgres_password,
                            connect_timeout=10, application_name="gold.sample_marts")


def replace_days(settings: Settings, days: list[date], rows: dict[str, list[tuple]]) -> dict[str, tuple[int, int]]:
    """In one transaction: delete every mart row of `days`, then insert `rows`.

    Returns mart -> (rows deleted, rows inserted).
    """
    counts = {}
    with connect(settings) as conn, conn.cursor() as cur:
        for name, columns in MART_COLUMNS.items():
            cur.execute(f"DELETE FROM gold.{name} WHERE event_date = ANY(%s)", (days,))
            deleted = cur.rowcount
            if rows.get(name):
                execute_values(cur, f"INSERT INTO gold.{name} ({', '.join(columns)}) VALUES %s",
                               rows[name], page_size=1000)
            counts[name] = (deleted, len(rows.get(name, [])))
    conn.close()
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gold.sample_marts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 6),
                        help="first sample date, YYYY-MM-DD (default 2025-01-06)")
    parser.add_argument("--days", type=int, default=5, help="number of consecutive dates (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--delete", action="store_true", help="remove the rows of these dates instead")
    args = parser.parse_args(argv)
    if not 1 <= args.days <= 366:
        parser.error(f"--days must be between 1 and 366, got {args.days}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load()
    days = [args.start + timedelta(days=n) for n in range(args.days)]
    rows = {} if args.delete else build(days, ZoneInfo(settings.pipeline_tz), args.seed)
    try:
        counts = replace_days(settings, days, rows)
    except psycopg2.Error as exc:
        print(f"sample-marts: ERROR writing to {settings.postgres_host}:{settings.postgres_port}/"
              f"{settings.postgres_db}: {str(exc).strip()}", file=sys.stderr)
        return 1
    summary = " ".join(f"{name.removeprefix('mart_')}=-{deleted}+{inserted}"
                       for name, (deleted, inserted) in counts.items())
    action = "deleted" if args.delete else "loaded"
    print(f"sample-marts: {action} {days[0]}..{days[-1]} ({len(days)} days) rows deleted/inserted: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
