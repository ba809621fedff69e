"""Background processes with PID files, and waiting on real health checks."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from collections.abc import Callable


class StartError(RuntimeError):
    """A service did not become healthy; the message names the service and its port."""


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
    """The live PID in pid_file; with `expect`, only if that text is in its command line (PID reuse)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
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


def start_daemon(argv: list[str], pid_file: Path, log_file: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> int:
    """Start argv detached (own session, output to log_file) unless pid_file names a live process."""
    running = read_pid(pid_file)
    if running:
        return running
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
    pid_file.write_text(str(proc.pid))
    return proc.pid


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


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], what: str, timeout: float, pid_file: Path | None = None,
               log_file: Path | None = None) -> None:
    """Poll check() until true; fail fast if the process died; name `what` (service and port) on failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # a health probe that errors is simply not healthy yet
            pass
        if pid_file is not None and read_pid(pid_file) is None:
            raise StartError(f"{what} exited during start-up{_log_hint(log_file)}")
        time.sleep(0.5)
    raise StartError(f"{what} not healthy after {timeout:.0f}s{_log_hint(log_file)}")


def _log_hint(log_file: Path | None) -> str:
    if log_file is None or not log_file.exists():
        return ""
    tail = log_file.read_text(errors="replace").splitlines()[-5:]
    return f"; see {log_file}; last lines:\n  " + "\n  ".join(tail)
