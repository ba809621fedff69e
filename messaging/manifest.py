"""Producer completeness manifest: the wire contract between the producers and the reconcile.

Each producer run sends ONE message to KAFKA_MANIFEST_TOPIC (compacted, so the latest run of a
(date, server) is kept):

    key   = "<event_date>|<server>"  (UTF-8)
    value = UTF-8 JSON object with exactly the keys of FIELDS

The counts of one run balance: every line read is acknowledged, dead-lettered, blank, failed in
delivery or not sent; `not_sent` is what remains and is 0 for a complete run:

    lines_read == acknowledged + dead_lettered + blank_lines + delivery_failed + not_sent

`manifest_balanced()` checks that (and the counts' internal agreement); `parse_manifest()` checks the
shape of a message value. Both sides import this module, so the schema lives in one place.
"""
from __future__ import annotations

import re
from datetime import date

import orjson

FIELDS: tuple[str, ...] = (
    "event_date",      # YYYY-MM-DD from the file's date= folder, else the first valid record's; null if neither
    "server",          # server0 / server1
    "file",            # input path as given to the producer
    "mode",            # realtime / batch
    "run_id",          # uuid4 hex of this producer run
    "started_at",      # ISO-8601 UTC, e.g. 2026-01-01T06:00:00.123Z
    "finished_at",
    "lines_read",      # every line read, blank ones included
    "blank_lines",     # whitespace-only lines (skipped, not dead-lettered)
    "sent",            # accepted by the Kafka client for the event topic
    "acknowledged",    # sent and acknowledged by the brokers (acks=all)
    "dead_lettered",   # lines written to the dead-letter file, whatever the reason
    "delivery_failed",  # sent but not acknowledged (delivery error, or still queued at the final flush)
    "rejected_by_reason",  # reason token -> dead-lettered lines
    "complete",        # the whole file was read and every sent message was acknowledged
    "exit_code",       # the producer's exit code (see ingestion/README.md)
)
COUNT_FIELDS = ("lines_read", "blank_lines", "sent", "acknowledged", "dead_lettered", "delivery_failed")
TEXT_FIELDS = ("server", "file", "mode", "run_id", "started_at", "finished_at")
KEY_SEPARATOR = "|"
_ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


class ManifestError(ValueError):
    """A manifest message does not follow the schema."""


def manifest_key(event_date: str | None, server: str) -> bytes:
    """'2026-01-01|server0' as UTF-8; an undated run (no date= folder, no valid record) has an empty date."""
    return f"{event_date or ''}{KEY_SEPARATOR}{server}".encode()


def parse_key(key: bytes) -> tuple[str | None, str]:
    """b'2026-01-01|server0' -> ('2026-01-01', 'server0')."""
    event_date, separator, server = key.decode("utf-8").partition(KEY_SEPARATOR)
    if not separator or not server:
        raise ManifestError(f"manifest key is not '<event_date>|<server>': {key!r}")
    return event_date or None, server


def not_sent(manifest: dict) -> int:
    """Lines read that are in none of the other counts (lines_read minus the rest)."""
    return manifest["lines_read"] - (manifest["acknowledged"] + manifest["dead_lettered"] + manifest["blank_lines"]
                                     + manifest["delivery_failed"])


def manifest_balanced(manifest: dict) -> bool:
    """True when the counts add up: not_sent >= 0 (and == 0 when complete), sent = acknowledged +
    delivery_failed, dead_lettered = the sum of rejected_by_reason, and a complete run failed nothing."""
    try:
        remainder = not_sent(manifest)
        return (all(manifest[name] >= 0 for name in COUNT_FIELDS) and remainder >= 0
                and manifest["sent"] == manifest["acknowledged"] + manifest["delivery_failed"]
                and manifest["dead_lettered"] == sum(manifest["rejected_by_reason"].values())
                and (not manifest["complete"] or (remainder == 0 and manifest["delivery_failed"] == 0)))
    except (KeyError, TypeError, AttributeError):
        return False


def validate_manifest(manifest: object) -> dict:
    """The manifest itself when it has exactly FIELDS with the right types, else ManifestError."""
    if not isinstance(manifest, dict):
        raise ManifestError("manifest is not a JSON object")
    if set(manifest) != set(FIELDS):
        missing, extra = sorted(set(FIELDS) - set(manifest)), sorted(set(manifest) - set(FIELDS))
        raise ManifestError(f"manifest keys differ: missing {missing}, unexpected {extra}")
    day = manifest["event_date"]
    if day is not None:
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError):
            raise ManifestError(f"event_date is not YYYY-MM-DD: {day!r}") from None
    for name in TEXT_FIELDS:
        if not isinstance(manifest[name], str):
            raise ManifestError(f"{name} is not a string: {manifest[name]!r}")
    for name in ("started_at", "finished_at"):
        if not _ISO_UTC.fullmatch(manifest[name]):
            raise ManifestError(f"{name} is not ISO-8601 UTC: {manifest[name]!r}")
    for name in (*COUNT_FIELDS, "exit_code"):
        value = manifest[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ManifestError(f"{name} is not an integer: {value!r}")
    reasons = manifest["rejected_by_reason"]
    if not isinstance(reasons, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in reasons.items()):
        raise ManifestError(f"rejected_by_reason is not an object of token -> count: {reasons!r}")
    if not isinstance(manifest["complete"], bool):
        raise ManifestError(f"complete is not a boolean: {manifest['complete']!r}")
    return manifest


def parse_manifest(value: bytes) -> dict:
    """A manifest message value -> dict, checked against the schema (ManifestError otherwise)."""
    try:
        manifest = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise ManifestError(f"manifest is not UTF-8 JSON: {error}") from None
    return validate_manifest(manifest)


def encode_manifest(manifest: dict) -> bytes:
    """Schema-checked dict -> message value (keys in FIELDS order)."""
    validate_manifest(manifest)
    return orjson.dumps({name: manifest[name] for name in FIELDS})
