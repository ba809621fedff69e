"""The event contract: the one definition of a TripClick click event on the wire.

A message on KAFKA_TOPIC is one UTF-8 JSON object holding the raw TripClick fields (as in the
dataset's YYYY-MM-DD.json files) plus the fields the pipeline adds. The producer validates against
`FIELDS`; Spark derives its read schema from `spark_schema()`; tests check both agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

import xxhash


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # one of KINDS
    required: bool
    added_by_pipeline: bool
    description: str


KINDS = ("string", "long", "string_list", "iso_timestamp", "iso_date")

FIELDS: tuple[Field, ...] = (
    Field("DateCreated", "string", True, False, '.NET JSON date "/Date(<ms since epoch, UTC>)/"'),
    Field("SessionId", "string", True, False, "Search session id (non-empty)"),
    Field("DocumentId", "long", True, False, "Clicked document id"),
    Field("Url", "string", False, False, "Document URL"),
    Field("Title", "string", False, False, "Document title"),
    Field("DOI", "string", False, False, "Document DOI, often empty"),
    Field("ClinicalAreas", "string", False, False, 'Comma list with a leading comma, e.g. ",Oncology,Surgery"'),
    Field("Keywords", "string", False, False, "Query keywords of the session, often empty"),
    Field("Documents", "string_list", False, False, "Documents list of the record (kept as given)"),
    Field("event_ts", "iso_timestamp", True, True, "Replay-timeline event time, ISO-8601 UTC"),
    Field("event_date", "iso_date", True, True, "Pipeline date of the event (YYYY-MM-DD in PIPELINE_TZ)"),
    Field("dedup_key", "string", True, True, "xxhash64 hex of SessionId|DocumentId|event_ts"),
    Field("source_server", "string", True, True, "Web server that logged the click: server0 or server1"),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
RAW_FIELDS = tuple(f for f in FIELDS if not f.added_by_pipeline)
RAW_FIELD_NAMES = tuple(f.name for f in RAW_FIELDS)
SOURCE_SERVERS = ("server0", "server1")

_DOTNET_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def parse_dotnet_date(value: object) -> datetime:
    """'/Date(1420113600000)/' -> aware UTC datetime; ValueError when malformed."""
    match = _DOTNET_DATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a .NET JSON date: {value!r}")
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)


def format_event_ts(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z suffix, the only event_ts spelling on the wire."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_event_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def dedup_key(session_id: str, document_id: int, event_ts: str) -> str:
    """The seed's recipe: xxhash64 (seed 0) of 'SessionId|DocumentId|event_ts', 16 hex digits."""
    return xxhash.xxh64_hexdigest(f"{session_id}|{document_id}|{event_ts}".encode("utf-8"))


def _kind_error(kind: str, value: object) -> str | None:
    if kind == "string":
        return None if isinstance(value, str) else "not a string"
    if kind == "long":
        ok = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
        return None if ok else "not an integer"
    if kind == "string_list":
        return None if isinstance(value, list) else "not a list"
    if kind == "iso_timestamp":
        try:
            parse_event_ts(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "not an ISO-8601 UTC timestamp"
        return None
    if kind == "iso_date":
        try:
            date.fromisoformat(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "not a YYYY-MM-DD date"
        return None
    raise AssertionError(f"unknown kind {kind}")


def validate(record: object, fields: tuple[Field, ...] = FIELDS) -> str | None:
    """Return None for a valid record, else a short reason such as 'missing_field:SessionId'.

    Reasons are stable tokens '<problem>:<field>' so rejects can be counted by reason.
    Optional fields may be absent or null.
    """
    if not isinstance(record, dict):
        return "not_an_object"
    for f in fields:
        value = record.get(f.name)
        if value is None or (f.required and f.kind == "string" and value == ""):
            if f.required:
                return f"missing_field:{f.name}"
            continue
        if _kind_error(f.kind, value):
            return f"wrong_type:{f.name}"
    if "DateCreated" in {f.name for f in fields}:
        try:
            parse_dotnet_date(record["DateCreated"])
        except ValueError:
            return "bad_date:DateCreated"
    if "source_server" in record and record["source_server"] not in SOURCE_SERVERS:
        return "bad_value:source_server"
    return None


def spark_schema():
    """The Spark StructType for a wire message, derived from FIELDS (pyspark imported lazily)."""
    from pyspark.sql import types as T

    spark_type = {
        "string": T.StringType(),
        "long": T.LongType(),
        "string_list": T.ArrayType(T.StringType()),
        # Parsed as text and converted explicitly by the jobs so malformed values can be quarantined.
        "iso_timestamp": T.StringType(),
        "iso_date": T.StringType(),
    }
    return T.StructType([T.StructField(f.name, spark_type[f.kind], nullable=True) for f in FIELDS])
