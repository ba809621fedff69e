"""One way to run a local service: a background process with a PID file, and waiting on its real health.

A `Service` is what Kafka nodes, PostgreSQL, the S3 API server, Airflow, Superset and docker mode's test
engine have in common: a command, a home folder (PID file, log), a health probe and the word of its
command line that proves a PID still names it. The groups that start and stop together are in
`infrastructure.local.services`.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class StartError(RuntimeError):
    """A service did not become healthy; the message names the service and its port."""


@dataclass(frozen=True)
class Service:
    name: str
    home: Path
    command: Sequence[str]  # run detached in its own session, output to log_file
    probe: Callable[[], bool]  # does it really serve (a port answers, a health endpoint says so)
    expect: str  # in the command line of the PID file's process, else that PID was reused by another program
    address: tuple[str, int] | None = None  # where it listens, if anywhere
    pid_name: str = "pid"
    log_name: str = "server.log"
    timeout: float = 60.0  # to become healthy after a start
    env: Callable[[], Mapping[str, str]] | None = None  # built at start: it may create the service's secrets
    cwd: Path | None = None
    prepare: Callable[[], object] | None = None  # before each start: config files, a first run's format
    # A server that daemonizes itself (PostgreSQL through pg_ctl) replaces `command` and the stop signal.
    launch: Callable[[], object] | None = None
    halt: Callable[[], object] | None = None

    @property
    def pid_file(self) -> Path:
        return self.home / self.pid_name

    @property
    def log_file(self) -> Path:
        return self.home / self.log_name

    @property
    def where(self) -> str:
        return f"{self.name} on {self.address[0]}:{self.address[1]}" if self.address else self.name

    def pid(self) -> int | None:
        return read_pid(self.pid_file, self.expect)

    def answers(self) -> bool:
        try:
            return bool(self.probe())
        except Exception:  # a probe that errors is simply not healthy (yet)
            return False

    def healthy(self) -> bool:
        return self.pid() is not None and self.answers()

    def start(self) -> int | None:
        """Start unless running; refuses a port held by a process this home did not start (its health
        probe would answer for us). Returns the PID."""
        running = self.pid()
        if running:
            return running
        if self.address and is_local_address(self.address[0]) and port_open(*self.address):
            raise StartError(f"{self.where}: the port is in use by a process this run dir did not start; "
                             f"stop it or configure another port")
        self.home.mkdir(parents=True, exist_ok=True)
        if self.prepare:
            self.prepare()
        if self.launch:
            self.launch()
            return self.pid()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(list(self.command), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env() if self.env else None, cwd=self.cwd,
                                    start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        tail = self.log_file.read_text(errors="replace").splitlines()[-5:]
        return f"; see {self.log_file}; last lines:\n  " + "\n  ".join(tail)


def wait_healthy(services: Sequence[Service]) -> None:
    """Poll every probe until all answer; fail as soon as one's process exits or its timeout passes."""
    began = time.monotonic()
    waiting = list(services)
    while waiting:
        waiting = [s for s in waiting if not s.answers()]
        for service in waiting:
            # Alive is enough: until its exec the new process still shows our own command line.
            if read_pid(service.pid_file) is None:
                raise StartError(f"{service.where} exited during start-up{service.log_tail()}")
            if time.monotonic() - began > service.timeout:
                raise StartError(f"{service.where} not healthy after {service.timeout:.0f}s{service.log_tail()}")
        if waiting:
            time.sleep(0.5)


def stop(services: Sequence[Service], timeout: float = 30.0) -> list[str]:
    """Stop the running ones together (SIGTERM to each process group, SIGKILL after timeout); remove
    stale PID files. Returns the names of those that were running."""
    running = [s for s in services if s.pid() is not None]
    for service in running:
        if service.halt:
            service.halt()
    stop_pid_files([s.pid_file for s in running if not s.halt], timeout)
    for service in services:
        if not service.halt:  # a self-daemonizing server owns its PID file
            service.pid_file.unlink(missing_ok=True)
    return [s.name for s in running]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def read_pid(pid_file: Path, expect: str | None = None) -> int | None:
    """The live PID on pid_file's first line (PostgreSQL's postmaster.pid has more lines); with `expect`,
    only if that text is in its command line (PID reuse)."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    if expect is not None:
        try:
            if expect.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        except OSError:
            return None
    return pid


def stop_pid_files(pid_files: list[Path], timeout: float = 30.0) -> list[Path]:
    """SIGTERM every process group named by pid_files at once, SIGKILL what is left after timeout.

    Returns the PID files whose process was running.
    """
    running = {}
    for pid_file in pid_files:
        pid = read_pid(pid_file)
        pid_file.unlink(missing_ok=True)
        if pid is not None:
            running[pid_file] = pid
            _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in running.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in running.values():
        if pid_alive(pid):
            _signal_group(pid, signal.SIGKILL)
    while any(pid_alive(p) for p in running.values()):
        time.sleep(0.1)
    return list(running)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def is_local_address(host: str) -> bool:
    """Whether `host` is an address of this machine. Only then can a process here hold its port: a bridge
    address the service's own prepare step creates is not there yet, and a connection to an address that is
    not routed locally may be answered by whatever the network puts in between (seen on this machine)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
