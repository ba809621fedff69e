"""The service abstraction on throwaway processes, and how `make status` and `make up GROUP=` read groups."""
from __future__ import annotations

import socket
import sys
import time

import pytest

from infrastructure.local import processes, services
from infrastructure.local.processes import Service, StartError, is_local_address
from infrastructure.settings import load

pytestmark = pytest.mark.unit


def sleeper(tmp_path, probe=lambda: True, **fields) -> Service:
    return Service("sleeper", tmp_path / "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], probe,
                   expect="time.sleep", **fields)


def test_start_is_idempotent_and_stop_leaves_nothing(tmp_path):
    service = sleeper(tmp_path)
    pid = service.start()
    try:
        deadline = time.monotonic() + 10
        while service.pid() is None and time.monotonic() < deadline:  # until its exec, it shows our command line
            time.sleep(0.05)
        assert service.start() == pid and service.pid() == pid and service.healthy()
    finally:
        assert processes.stop([service], timeout=5) == ["sleeper"]
    assert not processes.pid_alive(pid) and not service.pid_file.exists()
    assert processes.stop([service]) == []


def test_a_reused_pid_is_not_the_service(tmp_path):
    service = sleeper(tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text("1")  # alive, but not our command line
    assert service.pid() is None and not service.healthy()


def test_a_process_that_exits_fails_the_wait_at_once_with_its_log(tmp_path):
    service = Service("crasher", tmp_path, [sys.executable, "-c", "print('no config'); raise SystemExit(3)"],
                      probe=lambda: False, expect="no config", timeout=60)
    service.start()
    with pytest.raises(StartError, match="(?s)crasher exited during start-up.*no config"):
        processes.wait_healthy([service])


def test_a_probe_that_raises_is_not_healthy(tmp_path):
    service = sleeper(tmp_path, probe=lambda: 1 / 0, timeout=1)
    service.start()
    try:
        assert not service.answers()
        with pytest.raises(StartError, match="sleeper not healthy after 1s"):
            processes.wait_healthy([service])
    finally:
        processes.stop([service], timeout=5)


def test_a_port_held_by_another_process_is_refused_before_anything_runs(tmp_path):
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        service = sleeper(tmp_path, address=foreign.getsockname(), prepare=lambda: 1 / 0)
        with pytest.raises(StartError, match=r"sleeper on 127\.0\.0\.1:\d+: the port is in use"):
            service.start()
    assert not service.pid_file.exists()


def row(group: str, health: str) -> dict:
    return {"service": f"{group}-x", "group": group, "address": "-", "pid": None, "health": health}


def test_status_fails_on_a_named_group_not_healthy_or_any_group_half_up():
    up, stopped = [row("platform", "healthy")], [row("airflow", "stopped"), row("airflow", "stopped")]
    assert services.status_ok(up + stopped, strict={"platform"})
    assert not services.status_ok(up + stopped, strict={"platform", "airflow"})
    assert not services.status_ok([row("platform", "stopped")], strict={"platform"})
    assert not services.status_ok(up + [row("airflow", "healthy"), row("airflow", "stopped")], strict={"platform"})
    assert not services.status_ok(up + [row("airflow", "UNHEALTHY")], strict={"platform"})


def test_groups_in_start_order_and_a_needed_group_added_only_when_it_does_not_serve(tmp_path, monkeypatch):
    assert [g.name for g in services.selected(["superset", "all"])] == ["platform", "monitoring", "airflow",
                                                                         "superset"]
    with pytest.raises(SystemExit, match="unknown group grafana"):
        services.selected(["grafana"])
    serving = []
    platform = services.Group("platform", lambda s: [sleeper(tmp_path, probe=lambda: bool(serving))], print, print)
    airflow = services.Group("airflow", lambda s: [], print, print, needs=("platform",))
    monkeypatch.setattr(services, "group", {"platform": platform, "airflow": airflow}.get)
    settings = load({"ENV_FILE": str(tmp_path / "none")})
    assert [g.name for g in services.selected(["airflow"], settings)] == ["platform", "airflow"]
    serving.append(True)  # e.g. the shared platform, seen from a test's private run dir
    assert [g.name for g in services.selected(["airflow"], settings)] == ["airflow"]


def test_only_an_address_of_this_machine_can_hold_a_port():
    assert is_local_address("127.0.0.1")
    assert not is_local_address("192.0.2.1")  # TEST-NET-1: never assigned to a host (RFC 5737)
