"""Docker API over TLS: the certificate script, the expiry check of the preflight and the daemon
configuration the hosts use."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from infrastructure.docker import preflight
from infrastructure.docker.certs import certificate_problems, validity_problem
from infrastructure.settings import DEFAULTS, REPO_ROOT
from orchestration.config import TLS_PORT, dag_config
from orchestration.steps import HOSTS
from tests.deployment.artifacts import DOCKER_DAEMON_JSON

SCRIPT = REPO_ROOT / "infrastructure" / "deploy" / "make-docker-certs.sh"

pytestmark = pytest.mark.unit


def _verify(ca, cert, purpose) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-purpose", purpose, str(cert)],
                          capture_output=True, text=True)


def _make_certs(out: Path, *specs: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(out), *specs], capture_output=True, text=True,
                          env={**os.environ, **env})


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _lifetime(cert: x509.Certificate) -> timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = tmp_path_factory.mktemp("certs")
    run = _make_certs(out, *[f"{host}=10.0.0.{i + 10}" for i, host in enumerate(HOSTS)])
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


def test_the_ca_signs_end_entities_only_and_outlives_them(certs):
    ca = _load(certs / "ca.pem")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert _lifetime(ca) == timedelta(days=3650)
    leaves = [certs / "server" / host / "server-cert.pem" for host in HOSTS] + [certs / "airflow/spark/cert.pem"]
    assert all(_load(leaf).not_valid_after_utc < ca.not_valid_after_utc for leaf in leaves)


@pytest.mark.parametrize("leaf, purpose", [("server/spark/server-cert.pem", ExtendedKeyUsageOID.SERVER_AUTH),
                                           ("airflow/spark/cert.pem", ExtendedKeyUsageOID.CLIENT_AUTH)])
def test_leaves_are_end_entities_for_one_purpose_and_at_most_a_year(certs, leaf, purpose):
    cert, ca = _load(certs / leaf), _load(certs / "ca.pem")
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [purpose]
    assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert _lifetime(cert) == timedelta(days=365)


def test_each_airflow_host_has_its_own_client_identity_for_every_docker_host(tmp_path):
    assert _make_certs(tmp_path, "webserver0=10.0.0.10").returncode == 0
    assert _make_certs(tmp_path, "spark=10.0.0.12").returncode == 0  # more Docker hosts later: same identity
    assert _make_certs(tmp_path, "spark=10.0.0.12", AIRFLOW_HOST="airflow-b").returncode == 0
    first, later = (tmp_path / "airflow" / host / "cert.pem" for host in ("webserver0", "spark"))
    other = tmp_path / "airflow-b" / "spark" / "cert.pem"
    assert first.read_bytes() == later.read_bytes() != other.read_bytes()
    assert (tmp_path / "airflow/spark/key.pem").read_bytes() != (tmp_path / "airflow-b/spark/key.pem").read_bytes()
    assert [_load(cert).subject.rfc4514_string() for cert in (first, other)] == \
        ["CN=tripclick-airflow-airflow", "CN=tripclick-airflow-airflow-b"]
    assert all(_verify(tmp_path / "ca.pem", cert, "sslclient").returncode == 0 for cert in (first, other))


@pytest.mark.parametrize("env, message", [
    ({"LEAF_DAYS": "398"}, "at most 397 days"),
    ({"LEAF_DAYS": "365", "CA_DAYS": "365"}, "must exceed LEAF_DAYS"),
    ({"AIRFLOW_HOST": "server"}, "AIRFLOW_HOST=server"),
    ({"AIRFLOW_HOST": "../etc"}, "AIRFLOW_HOST=../etc"),
])
def test_the_script_refuses_lifetimes_and_names_it_cannot_honour(tmp_path, env, message):
    run = _make_certs(tmp_path / "out", "spark=10.0.0.12", **env)
    assert run.returncode == 2 and message in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_ca_that_would_expire_before_a_new_leaf_is_refused(tmp_path):
    assert _make_certs(tmp_path, "spark=10.0.0.12", LEAF_DAYS="20", CA_DAYS="30").returncode == 0
    run = _make_certs(tmp_path, "webserver0=10.0.0.10", LEAF_DAYS="40")
    assert run.returncode == 2 and "expires within LEAF_DAYS=40 days" in run.stderr
    assert not (tmp_path / "server" / "webserver0").exists()


@pytest.mark.parametrize("days, expected", [(20, ["FAIL"]), (45, ["WARN"]), (365, [])])
def test_expiry_check_fails_under_30_days_and_warns_under_60(tmp_path, days, expected):
    assert _make_certs(tmp_path, "spark=10.0.0.12", LEAF_DAYS=str(days)).returncode == 0
    host = dag_config({"DOCKER_CERT_DIR": str(tmp_path / "airflow")}).docker_host("spark")
    problems = certificate_problems([Path(host.ca_cert), Path(host.client_cert)], datetime.now(timezone.utc))
    assert [str(problem).split()[0] for problem in problems] == expected
    assert all(problem.path.name == "cert.pem" for problem in problems)  # the CA lives ten years


def test_expiry_check_fails_outside_the_validity_and_on_unreadable_files(certs, tmp_path):
    cert = _load(certs / "ca.pem")
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert "not valid before" in validity_problem(Path("ca.pem"), start, end, start - timedelta(hours=1)).detail
    assert "expired" in validity_problem(Path("ca.pem"), start, end, end).detail
    garbage = tmp_path / "cert.pem"
    garbage.write_text("not a certificate")
    problems = certificate_problems([garbage, tmp_path / "missing.pem"], start)
    assert [(problem.failing, problem.detail.split(":")[0]) for problem in problems] == [(True, "unreadable")] * 2


@pytest.mark.parametrize("days, outcome", [(20, "FAIL"), (45, "WARN"), (365, "OK  ")])
def test_preflight_fails_on_a_failing_certificate_and_prints_a_warning(tmp_path, capsys, days, outcome):
    assert _make_certs(tmp_path, "spark=10.0.0.12", LEAF_DAYS=str(days)).returncode == 0
    host = dag_config({"DOCKER_CERT_DIR": str(tmp_path / "airflow")}).docker_host("spark")
    now = datetime.now(timezone.utc)
    exit_code = preflight.run([("certificate expiry spark", lambda: preflight.certificate_expiry(host, now))])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"preflight: {outcome} certificate expiry spark: ")
    assert exit_code == (1 if outcome == "FAIL" else 0)
    assert lines[-1] == f"preflight: checks=1 warned={int(outcome == 'WARN')} failed={int(outcome == 'FAIL')}"


def test_preflight_checks_certificate_expiry_only_with_tls():
    tls = [name for name, _ in preflight.docker_checks({"DOCKER_TLS": "1"})]
    plain = [name for name, _ in preflight.docker_checks(
        {"DOCKER_TLS": "0", **{f"DOCKER_URL_{host.upper()}": f"tcp://{host}:2375" for host in HOSTS}})]
    assert [name for name in tls if name.startswith("certificate expiry")] == \
        [f"certificate expiry {host}" for host in HOSTS]
    assert not [name for name in plain if name.startswith("certificate expiry")]
