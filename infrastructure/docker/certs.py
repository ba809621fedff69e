"""Expiry of the certificates the docker runner presents and trusts (DOCKER_CERT_DIR/<host>/{ca,cert}.pem).

dockerd refuses an expired client certificate and the runner an expired CA, so every step on that host
would fail; the preflight reports them while there is still time to run make-docker-certs.sh again.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

FAIL_WITHIN = timedelta(days=30)
WARN_WITHIN = timedelta(days=60)


@dataclass(frozen=True)
class Problem:
    path: Path
    failing: bool  # False: a warning
    detail: str

    def __str__(self) -> str:
        return f"{'FAIL' if self.failing else 'WARN'} {self.path}: {self.detail}"


def validity_problem(path: Path, not_before: datetime, not_after: datetime, now: datetime) -> Problem | None:
    """What is wrong with a certificate valid from not_before to not_after, seen at now (all aware UTC)."""
    if now < not_before:
        return Problem(path, True, f"not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    left = not_after - now
    if left <= timedelta(0):
        return Problem(path, True, f"expired on {not_after:%Y-%m-%d}")
    if left < WARN_WITHIN:
        return Problem(path, left < FAIL_WITHIN, f"expires on {not_after:%Y-%m-%d}, in {left.days} days")
    return None


def certificate_problems(paths: Iterable[Path], now: datetime) -> list[Problem]:
    """The problems of every PEM certificate at paths; an unreadable file is a failure."""
    problems = []
    for path in paths:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            problems.append(Problem(path, True, f"unreadable: {exc}"))
            continue
        problem = validity_problem(path, cert.not_valid_before_utc, cert.not_valid_after_utc, now)
        if problem:
            problems.append(problem)
    return problems
