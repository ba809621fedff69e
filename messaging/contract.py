"""The event contract: the one definition of a TripClick click event on the wire.

A message on KAFKA_TOPIC is one UTF-8 JSON object holding the raw TripClick fields (as in the
dataset's YYYY-MM-DD.json files) plus the fields the pipeline adds. The producer validates against
`FIELDS`; Spark derives its read schema from `spark_schema()`; tests check both agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

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
# What a prepared day file holds: raw fields plus the timeline fields; the producer adds the rest.
PRODUCER_ADDED_FIELD_NAMES = ("dedup_key", "source_server")
PREPARED_FIELDS = tuple(f for f in FIELDS if f.name not in PRODUCER_ADDED_FIELD_NAMES)
SOURCE_SERVERS = ("server0", "server1")

_DOTNET_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


# Milliseconds of 0001-01-01 and 9999-12-31T23:59:59.999, the range a datetime can hold.
_DOTNET_MS_RANGE = (-62_135_596_800_000, 253_402_300_799_999)


def dotnet_date_ms(value: object) -> int:
    """'/Date(1420113600000)/' -> 1420113600000; ValueError when malformed or out of range."""
    match = _DOTNET_DATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a .NET JSON date: {value!r}")
    ms = int(match.group(1))
    if not _DOTNET_MS_RANGE[0] <= ms <= _DOTNET_MS_RANGE[1]:
        raise ValueError(f".NET JSON date out of range: {value!r}")
    return ms


def parse_dotnet_date(value: object) -> datetime:
    """'/Date(1420113600000)/' -> aware UTC datetime; ValueError when malformed or out of range."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=dotnet_date_ms(value))


def format_event_ts(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z suffix, the only event_ts spelling on the wire."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# Zero-padded fields with their ranges in the pattern (what Spark's fixed patterns accept), 1-6 fraction
# digits; only a day 29-31 then needs a calendar check.
_DATE_PATTERN = r"(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_EVENT_TS = re.compile(_DATE_PATTERN + r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{1,6}Z")
_ISO_DATE = re.compile(_DATE_PATTERN)


def _is_calendar_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_event_ts(value: str) -> datetime:
    """'2026-01-01T06:00:00.177Z' -> aware UTC datetime; ValueError when malformed."""
    if not isinstance(value, str) or not _EVENT_TS.fullmatch(value):
        raise ValueError(f"not an ISO-8601 UTC timestamp: {value!r}")
    return datetime.fromisoformat(value)


def dedup_key(session_id: str, document_id: int, event_ts: str) -> str:
    """The seed's recipe: xxhash64 (seed 0) of 'SessionId|DocumentId|event_ts', 16 hex digits."""
    return xxhash.xxh64_hexdigest(f"{session_id}|{document_id}|{event_ts}".encode("utf-8"))


# Python expressions over `value` per kind; validate() compiles them into one function per field set.
_KIND_CHECKS = {
    "string": "isinstance(value, str)",
    "long": "isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63",
    "string_list": "isinstance(value, list)",
    "iso_timestamp": "isinstance(value, str) and _EVENT_TS_MATCH(value) is not None"
                     " and (value[8:10] <= '28' or _is_calendar_day(value[:10]))",
    "iso_date": "isinstance(value, str) and _ISO_DATE_MATCH(value) is not None"
                " and (value[8:10] <= '28' or _is_calendar_day(value))",
}
assert set(_KIND_CHECKS) == set(KINDS)
_VALIDATORS: dict[int, tuple[tuple[Field, ...], Callable[[object], str | None]]] = {}


def _compile_validator(fields: tuple[Field, ...]) -> Callable[[object], str | None]:
    """Straight-line code for one field set. The producer validates every record, and a generic loop
    over Field objects cost ~4x more per record than this generated function (see ingestion.md)."""
    body = ["def check(record):", "    if not isinstance(record, dict):", "        return 'not_an_object'"]
    for f in fields:
        missing = "value is None or value == ''" if f.required and f.kind == "string" else "value is None"
        body += [f"    value = record.get({f.name!r})",
                 f"    if {missing}:",
                 f"        {'return ' + repr('missing_field:' + f.name) if f.required else 'pass'}",
                 f"    elif not ({_KIND_CHECKS[f.kind]}):",
                 f"        return {'wrong_type:' + f.name!r}"]
    if any(f.name == "DateCreated" for f in fields):
        body += ["    if 'DateCreated' in record:",
                 "        match = _DOTNET_DATE_MATCH(record['DateCreated'])",
                 "        if match is None or not _MS_LOW <= int(match.group(1)) <= _MS_HIGH:",
                 "            return 'bad_date:DateCreated'"]
    body += ["    if 'source_server' in record and record['source_server'] not in SOURCE_SERVERS:",
             "        return 'bad_value:source_server'", "    return None"]
    namespace = {"_EVENT_TS_MATCH": _EVENT_TS.fullmatch, "_ISO_DATE_MATCH": _ISO_DATE.fullmatch,
                 "_is_calendar_day": _is_calendar_day, "_DOTNET_DATE_MATCH": _DOTNET_DATE.match,
                 "_MS_LOW": _DOTNET_MS_RANGE[0], "_MS_HIGH": _DOTNET_MS_RANGE[1], "SOURCE_SERVERS": SOURCE_SERVERS}
    exec(compile("\n".join(body), f"<contract validator of {len(fields)} fields>", "exec"), namespace)
    return namespace["check"]


def validate(record: object, fields: tuple[Field, ...] = FIELDS) -> str | None:
    """Return None for a valid record, else a short reason such as 'missing_field:SessionId'.

    Reasons are stable tokens '<problem>:<field>' so rejects can be counted by reason.
    Optional fields may be absent or null. The first problem in field order is reported.
    """
    cached = _VALIDATORS.get(id(fields))
    if cached is None or cached[0] is not fields:  # keyed by identity: hashing Field tuples is slow
        cached = (fields, _compile_validator(fields))
        _VALIDATORS[id(fields)] = cached
    return cached[1](record)


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
