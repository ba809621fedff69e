"""Kafka producer of one web server's prepared day file (at-least-once, idempotent).

    python -m ingestion.producer --file F --server server0|server1 --mode realtime|batch [--speed N]

realtime replays the file at its event_ts pacing (first event = now, --speed N compresses time,
default TIME_SCALE); batch sends as fast as possible. Each valid line gets `dedup_key` and
`source_server` and is sent to KAFKA_TOPIC keyed by SessionId (a session stays on one partition, in
order). Lines that are not a valid prepared event go to the dead-letter file and KAFKA_DLQ_TOPIC
with the reason; they never stop the run. SIGTERM/SIGINT stop reading, flush and report.

Configuration comes from arguments and the environment only (KAFKA_BROKERS, KAFKA_TOPIC,
KAFKA_DLQ_TOPIC, RUN_DIR, TIME_SCALE), so the same entry point runs in a container. The last stdout
line is a JSON summary; the exit code is 1 when any record failed delivery, 2 on a usage error.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer

from infrastructure.settings import Settings, load
from messaging.contract import PREPARED_FIELDS, SOURCE_SERVERS, dedup_key, validate

LOG = logging.getLogger("ingestion.producer")
LOG_FILE_BYTES = 50 * 1024 * 1024
LOG_FILE_BACKUPS = 5
PROGRESS_INTERVAL_S = 5.0
FLUSH_TIMEOUT_S = 60.0
POLL_EVERY = 1000  # produce() calls between two polls of the delivery-report queue
PACING_SLICE_S = 0.1  # longest uninterrupted sleep in realtime mode, so a stop signal is seen quickly


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
    read: int = 0
    sent: int = 0  # accepted by produce()
    delivery_failed: int = 0
    produce_errors: int = 0
    unconfirmed: int = 0  # still queued when the final flush timed out
    rejected: int = 0
    dlq_sent: int = 0
    dlq_failed: int = 0
    value_bytes: int = 0

    @property
    def acked(self) -> int:
        return self.sent - self.delivery_failed - self.unconfirmed

    @property
    def failed(self) -> int:
        return self.delivery_failed + self.produce_errors + self.unconfirmed

    @property
    def not_sent(self) -> int:
        return self.read - self.acked - self.failed - self.rejected


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
                 counts: Counts) -> None:
        self.path = path
        self.topic = topic
        self.settings = settings
        self.server = server
        self.source_file = str(source_file)
        self.counts = counts
        self._file: BinaryIO | None = None
        self._producer: Producer | None = None  # separate, so its reports never mix with the event counts

    def add(self, raw: bytes, line_number: int, reason: str) -> None:
        self.counts.rejected += 1
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
        try:
            self._producer.produce(self.topic, raw, headers=headers, on_delivery=self._delivered)
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


def event_from_line(raw: bytes, server: str) -> tuple[bytes | None, str, str | None]:
    """(message value, key, event_ts) for a valid prepared line, else (None, reason, None).

    The value is the line itself with the two producer fields spliced in before the closing brace:
    re-serialising the parsed record would cost more than the splice for the same JSON document.
    """
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "not_utf8", None
        return None, ("empty_line" if not raw.strip() else "invalid_json"), None
    reason = validate(record, PREPARED_FIELDS)
    if reason:
        return None, reason, None
    session_id, event_ts = record["SessionId"], record["event_ts"]
    key = dedup_key(session_id, record["DocumentId"], event_ts)
    if "dedup_key" in record or "source_server" in record:  # never emit a JSON object with a key twice
        record.update(dedup_key=key, source_server=server)
        return orjson.dumps(record), session_id, event_ts
    return b"%s,\"dedup_key\":\"%s\",\"source_server\":\"%s\"}" % (
        raw.rstrip()[:-1], key.encode(), server.encode()), session_id, event_ts


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


class FileProducer:
    def __init__(self, settings: Settings, path: Path, server: str, mode: str, speed: float, dlq_file: Path,
                 stop: StopFlag) -> None:
        self.settings = settings
        self.path = path
        self.server = server
        self.mode = mode
        self.speed = speed
        self.stop = stop
        self.counts = Counts()
        self.producer = Producer({**kafka_config(settings, server, mode), "on_delivery": self._delivered})
        self.dead_letters = DeadLetters(dlq_file, settings.kafka_dlq_topic, settings, server, path, self.counts)
        self.pacer = Pacer(speed, stop, self._housekeeping) if mode == "realtime" else None
        self.started = self.next_progress = 0.0  # set when run() starts

    def run(self) -> dict:
        started = self.started = time.monotonic()
        self.next_progress = started + PROGRESS_INTERVAL_S
        LOG.info("start file=%s server=%s mode=%s speed=%s topic=%s brokers=%s", self.path, self.server, self.mode,
                 self.speed, self.settings.kafka_topic, self.settings.kafka_brokers)
        # Locals, not attribute lookups, in the per-record loop: it runs ~150,000 times a second.
        counts, stop, pacer, server = self.counts, self.stop, self.pacer, self.server
        topic, produce = self.settings.kafka_topic, self.producer.produce
        with self.path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if stop.signal_name:
                    break
                counts.read += 1
                value, key, event_ts = event_from_line(raw, server)
                if value is None:
                    self.dead_letters.add(raw.rstrip(b"\r\n"), number, key)
                    continue
                if pacer:
                    pacer.wait_for(event_ts)
                try:
                    produce(topic, value, key)
                except BufferError:  # local queue full: let deliveries drain, then retry
                    if not self._produce_when_queue_drains(value, key, number):
                        continue
                except KafkaException as error:
                    counts.produce_errors += 1
                    LOG.error("produce failed line=%d error=%s", number, error)
                    continue
                counts.sent += 1
                counts.value_bytes += len(value)
                if number % POLL_EVERY == 0:
                    self._housekeeping()
        if stop:
            LOG.warning("stop requested by %s after %d lines: flushing", stop.signal_name, counts.read)
        self._flush()
        return self._summary(time.monotonic() - started)

    def _produce_when_queue_drains(self, value: bytes, key: str, number: int) -> bool:
        while True:
            self.producer.poll(0.05)
            try:
                self.producer.produce(self.settings.kafka_topic, value, key)
                return True
            except BufferError:
                continue
            except KafkaException as error:
                self.counts.produce_errors += 1
                LOG.error("produce failed line=%d error=%s", number, error)
                return False

    def _delivered(self, error: KafkaError | None, message) -> None:
        if error is not None:  # only failures are reported (delivery.report.only.error)
            self.counts.delivery_failed += 1
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

    def _summary(self, elapsed_s: float) -> dict:
        c = self.counts
        summary = {
            "file": str(self.path), "server": self.server, "mode": self.mode, "speed": self.speed,
            "read": c.read, "sent": c.sent, "acked": c.acked, "failed": c.failed, "rejected": c.rejected,
            "not_sent": c.not_sent, "dlq_sent": c.dlq_sent, "dlq_failed": c.dlq_failed,
            "interrupted": self.stop.signal_name, "elapsed_s": round(elapsed_s, 3),
            "events_per_s": round(c.acked / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "mb_per_s": round(c.value_bytes / 1e6 / elapsed_s, 2) if elapsed_s > 0 else 0.0,
            # Where the time went: the Python thread versus the whole process (librdkafka threads included).
            "cpu_main_thread_s": round(time.thread_time(), 2), "cpu_process_s": round(time.process_time(), 2),
        }
        if self.pacer:
            summary.update(self.pacer.percentiles())
        return summary


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
    parser.add_argument("--log-file", type=Path, help="rotating log (default RUN_DIR/logs/producer_<server>.log)")
    args = parser.parse_args(argv)
    name = default_name(args.file, args.server)
    configure_logging(args.log_file or settings.run_dir / "logs" / f"producer_{args.server}.log")
    if not args.file.is_file():
        LOG.error("no such file: %s", args.file)
        return 2
    stop = StopFlag()
    stop.install()
    dlq_file = args.dlq_file or settings.run_dir / "ingestion" / "dlq" / f"{name}.jsonl"
    summary = FileProducer(settings, args.file, args.server, args.mode, args.speed, dlq_file, stop).run()
    LOG.info("done %s", " ".join(f"{k}={v}" for k, v in summary.items()))
    print(orjson.dumps(summary).decode(), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
