"""Preparation CLI: raw TripClick day files -> replay-ready day files per web server.

    python -m ingestion.prepare --raw RAW [--out DATA_DIR] [--source-start D --source-end D]
                                [--target-start D --target-end D] [--rejects FILE]

RAW is a folder of `YYYY-MM-DD.json` files (or one such file, or the dataset's `logs.tar.gz`, read
without extracting it) with one TripClick record per line.
Each valid record keeps its raw fields untouched and gains `event_ts` and `event_date`; it is written
to `<OUT>/server{0,1}/date=<event_date>/events.json`, every file sorted by `event_ts`.

* Server: a stable hash of SessionId (a session-affine load balancer: a session never spans servers).
* Day: the source span (UTC days of DateCreated) is mapped linearly onto the target days.
* Time: every source day is compressed from 24 h into the target day's 15:00-16:00 window in
  PIPELINE_TZ, which keeps the order and relative spacing of the clicks of each source day.

Memory stays constant in the input size: records are buffered up to `--run-lines`, then spilled as
sorted runs and merged at the end (external sort). Bad lines go to the rejects file with the source
file, line number and reason; nothing is dropped silently.
"""
from __future__ import annotations

import argparse
import codecs
import heapq
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time as clock
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

import orjson
import xxhash

from infrastructure.dates import ISO_DATE
from infrastructure.settings import load
from ingestion.progress import Progress
from messaging.contract import RAW_FIELDS, SOURCE_SERVERS, dotnet_date_ms, format_event_ts, validate

DEFAULT_SOURCE_SPAN = (date(2013, 1, 1), date(2020, 10, 30))
DEFAULT_TARGET_SPAN = (date(2026, 1, 1), date(2026, 2, 1))
WINDOW_START = time(15, 0)
WINDOW_MS = 3_600_000
DAY_MS = 86_400_000
EPOCH_DAY = date(1970, 1, 1)
RAW_FILE_NAME = re.compile(rf"^{ISO_DATE}\.json$")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
EVENTS_FILE = "events.json"
REJECTS_FILE = "prepare_rejects.jsonl"


def server_for(session_id: str, servers: tuple[str, ...] = SOURCE_SERVERS) -> str:
    """Session-affine server choice: the same SessionId always lands on the same server."""
    return servers[xxhash.xxh64_intdigest(session_id.encode("utf-8")) % len(servers)]


def day_file(out_dir: Path, server: str, day: date) -> Path:
    return out_dir / server / f"date={day.isoformat()}" / EVENTS_FILE


@dataclass(frozen=True)
class Timeline:
    """Maps a click's UTC moment onto the replay timeline: (target day, event_ts)."""

    source_start: date
    source_end: date
    target_start: date
    target_end: date
    tz: ZoneInfo
    _window_starts: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.source_end < self.source_start or self.target_end < self.target_start:
            raise ValueError("a span must not end before it starts")

    @property
    def source_days(self) -> int:
        return (self.source_end - self.source_start).days + 1

    @property
    def target_days(self) -> int:
        return (self.target_end - self.target_start).days + 1

    def target_day(self, source_day: date) -> date | None:
        """Linear day mapping; None outside the source span."""
        if not self.source_start <= source_day <= self.source_end:
            return None
        index = (source_day - self.source_start).days * self.target_days // self.source_days
        return self.target_start + timedelta(days=index)

    def window_start(self, day: date) -> datetime:
        start = self._window_starts.get(day)
        if start is None:
            start = datetime.combine(day, WINDOW_START, tzinfo=self.tz).astimezone(timezone.utc)
            self._window_starts[day] = start
        return start

    def place(self, created_ms: int) -> tuple[date, str] | None:
        """(event_date, event_ts) for a click at `created_ms` since the epoch (UTC), None outside the span."""
        source_day, ms_of_day = divmod(created_ms, DAY_MS)
        day = self.target_day(EPOCH_DAY + timedelta(days=source_day))
        if day is None:
            return None
        offset_ms = ms_of_day * WINDOW_MS // DAY_MS
        return day, format_event_ts(self.window_start(day) + timedelta(milliseconds=offset_ms))


@dataclass
class PrepareStats:
    read: int = 0
    written: Counter = field(default_factory=Counter)  # (server, date) -> records
    rejected: Counter = field(default_factory=Counter)  # reason -> lines
    skipped_files: list[str] = field(default_factory=list)

    def summary(self, elapsed_s: float) -> dict:
        return {
            "read": self.read,
            "written": sum(self.written.values()),
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "files": len(self.written),
            "skipped_files": len(self.skipped_files),
            "elapsed_s": round(elapsed_s, 3),
        }


def parse_raw_line(raw: bytes) -> tuple[dict | None, str | None]:
    """(record, None) for a well-formed raw record, else (None, reason)."""
    if not raw.strip():
        return None, "empty_line"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not_utf8"
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, "invalid_json"
    reason = validate(record, RAW_FIELDS)
    return (None, reason) if reason else (record, None)


class Preparer:
    """Streams raw lines in, writes sorted per-server day files out (external merge sort)."""

    def __init__(self, out_dir: Path, timeline: Timeline, rejects_path: Path,
                 servers: tuple[str, ...] = SOURCE_SERVERS, run_lines: int = 250_000) -> None:
        self.out_dir = out_dir
        self.timeline = timeline
        self.servers = servers
        self.run_lines = run_lines
        self.stats = PrepareStats()
        out_dir.mkdir(parents=True, exist_ok=True)
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        self.rejects_path = rejects_path
        self._rejects = rejects_path.open("wb")
        self._spill_dir = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out_dir))
        self._buffers: dict[tuple[str, date], list[bytes]] = defaultdict(list)
        self._runs: dict[tuple[str, date], list[Path]] = defaultdict(list)
        self._buffered = 0
        self._sequence = 0

    def add(self, raw: bytes, source: str, line_number: int) -> None:
        self.stats.read += 1
        record, reason = parse_raw_line(raw)
        placed = None
        if record is not None:
            placed = self.timeline.place(dotnet_date_ms(record["DateCreated"]))
            reason = None if placed else "out_of_span"
        if reason:
            self._reject(raw, source, line_number, reason)
            return
        event_date, event_ts = placed
        record["event_ts"] = event_ts
        record["event_date"] = event_date.isoformat()
        key = (server_for(record["SessionId"], self.servers), event_date)
        # The sort prefix (fixed-width event_ts, then input order) makes byte order = replay order.
        self._buffers[key].append(b"%s\t%012d\t%s" % (event_ts.encode(), self._sequence, orjson.dumps(record)))
        self._sequence += 1
        self._buffered += 1
        if self._buffered >= self.run_lines:
            self._spill()

    def add_lines(self, lines: Iterable[bytes], source: str, progress: Progress) -> None:
        for number, raw in enumerate(lines, start=1):
            progress.advance(len(raw))
            if number == 1:  # files saved by Windows tools may start with a byte-order mark
                raw = raw.removeprefix(codecs.BOM_UTF8)
            self.add(raw.rstrip(b"\r\n"), source, number)

    def finish(self) -> PrepareStats:
        """Merge runs into the final files (written atomically); every touched date gets a file per server."""
        try:
            days = {day for _, day in self._buffers} | {day for _, day in self._runs}
            for day in sorted(days):
                for server in self.servers:
                    self._write_day_file(server, day)
        finally:
            self._rejects.close()
            shutil.rmtree(self._spill_dir, ignore_errors=True)
        return self.stats

    def _reject(self, raw: bytes, source: str, line_number: int, reason: str) -> None:
        self.stats.rejected[reason] += 1
        entry = {"source": source, "line": line_number, "reason": reason,
                 "raw": raw.decode("utf-8", errors="backslashreplace")}
        self._rejects.write(orjson.dumps(entry) + b"\n")

    def _spill(self) -> None:
        for key, lines in self._buffers.items():
            lines.sort()
            run = self._spill_dir / f"{key[0]}_{key[1]}_{len(self._runs[key]):05d}.run"
            run.write_bytes(b"\n".join(lines) + b"\n")
            self._runs[key].append(run)
        self._buffers.clear()
        self._buffered = 0

    def _sorted_lines(self, key: tuple[str, date], stack: ExitStack) -> Iterator[bytes]:
        buffered = sorted(self._buffers.pop(key, []))
        runs = [(line.rstrip(b"\n") for line in stack.enter_context(run.open("rb"))) for run in self._runs.get(key, [])]
        return heapq.merge(buffered, *runs)

    def _write_day_file(self, server: str, day: date) -> None:
        target = day_file(self.out_dir, server, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".json.partial")
        written = 0
        with ExitStack() as stack, partial.open("wb") as out:
            for line in self._sorted_lines((server, day), stack):
                out.write(line.split(b"\t", 2)[2] + b"\n")
                written += 1
        os.replace(partial, target)
        self.stats.written[(server, day)] = written


def is_archive(raw: Path) -> bool:
    return raw.is_file() and raw.name.endswith(ARCHIVE_SUFFIXES)


def add_archive(preparer: Preparer, archive: Path, progress: Progress) -> list[str]:
    """Streams the day files out of the dataset's logs.tar.gz (no extraction); returns skipped member names.

    Members are read in archive order; the external sort makes the output independent of that order.
    """
    skipped = []
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            name = Path(member.name).name
            if member.isfile() and RAW_FILE_NAME.match(name):
                preparer.add_lines(tar.extractfile(member), name, progress)
            else:
                skipped.append(member.name)
    return skipped


def raw_files(raw: Path) -> tuple[list[Path], list[str]]:
    """(the YYYY-MM-DD.json files of RAW in date order, names of the other entries, skipped)."""
    if raw.is_file():
        return [raw], []
    if not raw.is_dir():
        raise FileNotFoundError(f"raw input {raw} is neither a file nor a folder")
    files, skipped = [], []
    for path in sorted(raw.iterdir()):
        (files if path.is_file() and RAW_FILE_NAME.match(path.name) else skipped).append(path)
    return files, [path.name for path in skipped]


def report(stats: PrepareStats, elapsed_s: float, rejects_path: Path, out=None) -> None:
    """Per-file counts, then a one-line JSON summary as the last line."""
    out = out or sys.stdout
    for (server, day), count in sorted(stats.written.items()):
        print(f"prepare: wrote {server} date={day} records={count}", file=out)
    for name in stats.skipped_files:
        print(f"prepare: skipped file {name} (not YYYY-MM-DD.json)", file=out)
    if stats.rejected:
        print(f"prepare: rejects in {rejects_path}", file=out)
    print("prepare: " + orjson.dumps(stats.summary(elapsed_s)).decode(), file=out)


def prepare(raw: Path, out_dir: Path, timeline: Timeline, rejects_path: Path | None = None,
            run_lines: int = 250_000) -> PrepareStats:
    started = clock.monotonic()
    rejects_path = rejects_path or out_dir / REJECTS_FILE
    archive = is_archive(raw)
    files, skipped = ([], []) if archive else raw_files(raw)
    preparer = Preparer(out_dir, timeline, rejects_path, run_lines=run_lines)
    progress = Progress("prepare", total=None if archive else sum(p.stat().st_size for p in files), unit="bytes")
    if archive:
        skipped = add_archive(preparer, raw, progress)
    for path in files:
        with path.open("rb") as lines:
            preparer.add_lines(lines, path.name, progress)
    preparer.stats.skipped_files = skipped
    progress.close()
    stats = preparer.finish()
    report(stats, clock.monotonic() - started, rejects_path)
    return stats


def iso_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def add_timeline_arguments(parser: argparse.ArgumentParser, source: tuple[date, date] | None) -> None:
    if source:
        parser.add_argument("--source-start", type=iso_day, default=source[0], help="first source day (UTC)")
        parser.add_argument("--source-end", type=iso_day, default=source[1], help="last source day (UTC)")
    parser.add_argument("--target-start", type=iso_day, default=DEFAULT_TARGET_SPAN[0], help="first target day")
    parser.add_argument("--target-end", type=iso_day, default=DEFAULT_TARGET_SPAN[1], help="last target day")


def main(argv: Iterable[str] | None = None) -> int:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m ingestion.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, required=True,
                        help="folder of YYYY-MM-DD.json files, one such file, or the dataset's logs.tar.gz")
    parser.add_argument("--out", type=Path, default=settings.data_dir, help="data folder (default DATA_DIR)")
    parser.add_argument("--rejects", type=Path, help=f"rejects file (default <OUT>/{REJECTS_FILE})")
    parser.add_argument("--run-lines", type=int, default=250_000, help="records held in memory before a spill")
    add_timeline_arguments(parser, DEFAULT_SOURCE_SPAN)
    args = parser.parse_args(argv)
    try:
        timeline = Timeline(args.source_start, args.source_end, args.target_start, args.target_end,
                            ZoneInfo(settings.pipeline_tz))
        prepare(args.raw, args.out, timeline, args.rejects, args.run_lines)
    except (OSError, ValueError) as error:
        print(f"prepare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
