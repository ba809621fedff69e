"""Fixtures of the processing tests: one local SparkSession per test session, event builders."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from messaging import contract


@pytest.fixture(scope="session")
def spark():
    from infrastructure.settings import load
    from processing.spark.session import build_session

    session = build_session(load({"SPARK_MASTER": "local[2]", "LAKE_ROOT": "/tmp/unused"}), "processing-unit-tests")
    yield session
    session.stop()


def make_event(session: str, document: int, ts: datetime, *, created_ms: int = 1420113600000,
               areas: str = ",Oncology,Surgery", keywords: str = "breast cancer", title: str = "T",
               event_date: str | None = None, server: str = "server0") -> dict:
    """A valid wire record built with the contract (dedup_key, event_ts spelling)."""
    event_ts = contract.format_event_ts(ts)
    return {
        "DateCreated": f"/Date({created_ms})/", "SessionId": session, "DocumentId": document,
        "Url": f"https://example.org/{document}", "Title": title, "DOI": "", "ClinicalAreas": areas,
        "Keywords": keywords, "Documents": [str(document)], "event_ts": event_ts,
        "event_date": event_date or ts.date().isoformat(),
        "dedup_key": contract.dedup_key(session, document, event_ts), "source_server": server,
    }


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def encode(record: dict) -> bytes:
    return orjson.dumps(record)
