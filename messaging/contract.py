"""The event contract: the one definition of a TripClick click event on the wire.

A message on KAFKA_TOPIC is one UTF-8 JSON object holding the raw TripClick fields (as in the
dataset's YYYY-MM-DD.json files) plus the fields the pipeline adds. The producer validates against
`FIELDS`; Spark derives its read schema from `spark_schema()`; tests check both agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from collections.abc import Callable
from zoneinfo import ZoneInfo

import xxhash

from infrastructure.dates import ISO_DATE


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

# Default of MAX_EVENT_BYTES: the largest wire value (bytes) the contract accepts. Far below the broker's
# message.max.bytes (1 MB by default), so a valid record can always be produced, and so can a dead-letter
# copy of a rejected one truncated to this size. A typical event is about 420 bytes.
DEFAULT_MAX_EVENT_BYTES = 65_536

# Reason tokens of the rules beyond field presence and type (see messaging/README.md).
TOO_LARGE = "too_large:record"
CONTROL_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f"  # C0 controls except \t, \n, \r; DEL and C1 are allowed
_CONTROL_CHAR = re.compile(f"[{CONTROL_CHARS}]").search

# DateCreated's spelling, group 1 = the milliseconds; a regex Python and Spark (Java) read alike.
DOTNET_DATE = r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$"
_DOTNET_DATE = re.compile(DOTNET_DATE)


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


# The date's fields as infrastructure.dates.ISO_DATE has them, 1-6 fraction digits.
_EVENT_TS = re.compile(ISO_DATE + r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{1,6}Z")
_ISO_DATE = re.compile(ISO_DATE)


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
    return xxhash.xxh64_hexdigest(f"{session_id}|{document_id}|{event_ts}".encode())


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
# Extra rules of single fields, checked right after the field's type: (condition on `value`, token).
_FIELD_RULES = {
    "SessionId": ("value.isspace()", "blank:SessionId"),
    "DocumentId": ("value <= 0", "not_positive:DocumentId"),
}
_VALIDATORS: dict[tuple[int, str], tuple[tuple[Field, ...], Callable[..., str | None]]] = {}
_CROSS_CHECKED = {"event_ts": "ts", "event_date": "day"}  # field -> local of the generated check
_PATTERN_CHECKED = ("DateCreated", "source_server")  # no control character can pass their checks
_DAY_BOUNDS_MAX = 4096  # cached event_date -> UTC bounds per validator; cleared when it grows past this


@cache
def configured(name: str) -> str:
    """A setting's effective value (defaults, .env, environment), read once per process. Only for
    callers that pass no explicit value: the producer and Spark pass theirs explicitly."""
    from infrastructure.settings import resolve  # late: the contract stays importable on its own

    return resolve()[name]


def day_bounds(event_date: str, pipeline_tz: str) -> tuple[str, str]:
    """UTC 'YYYY-MM-DDTHH:MM:SS' of local midnight at the start and end of `event_date` in `pipeline_tz`.

    event_date is consistent with event_ts exactly when lower <= event_ts < upper as strings: both bounds
    are whole seconds and every event_ts is spelled with 19 fixed-width characters before its fraction.
    """
    day, zone = date.fromisoformat(event_date), ZoneInfo(pipeline_tz)
    bounds = []
    for moment, beyond in ((day, ""), (day + timedelta(days=1) if day < date.max else None, "~")):
        try:
            utc = datetime.combine(moment, time(0), tzinfo=zone).astimezone(timezone.utc)
            bounds.append(utc.replace(tzinfo=None).isoformat(timespec="seconds"))
        except (OverflowError, TypeError):  # beyond year 1 or 9999: nothing can lie outside that side
            bounds.append(beyond)
    return bounds[0], bounds[1]


def _compile_validator(fields: tuple[Field, ...], pipeline_tz: str) -> Callable[..., str | None]:
    """Straight-line code for one field set. The producer validates every record, and a generic loop
    over Field objects cost ~4x more per record than this generated function (see ingestion/README.md).
    Rules that need more than a type check stay cheap on the common record: the control-character scan
    runs only when the raw bytes hold a backslash (a raw control character inside a JSON string is
    invalid JSON, so only an escape can put one into a parsed string) or when no raw bytes are given;
    and the event_date/event_ts check is two string comparisons against cached per-date bounds."""
    names = {f.name for f in fields}
    body = ["def check(record, raw=None):", "    if not isinstance(record, dict):", "        return 'not_an_object'"]
    for f in fields:
        missing = "value is None or value == ''" if f.required and f.kind == "string" else "value is None"
        body += [f"    value = record.get({f.name!r})",
                 f"    if {missing}:",
                 f"        {'return ' + repr('missing_field:' + f.name) if f.required else 'pass'}",
                 f"    elif not ({_KIND_CHECKS[f.kind]}):",
                 f"        return {'wrong_type:' + f.name!r}"]
        if f.name in _FIELD_RULES:
            condition, token = _FIELD_RULES[f.name]
            body += [f"    elif {condition}:", f"        return {token!r}"]
        if f.name in _CROSS_CHECKED:  # kept for the event_date/event_ts rule below (required, valid here)
            body += [f"    {_CROSS_CHECKED[f.name]} = value"]
        if f.kind == "string_list":  # Spark reads array<string>: a nested object or list has no place
            body += ["    elif value:",
                     "        for item in value:",
                     "            if item.__class__ is dict or item.__class__ is list:",
                     f"                return {'non_scalar:' + f.name!r}"]
    if "DateCreated" in names:
        body += ["    if 'DateCreated' in record:",
                 "        match = _DOTNET_DATE_MATCH(record['DateCreated'])",
                 "        if match is None or not _MS_LOW <= int(match.group(1)) <= _MS_HIGH:",
                 "            return 'bad_date:DateCreated'"]
    body += ["    if 'source_server' in record and record['source_server'] not in SOURCE_SERVERS:",
             "        return 'bad_value:source_server'"]
    if {f.name for f in fields if f.required} >= _CROSS_CHECKED.keys():
        body += ["    bounds = _BOUNDS_GET(day)",
                 "    if bounds is None:",
                 "        if len(_BOUNDS) > _DAY_BOUNDS_MAX:",
                 "            _BOUNDS.clear()",
                 "        bounds = _BOUNDS[day] = _day_bounds(day, _TZ)",
                 "    if not bounds[0] <= ts < bounds[1]:",
                 "        return 'inconsistent:event_date'"]
    text = [f for f in fields if f.kind in ("string", "string_list") and f.name not in _PATTERN_CHECKED]
    if text:
        body += ["    if raw is None or _BACKSLASH in raw:"]
        for f in text:
            body += [f"        value = record.get({f.name!r})"]
            if f.kind == "string":
                body += ["        if value and _CONTROL_CHAR(value):"]
            else:
                body += ["        if value and any(isinstance(i, str) and _CONTROL_CHAR(i) for i in value):"]
            body += [f"            return {'control_char:' + f.name!r}"]
    body += ["    return None"]
    bounds: dict[str, tuple[str, str]] = {}
    namespace = {"_EVENT_TS_MATCH": _EVENT_TS.fullmatch, "_ISO_DATE_MATCH": _ISO_DATE.fullmatch,
                 "_is_calendar_day": _is_calendar_day, "_DOTNET_DATE_MATCH": _DOTNET_DATE.match,
                 "_MS_LOW": _DOTNET_MS_RANGE[0], "_MS_HIGH": _DOTNET_MS_RANGE[1], "SOURCE_SERVERS": SOURCE_SERVERS,
                 "_BOUNDS": bounds, "_BOUNDS_GET": bounds.get, "_DAY_BOUNDS_MAX": _DAY_BOUNDS_MAX,
                 "_day_bounds": day_bounds, "_TZ": pipeline_tz, "_CONTROL_CHAR": _CONTROL_CHAR,
                 "_BACKSLASH": b"\\"}
    exec(compile("\n".join(body), f"<contract validator of {len(fields)} fields>", "exec"), namespace)
    return namespace["check"]


def validator(fields: tuple[Field, ...] = FIELDS, pipeline_tz: str | None = None) -> Callable[..., str | None]:
    """The compiled `check(record, raw=None) -> reason | None` of one field set and PIPELINE_TZ (default:
    the configured one). `raw`, the bytes the record was parsed from, only lets the check skip the
    control-character scan when they hold no escape at all; it does not check the size."""
    pipeline_tz = pipeline_tz or configured("PIPELINE_TZ")
    ZoneInfo(pipeline_tz)  # an unknown zone fails here, not at the first record
    cached = _VALIDATORS.get((id(fields), pipeline_tz))
    if cached is None or cached[0] is not fields:  # keyed by identity: hashing Field tuples is slow
        cached = (fields, _compile_validator(fields, pipeline_tz))
        _VALIDATORS[(id(fields), pipeline_tz)] = cached
    return cached[1]


def max_event_bytes(value: int | str | None = None) -> int:
    """MAX_EVENT_BYTES as a positive int (default: the configured one)."""
    number = int(value if value is not None else configured("MAX_EVENT_BYTES"))
    if number <= 0:
        raise ValueError(f"MAX_EVENT_BYTES must be > 0, got {number}")
    return number


def validate(record: object, fields: tuple[Field, ...] = FIELDS, *, raw: bytes | None = None,
             pipeline_tz: str | None = None, max_bytes: int | None = None) -> str | None:
    """Return None for a valid record, else a short reason such as 'missing_field:SessionId'.

    Reasons are stable tokens '<problem>:<field>' so rejects can be counted by reason.
    Optional fields may be absent or null. The first problem in field order is reported; then the
    cross-field rules (DateCreated, source_server, event_date vs event_ts), then control characters.
    With `raw` (the wire bytes of the record) the size rule applies first: more than `max_bytes`
    (default MAX_EVENT_BYTES) is 'too_large:record'.
    """
    if raw is not None and len(raw) > max_event_bytes(max_bytes):
        return TOO_LARGE
    return validator(fields, pipeline_tz)(record, raw)


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
