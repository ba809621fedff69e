"""A small progress reporter for the ingestion CLIs (stderr, so stdout stays machine-readable)."""
from __future__ import annotations

import sys
import time


class Progress:
    """Reports `done/total` with a rate: redrawn in place on a terminal, one line per interval otherwise."""

    def __init__(self, label: str, total: int | None = None, unit: str = "lines", stream=sys.stderr) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self.interactive = stream.isatty()
        self.interval = 0.5 if self.interactive else 10.0
        self.last_report = self.started
        self.reported = 0

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        if now - self.last_report >= self.interval:
            self.last_report = now
            self._report(now, end="\r" if self.interactive else "\n")

    def close(self) -> None:
        if self.done != self.reported or (self.interactive and self.done):
            self._report(time.monotonic(), end="\n")

    def _report(self, now: float, end: str) -> None:
        self.reported = self.done
        elapsed = max(now - self.started, 1e-9)
        share = f" ({100 * self.done / self.total:5.1f}%)" if self.total else ""
        of_total = f"/{self.total:,}" if self.total else ""
        self.stream.write(
            f"{self.label}: {self.done:,}{of_total} {self.unit}{share} {self.done / elapsed:,.0f} {self.unit}/s{end}"
        )
        self.stream.flush()
