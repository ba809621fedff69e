"""Provisioning guards that need no Superset: a foreign server on the port is never mistaken for ours."""
from __future__ import annotations

import socket

import pytest

from gold.superset.provision import service
from infrastructure.local.processes import StartError
from infrastructure.settings import load

pytestmark = pytest.mark.unit


def test_refuses_a_port_held_by_a_process_it_did_not_start(tmp_path):
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path),
                         "SUPERSET_PORT": str(foreign.getsockname()[1])})
        with pytest.raises(StartError, match="in use"):
            service(settings).start()
    assert not service(settings).pid_file.exists()


def test_a_pid_file_naming_another_program_is_not_our_server(tmp_path):
    settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path)})
    server = service(settings)
    server.pid_file.parent.mkdir(parents=True)
    server.pid_file.write_text("1")  # init, alive but not gunicorn
    assert server.pid() is None
