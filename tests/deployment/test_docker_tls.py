"""Docker API over TLS: the certificate script and the daemon configuration the hosts use."""
from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from infrastructure.settings import DEFAULTS, REPO_ROOT
from orchestration.config import TLS_PORT, dag_config
from orchestration.steps import HOSTS
from tests.deployment.artifacts import DOCKER_DAEMON_JSON

SCRIPT = REPO_ROOT / "infrastructure" / "deploy" / "make-docker-certs.sh"

pytestmark = pytest.mark.unit


def _verify(ca, cert, purpose) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-purpose", purpose, str(cert)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = tmp_path_factory.mktemp("certs")
    specs = [f"{host}=10.0.0.{i + 10}" for i, host in enumerate(HOSTS)]
    run = subprocess.run(["bash", str(SCRIPT), str(out), *specs], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out


def test_every_dag_host_gets_a_server_certificate_for_its_address(certs):
    for i, host in enumerate(HOSTS):
        cert = certs / "server" / host / "server-cert.pem"
        assert _verify(certs / "ca.pem", cert, "sslserver").returncode == 0
        assert _verify(certs / "ca.pem", cert, "sslclient").returncode != 0  # server-only
        san = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                             capture_output=True, text=True, check=True).stdout
        assert f"IP Address:10.0.0.{i + 10}" in san and f"DNS:{host}" in san


def test_airflow_client_files_match_the_runner_layout(certs):
    cfg = dag_config({"DOCKER_CERT_DIR": str(certs / "airflow")})
    for host in HOSTS:
        docker_host = cfg.docker_host(host)
        assert _verify(docker_host.ca_cert, docker_host.client_cert, "sslclient").returncode == 0
        assert _verify(docker_host.ca_cert, docker_host.client_cert, "sslserver").returncode != 0
        # As root the script hands the client key to the Airflow image's user, readable by it alone.
        key = (certs / "airflow" / host / "key.pem").stat()
        assert stat.S_IMODE(key.st_mode) == (0o400 if os.geteuid() == 0 else 0o600)
        assert os.geteuid() != 0 or key.st_uid == 10001


def test_daemon_config_requires_client_certificates_on_the_runner_port():
    daemon = json.loads(DOCKER_DAEMON_JSON.read_text())
    assert daemon["tls"] is True and daemon["tlsverify"] is True
    assert f"tcp://0.0.0.0:{TLS_PORT}" in daemon["hosts"]
    assert [daemon[k].rpartition("/")[2] for k in ("tlscacert", "tlscert", "tlskey")] == \
        ["ca.pem", "server-cert.pem", "server-key.pem"]
    assert all(DEFAULTS[f"DOCKER_URL_{host.upper()}"].endswith(f":{TLS_PORT}") for host in HOSTS)
