"""Kafka producer of one web server's prepared day file (at-least-once, idempotent).

    python -m ingestion.producer --file F --server server0|server1 --mode realtime|batch [--speed N]

realtime replays the file at its event_ts pacing (first event = now, --speed N compresses time,
default TIME_SCALE); batch sends as fast as possible. Each valid line gets `dedup_key` and
`source_server` and is sent to KAFKA_TOPIC keyed by SessionId (a session stays on one partition, in
order). Lines that are not a valid prepared event (messaging.contract's rules, MAX_EVENT_BYTES
included) go to the dead-letter file and KAFKA_DLQ_TOPIC with the reason; they never stop the run.
Blank lines are counted and skipped. SIGTERM/SIGINT stop reading, flush and report.

Every run ends with a completeness manifest (messaging/manifest.py) sent to KAFKA_MANIFEST_TOPIC and
written to RUN_DIR/ingestion/manifests/<server>_<date>.json; its counts also go to the Pushgateway
(`tripclick_producer_*`, monitoring/metrics.py). Configuration comes from arguments and the environment only
(KAFKA_*, RUN_DIR, TIME_SCALE, PIPELINE_TZ, MAX_EVENT_BYTES, PRODUCER_MAX_REJECT_SHARE, PUSHGATEWAY_URL),
so the same entry point runs in a container. The last stdout line is a JSON summary; exit codes are the
EXIT_* constants below (documented in ingestion/README.md).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import BinaryIO

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer

from infrastructure.settings import Settings, load
from messaging import manifest as manifest_schema
from messaging.contract import PREPARED_FIELDS, SOURCE_SERVERS, TOO_LARGE, dedup_key, format_event_ts, validator
from monitoring import metrics

LOG = logging.getLogger("ingestion.producer")
LOG_FILE_BYTES = 50 * 1024 * 1024
LOG_FILE_BACKUPS = 5
PROGRESS_INTERVAL_S = 5.0
FLUSH_TIMEOUT_S = 60.0
POLL_EVERY = 1000  # produce() calls between two polls of the delivery-report queue
PACING_SLICE_S = 0.1  # longest uninterrupted sleep in realtime mode, so a stop signal is seen quickly
MANIFEST_TIMEOUT_MS = 30_000  # a manifest not acknowledged by then is reported (the topic may be missing)

# Exit codes (ingestion/README.md). Every non-zero exit logs one line "producer: FAILED (code) why".
EXIT_OK = 0
EXIT_DELIVERY_FAILED = 1  # some sent record was not acknowledged
EXIT_USAGE = 2  # bad arguments or settings, missing file
EXIT_INTERRUPTED = 3  # SIGTERM/SIGINT before the end of the file (what was read is flushed first)
EXIT_NOTHING_ACKNOWLEDGED = 4  # a non-empty file gave no acknowledged record (gzip, all garbage, all blank)
EXIT_TOO_MANY_REJECTED = 5  # dead-lettered share of the non-blank lines above PRODUCER_MAX_REJECT_SHARE
EXIT_EMPTY_FILE = 6  # a 0-byte file: no lines in FILE
EXIT_MANIFEST_FAILED = 7  # everything else was fine, but the manifest was not acknowledged

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
BLANK = "blank_line"  # marker of a whitespace-only line: counted and skipped, not a reject


def kafka_config(settings: Settings, server: str, mode: str) -> dict:
    """Idempotent, acks=all, lz4; batches grow large in batch mode and stay short in realtime mode."""
    return {
        "bootstrap.servers": settings.kafka_brokers,
        "client.id": f"tripclick-{server}",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 50 if mode == "batch" else 5,
        "batch.size": 1_000_000,
        "batch.num.messages": 20_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        # Successes are counted as sent - failed - still queued, so only failures cost a callback.
        "delivery.report.only.error": True,
    }


@dataclass
class Counts:
    read: int = 0  # every line, blank ones included
    blank: int = 0  # whitespace-only lines
    sent: int = 0  # accepted by produce()
    delivery_failed: int = 0
    unconfirmed: int = 0  # still queued when the final flush timed out
    rejected: int = 0  # lines written to the dead-letter file (any reason)
    rejected_by_reason: Counter = field(default_factory=Counter)
    dlq_sent: int = 0
    dlq_failed: int = 0
    value_bytes: int = 0
    first_delivery_error: str | None = None

    @property
    def acked(self) -> int:
        return self.sent - self.delivery_failed - self.unconfirmed

    @property
    def failed(self) -> int:
        return self.delivery_failed + self.unconfirmed

    @property
    def not_sent(self) -> int:
        return self.read - self.acked - self.failed - self.rejected - self.blank


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it before reading each line."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame) -> None:
        self.signal_name = signal.Signals(signum).name


class DeadLetters:
    """Rejected lines, each with its reason: appended to a JSON-lines file and sent to the DLQ topic."""

    def __init__(self, path: Path, topic: str, settings: Settings, server: str, source_file: Path,
                 counts: Counts, max_payload: int) -> None:
        self.path = path
        self.topic = topic
        self.max_payload = max_payload  # the topic gets at most this many bytes of a line (the file gets all)
        self.settings = settings
        self.server = server
        self.source_file = str(source_file)
        self.counts = counts
        self._file: BinaryIO | None = None
        self._producer: Producer | None = None  # separate, so its reports never mix with the event counts

    def add(self, raw: bytes, line_number: int, reason: str) -> None:
        self.counts.rejected += 1
        self.counts.rejected_by_reason[reason] += 1
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._producer = Producer({"bootstrap.servers": self.settings.kafka_brokers, "acks": "all",
                                       "enable.idempotence": True, "client.id": f"tripclick-{self.server}-dlq"})
        entry = {"source_file": self.source_file, "line": line_number, "reason": reason,
                 "source_server": self.server, "raw": raw.decode("utf-8", errors="backslashreplace")}
        self._file.write(orjson.dumps(entry) + b"\n")
        headers = [("reason", reason), ("source_file", self.source_file), ("line", str(line_number)),
                   ("source_server", self.server)]
        payload = raw
        if len(raw) > self.max_payload:  # e.g. a line over the broker's message limit: the topic gets its head
            payload = raw[:self.max_payload]
            headers.append(("truncated_from", str(len(raw))))
        try:
            self._producer.produce(self.topic, payload, headers=headers, on_delivery=self._delivered)
            self.counts.dlq_sent += 1
        except (BufferError, KafkaException) as error:
            self.counts.dlq_failed += 1
            LOG.error("dlq produce failed line=%d error=%s (the line is kept in %s)", line_number, error, self.path)
        self._producer.poll(0)

    def close(self, timeout_s: float) -> None:
        if self._file is None:
            return
        self._file.close()
        unconfirmed = self._producer.flush(timeout_s)
        if unconfirmed:
            self.counts.dlq_failed += unconfirmed
            LOG.error("dlq flush timed out with %d messages unconfirmed", unconfirmed)

    def _delivered(self, error: KafkaError | None, _message) -> None:
        if error is not None:
            self.counts.dlq_failed += 1
            LOG.error("dlq delivery failed: %s", error)


def line_parser(server: str, pipeline_tz: str, max_event_bytes: int) -> Callable[[bytes], tuple]:
    """`parse(raw) -> (message value, key, event_ts)` for a valid prepared line, else (None, reason, None);
    reason BLANK marks a whitespace-only line.

    The value is the line itself with the two producer fields spliced in before the closing brace:
    re-serialising the parsed record would cost more than the splice for the same JSON document. The
    size rule applies to that value (what Spark will check), and to the line before parsing.
    """
    check = validator(PREPARED_FIELDS, pipeline_tz)
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    suffix = b'","source_server":"%s"}' % server.encode()

    def parse(raw: bytes) -> tuple[bytes | None, str, str | None]:
        if len(raw) > max_event_bytes:
            return None, TOO_LARGE, None
        try:
            record = loads(raw)
        except decode_error:
            return unparsable(raw)
        reason = check(record, raw)
        if reason:
            return None, reason, None
        session_id, event_ts = record["SessionId"], record["event_ts"]
        key = dedup_key(session_id, record["DocumentId"], event_ts)
        if "dedup_key" in record or "source_server" in record:  # never emit a JSON object with a key twice
            record.update(dedup_key=key, source_server=server)
            value = orjson.dumps(record)
        else:
            value = b'%s,"dedup_key":"%s%s' % (raw.rstrip()[:-1], key.encode(), suffix)
        if len(value) > max_event_bytes:
            return None, TOO_LARGE, None
        return value, session_id, event_ts

    def unparsable(raw: bytes) -> tuple[None, str, None]:
        if raw.startswith(BOM) and not raw.startswith(BOM, len(BOM)):  # one UTF-8 byte order mark (some editors)
            return parse(raw[len(BOM):])
        if not raw.strip():
            return None, BLANK, None
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "not_utf8", None
        return None, "invalid_json", None

    return parse


def event_from_line(raw: bytes, server: str) -> tuple[bytes | None, str, str | None]:
    """One line with the configured PIPELINE_TZ and MAX_EVENT_BYTES (for tools; the producer keeps its parser)."""
    from messaging.contract import configured, max_event_bytes

    return line_parser(server, configured("PIPELINE_TZ"), max_event_bytes())(raw)


class Pacer:
    """Realtime mode: holds each event until its scaled offset from the first event has passed."""

    def __init__(self, speed: float, stop: StopFlag, on_idle: Callable[[], None]) -> None:
        self.speed = speed
        self.stop = stop
        self.on_idle = on_idle  # runs between sleeps, so deliveries and progress keep flowing in quiet spells
        self.first_event_s: float | None = None
        self.started = 0.0
        self.lateness_ms: list[float] = []

    def wait_for(self, event_ts: str) -> None:
        moment = datetime.fromisoformat(event_ts).timestamp()
        if self.first_event_s is None:
            self.first_event_s, self.started = moment, time.monotonic()
        due = self.started + (moment - self.first_event_s) / self.speed
        while not self.stop and (remaining := due - time.monotonic()) > 0:
            if remaining > PACING_SLICE_S:
                self.on_idle()
                remaining = due - time.monotonic()
            time.sleep(max(0.0, min(remaining, PACING_SLICE_S)))
        self.lateness_ms.append(max(0.0, (time.monotonic() - due) * 1000))

    def percentiles(self) -> dict:
        if not self.lateness_ms:
            return {}
        ordered = sorted(self.lateness_ms)

        def at(share: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)

        return {"lateness_p50_ms": at(0.50), "lateness_p99_ms": at(0.99), "lateness_max_ms": round(ordered[-1], 3)}


@dataclass(frozen=True)
class Limits:
    """The settings that decide what a line may be and when a run fails."""
    pipeline_tz: str
    max_event_bytes: int
    max_reject_share: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        if settings.max_event_bytes <= 0:
            raise ValueError(f"MAX_EVENT_BYTES must be > 0, got {settings.max_event_bytes}")
        if not 0 <= settings.producer_max_reject_share <= 1:
            raise ValueError(f"PRODUCER_MAX_REJECT_SHARE must be in [0, 1], got {settings.producer_max_reject_share}")
        return cls(settings.pipeline_tz, settings.max_event_bytes, settings.producer_max_reject_share)


def utc_now() -> str:
    return format_event_ts(datetime.now(timezone.utc))


class FileProducer:
    def __init__(self, settings: Settings, path: Path, server: str, mode: str, speed: float, dlq_file: Path,
                 stop: StopFlag, limits: Limits | None = None) -> None:
        self.settings = settings
        self.path = path
        self.server = server
        self.mode = mode
        self.speed = speed
        self.stop = stop
        self.limits = limits or Limits.from_settings(settings)
        self.counts = Counts()
        self.run_id = uuid.uuid4().hex
        self.started_at = self.finished_at = ""
        self.reached_end = False  # the whole file was read
        self.refused: str | None = None  # why the file was not read at all (gzip)
        self.producer = Producer({**kafka_config(settings, server, mode), "on_delivery": self._delivered})
        self.parse_line = line_parser(server, self.limits.pipeline_tz, self.limits.max_event_bytes)
        self.dead_letters = DeadLetters(dlq_file, settings.kafka_dlq_topic, settings, server, path, self.counts,
                                        self.limits.max_event_bytes)
        self.pacer = Pacer(speed, stop, self._housekeeping) if mode == "realtime" else None
        self.started = self.next_progress = 0.0  # set when run() starts

    def run(self) -> dict:
        started = self.started = time.monotonic()
        self.started_at = utc_now()
        self.next_progress = started + PROGRESS_INTERVAL_S
        LOG.info("start file=%s server=%s mode=%s speed=%s topic=%s brokers=%s run_id=%s", self.path, self.server,
                 self.mode, self.speed, self.settings.kafka_topic, self.settings.kafka_brokers, self.run_id)
        # Locals, not attribute lookups, in the per-record loop: it runs ~150,000 times a second.
        counts, stop, pacer, parse = self.counts, self.stop, self.pacer, self.parse_line
        topic, produce = self.settings.kafka_topic, self.producer.produce
        with self.path.open("rb") as lines:
            if lines.peek(len(GZIP_MAGIC))[:len(GZIP_MAGIC)] == GZIP_MAGIC:
                self.refused = f"{self.path} is gzip-compressed (starts with 1f 8b): decompress it first"
            else:
                for number, raw in enumerate(lines, start=1):
                    if stop.signal_name:
                        break
                    counts.read += 1
                    value, key, event_ts = parse(raw)
                    if value is None:
                        if key is BLANK:
                            counts.blank += 1
                        else:
                            self.dead_letters.add(raw.rstrip(b"\r\n"), number, key)
                        continue
                    if pacer:
                        pacer.wait_for(event_ts)
                    try:
                        produce(topic, value, key)
                    except BufferError:  # local queue full: let deliveries drain, then retry
                        if not self._produce_when_queue_drains(value, key, raw, number):
                            continue
                    except KafkaException as error:
                        self._produce_refused(error, raw, number)
                        continue
                    counts.sent += 1
                    counts.value_bytes += len(value)
                    if number % POLL_EVERY == 0:
                        self._housekeeping()
                else:
                    self.reached_end = True
        if stop and not self.reached_end:
            LOG.warning("stop requested by %s after %d lines: flushing", stop.signal_name, counts.read)
        self._flush()
        self.finished_at = utc_now()
        return self._summary(time.monotonic() - started)

    def _produce_when_queue_drains(self, value: bytes, key: str, raw: bytes, number: int) -> bool:
        while True:
            self.producer.poll(0.05)
            try:
                self.producer.produce(self.settings.kafka_topic, value, key)
                return True
            except BufferError:
                continue
            except KafkaException as error:
                self._produce_refused(error, raw, number)
                return False

    def _produce_refused(self, error: KafkaException, raw: bytes, number: int) -> None:
        """The client refused the record itself (e.g. _MSG_SIZE_TOO_LARGE): the line is dead-lettered."""
        name = error.args[0].name() if error.args and isinstance(error.args[0], KafkaError) else "unknown"
        LOG.error("produce refused line=%d error=%s: dead-lettered", number, error)
        self.dead_letters.add(raw.rstrip(b"\r\n"), number, f"produce_error:{name.strip('_')}")

    def _delivered(self, error: KafkaError | None, message) -> None:
        if error is not None:  # only failures are reported (delivery.report.only.error)
            self.counts.delivery_failed += 1
            if self.counts.first_delivery_error is None:
                self.counts.first_delivery_error = error.name()
            if self.counts.delivery_failed <= 10 or self.counts.delivery_failed % 10_000 == 0:
                LOG.error("delivery failed key=%s error=%s (failures so far %d)", message.key(), error,
                          self.counts.delivery_failed)

    def _flush(self) -> None:
        self.counts.unconfirmed = self.producer.flush(FLUSH_TIMEOUT_S)
        if self.counts.unconfirmed:
            LOG.error("flush timed out: %d records unconfirmed, counted as failed", self.counts.unconfirmed)
        self.dead_letters.close(FLUSH_TIMEOUT_S)

    def _housekeeping(self) -> None:
        """Serve delivery reports; log progress every PROGRESS_INTERVAL_S."""
        self.producer.poll(0)
        now = time.monotonic()
        if now >= self.next_progress:
            self.next_progress = now + PROGRESS_INTERVAL_S
            self._log_progress(self.started)

    def _log_progress(self, started: float) -> None:
        c = self.counts
        in_queue = len(self.producer)
        elapsed = time.monotonic() - started
        LOG.info("progress read=%d sent=%d acked=%d failed=%d rejected=%d queued=%d events_per_s=%.0f", c.read,
                 c.sent, c.sent - c.delivery_failed - in_queue, c.failed, c.rejected, in_queue, c.sent / elapsed)

    def outcome(self) -> tuple[int, str]:
        """(exit code, one-line reason) of the run; the first matching rule wins."""
        c, path = self.counts, self.path
        if self.refused:
            return EXIT_NOTHING_ACKNOWLEDGED, self.refused
        if not self.reached_end:
            return EXIT_INTERRUPTED, (f"stopped by {self.stop.signal_name} after {c.read} lines, before the end of "
                                      f"{path}: {c.acked} acknowledged, the day is incomplete")
        if c.failed:
            return EXIT_DELIVERY_FAILED, (f"{c.failed} of {c.sent} records sent were not acknowledged by Kafka "
                                          f"(first error: {c.first_delivery_error or 'flush timed out'})")
        if c.read == 0:
            return EXIT_EMPTY_FILE, f"no lines in {path}"
        if c.acked == 0:
            return EXIT_NOTHING_ACKNOWLEDGED, (f"nothing acknowledged from {path}: {c.read} lines, {c.blank} blank, "
                                               f"{c.rejected} dead-lettered ({self._top_reasons()})")
        non_blank = c.read - c.blank
        if c.rejected > self.limits.max_reject_share * non_blank:
            return EXIT_TOO_MANY_REJECTED, (
                f"{c.rejected} of {non_blank} lines dead-lettered ({c.rejected / non_blank:.2%}), more than "
                f"PRODUCER_MAX_REJECT_SHARE={self.limits.max_reject_share:g} ({self._top_reasons()})")
        return EXIT_OK, "ok"

    def _top_reasons(self) -> str:
        common = self.counts.rejected_by_reason.most_common(3)
        return "reasons: " + (", ".join(f"{reason}={n}" for reason, n in common) if common else "none")

    def event_date(self) -> str | None:
        """The date= folder of the path, else the event_date of the file's first valid record."""
        for part in reversed(self.path.parts):
            if part.startswith("date="):
                try:
                    return date.fromisoformat(part[len("date="):]).isoformat()
                except ValueError:
                    break
        if self.counts.sent or self.counts.delivery_failed:
            with self.path.open("rb") as lines:
                for raw in lines:
                    value, _, _ = self.parse_line(raw)
                    if value is not None:
                        return orjson.loads(value)["event_date"]
        return None

    def manifest(self, exit_code: int) -> dict:
        c = self.counts
        return {
            "event_date": self.event_date(), "server": self.server, "file": str(self.path), "mode": self.mode,
            "run_id": self.run_id, "started_at": self.started_at, "finished_at": self.finished_at,
            "lines_read": c.read, "blank_lines": c.blank, "sent": c.sent, "acknowledged": c.acked,
            "dead_lettered": c.rejected, "delivery_failed": c.failed,
            "rejected_by_reason": dict(sorted(c.rejected_by_reason.items())),
            "complete": self.reached_end and c.failed == 0, "exit_code": exit_code,
        }

    def _summary(self, elapsed_s: float) -> dict:
        c = self.counts
        summary = {
            "file": str(self.path), "server": self.server, "mode": self.mode, "speed": self.speed,
            "read": c.read, "sent": c.sent, "acked": c.acked, "failed": c.failed, "rejected": c.rejected,
            "blank": c.blank, "not_sent": c.not_sent, "dlq_sent": c.dlq_sent, "dlq_failed": c.dlq_failed,
            "rejected_by_reason": dict(sorted(c.rejected_by_reason.items())),
            "interrupted": self.stop.signal_name if not self.reached_end else None, "elapsed_s": round(elapsed_s, 3),
            "events_per_s": round(c.acked / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "mb_per_s": round(c.value_bytes / 1e6 / elapsed_s, 2) if elapsed_s > 0 else 0.0,
            # Where the time went: the Python thread versus the whole process (librdkafka threads included).
            "cpu_main_thread_s": round(time.thread_time(), 2), "cpu_process_s": round(time.process_time(), 2),
        }
        if self.pacer:
            summary.update(self.pacer.percentiles())
        return summary


def publish_manifest(settings: Settings, manifest: dict, server: str) -> str | None:
    """Send the manifest (acks=all, idempotent) and wait for it; None when acknowledged, else the error."""
    errors: list[str] = []

    def delivered(error: KafkaError | None, _message) -> None:
        if error is not None:
            errors.append(str(error))

    producer = Producer({"bootstrap.servers": settings.kafka_brokers, "acks": "all", "enable.idempotence": True,
                         "client.id": f"tripclick-{server}-manifest", "message.timeout.ms": MANIFEST_TIMEOUT_MS})
    try:
        producer.produce(settings.kafka_manifest_topic, manifest_schema.encode_manifest(manifest),
                         manifest_schema.manifest_key(manifest["event_date"], server), on_delivery=delivered)
    except (BufferError, KafkaException) as error:
        return str(error)
    if producer.flush(MANIFEST_TIMEOUT_MS / 1000 + 5):
        return "not acknowledged in time"
    return errors[0] if errors else None


def write_json_atomically(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(partial, path)


def configure_logging(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for handler in (logging.StreamHandler(sys.stderr),
                    RotatingFileHandler(log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS)):
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)


def default_name(path: Path, server: str) -> str:
    """'server0_2026-01-01' for .../server0/date=2026-01-01/events.json, else 'server0_<file stem>'."""
    parent = path.parent.name
    return f"{server}_{parent[len('date='):] if parent.startswith('date=') else path.stem}"


def positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def main(argv: Iterable[str] | None = None) -> int:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m ingestion.producer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, required=True, help="prepared day file (JSON lines sorted by event_ts)")
    parser.add_argument("--server", choices=SOURCE_SERVERS, required=True, help="web server the file belongs to")
    parser.add_argument("--mode", choices=("realtime", "batch"), required=True)
    parser.add_argument("--speed", type=positive_float, default=settings.time_scale,
                        help="realtime compression factor (default TIME_SCALE)")
    parser.add_argument("--dlq-file", type=Path,
                        help="dead-letter file (default RUN_DIR/ingestion/dlq/<server>_<date>.jsonl)")
    parser.add_argument("--manifest-file", type=Path,
                        help="manifest copy (default RUN_DIR/ingestion/manifests/<server>_<date>.json)")
    parser.add_argument("--log-file", type=Path, help="rotating log (default RUN_DIR/logs/producer_<server>.log)")
    args = parser.parse_args(argv)
    name = default_name(args.file, args.server)
    configure_logging(args.log_file or settings.run_dir / "logs" / f"producer_{args.server}.log")
    if not args.file.is_file():
        LOG.error("producer: FAILED (%d) no such file: %s", EXIT_USAGE, args.file)
        return EXIT_USAGE
    try:
        limits = Limits.from_settings(settings)
        validator(PREPARED_FIELDS, limits.pipeline_tz)  # an unknown PIPELINE_TZ fails here
    except (ValueError, KeyError) as error:
        LOG.error("producer: FAILED (%d) %s", EXIT_USAGE, error)
        return EXIT_USAGE
    stop = StopFlag()
    stop.install()
    dlq_file = args.dlq_file or settings.run_dir / "ingestion" / "dlq" / f"{name}.jsonl"
    producer = FileProducer(settings, args.file, args.server, args.mode, args.speed, dlq_file, stop, limits)
    summary = producer.run()
    code, why = producer.outcome()
    manifest = producer.manifest(code)
    error = publish_manifest(settings, manifest, args.server)
    if error:
        LOG.error("manifest not acknowledged by %s: %s", settings.kafka_manifest_topic, error)
        if code == EXIT_OK:
            code = EXIT_MANIFEST_FAILED
            why = f"manifest not acknowledged by topic {settings.kafka_manifest_topic}: {error}"
    manifest_file = args.manifest_file or settings.run_dir / "ingestion" / "manifests" / f"{name}.json"
    write_json_atomically(manifest_file, {**manifest, "exit_code": code})
    metrics.push("producer", {"server": args.server, "date": manifest["event_date"] or "none"},
                 {"lines_read": manifest["lines_read"], "events_acknowledged": manifest["acknowledged"],
                  "events_dead_lettered": manifest["dead_lettered"], "duration_seconds": summary["elapsed_s"],
                  "complete": float(manifest["complete"] and code == EXIT_OK),
                  "finished_timestamp_seconds": time.time()})
    summary.update(exit_code=code, complete=manifest["complete"], run_id=producer.run_id,
                   manifest_sent=error is None, manifest_file=str(manifest_file))
    LOG.info("done %s", " ".join(f"{k}={v}" for k, v in summary.items()))
    if code != EXIT_OK:
        LOG.error("producer: FAILED (%d) %s", code, why)
    print(orjson.dumps(summary).decode(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
