"""Provisioning guards that need no Superset: a foreign server on the port is never mistaken for ours."""
from __future__ import annotations

import pytest

from gold.superset.provision import service
from infrastructure.settings import load

pytestmark = pytest.mark.unit


def test_the_server_is_ours_only_by_its_pid_file_and_command_line_and_its_port_is_guarded(tmp_path):
    settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path), "SUPERSET_PORT": "18088"})
    server = service(settings)
    assert server.address == ("127.0.0.1", 18088)  # Service.start refuses it while another process holds it
    server.pid_file.parent.mkdir(parents=True)
    server.pid_file.write_text("1")  # init, alive but not gunicorn
    assert server.pid() is None
