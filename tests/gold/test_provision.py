"""Provisioning guards that need no Superset: a foreign server on the port is never mistaken for ours."""
from __future__ import annotations

import socket

import pytest

from gold.superset.provision import SupersetError, pid_file, running_pid, start_server
from infrastructure.settings import load

pytestmark = pytest.mark.unit


def test_refuses_a_port_held_by_a_process_it_did_not_start(tmp_path):
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path),
                         "SUPERSET_PORT": str(foreign.getsockname()[1])})
        with pytest.raises(SupersetError, match="in use"):
            start_server(settings)
    assert not pid_file(settings).exists()


def test_a_pid_file_naming_another_program_is_not_our_server(tmp_path):
    settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path)})
    pid_file(settings).parent.mkdir(parents=True)
    pid_file(settings).write_text("1")  # init, alive but not gunicorn
    assert running_pid(settings) is None
