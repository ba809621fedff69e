"""The hosts' first boot (modules/host/files/bootstrap.sh) run here against fake aws, git, docker,
docker-compose and systemctl: the .env it writes, the certificates it installs, the compose commands
it runs per role, and a release re-run. Real bash, real merge_env.py, real repository files."""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess

import pytest

from infrastructure.settings import REPO_ROOT, read_env_file
from tests.infrastructure.terraform_model import TERRAFORM

pytestmark = pytest.mark.unit
FILES = TERRAFORM / "modules/host/files"

# Fake commands, in bash (a Python start per call would dominate the runtime). Each logs its arguments
# to calls.log, one call per line, fields separated by the unit separator.
FAKES = {
    # aws ssm get-parameter ... --name NAME: the file params/NAME, or the CLI's "not found" exit.
    "aws": '''while [ "$1" != --name ]; do shift; done
[ -f "$FAKE_PARAMS$2" ] || exit 254
cat "$FAKE_PARAMS$2"''',
    # git clone ... DIR: the files bootstrap.sh itself reads from the release checkout.
    "git": '''[ "$1" = clone ] || exit 0
target=${!#}
mkdir -p "$target/.git" "$target/infrastructure"
cp "$FAKE_REPO/.env.docker.example" "$target/"
cp -r "$FAKE_REPO/infrastructure/deploy" "$target/infrastructure/"''',
    "docker": '[ "$1 $2" != "network inspect" ]',
    "docker-compose": "true",
    "systemctl": '[ "$1" != is-active ]',
    "chown": "true",
}


@pytest.fixture
def host(tmp_path):
    """run(config, params, terraform_env, *args) -> (completed process, calls per fake command)."""
    bin_dir, params = tmp_path / "bin", tmp_path / "params"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        script = bin_dir / name
        log = f"(IFS=$'\\x1f'; printf '%s\\n' \"{name}${{IFS}}$*\") >> '{tmp_path}/calls.log'"
        script.write_text(f"#!/usr/bin/env bash\n{log}\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    boot, app, etc = tmp_path / "boot", tmp_path / "app", tmp_path / "etc"
    boot.mkdir()
    for name in ("bootstrap.sh", "merge_env.py"):
        shutil.copy(FILES / name, boot / name)

    def run(config: dict, parameters: dict[str, str], terraform_env: dict[str, str], *args: str):
        base = {"region": "us-east-1", "parameter_prefix": "/tripclick", "source_repository": "https://example.invalid/repo.git",
                "source_ref": "v0.1.0", "compose_override": False, "compose_services": [], "run_once": [],
                "run_once_waits_for": [], "docker_api": False, "docker_client_hosts": [], "wait_for": [],
                "session_manager": False}
        (boot / "bootstrap.json").write_text(json.dumps({**base, **config}))
        (boot / "terraform.env").write_text("".join(f"{k}={v}\n" for k, v in terraform_env.items()))
        (boot / "compose.override.yaml").write_text("services: {}\n")
        for name, value in parameters.items():
            path = params / name.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_PARAMS": str(params),
               "FAKE_REPO": str(REPO_ROOT), "TRIPCLICK_BOOT_DIR": str(boot), "TRIPCLICK_APP_DIR": str(app),
               "TRIPCLICK_ETC_DIR": str(etc), "PARAM_WAIT_SECONDS": "0"}
        (tmp_path / "calls.log").unlink(missing_ok=True)
        result = subprocess.run(["bash", str(boot / "bootstrap.sh"), *args], env=env, capture_output=True,
                                text=True, timeout=60)
        log = tmp_path / "calls.log"
        lines = log.read_text().splitlines() if log.exists() else []
        calls = [(fields[0], fields[1:]) for fields in (line.split("\x1f") for line in lines)]
        return result, calls

    run.app, run.etc, run.boot = app, etc, boot
    return run


@pytest.fixture
def listening():
    """An address:port on loopback that accepts connections (what bootstrap waits for)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def _compose(calls):
    return [args for name, args in calls if name == "docker-compose"]


def test_kafka_host_starts_its_nodes_with_the_override_and_creates_topics(host, listening):
    config = {"host": "kafka1", "role": "kafka", "compose_file": "messaging/kafka-compose.yaml",
              "compose_override": True, "compose_services": ["kafka-controller-1", "kafka-1", "kafka-ui"],
              "run_once": ["kafka-init"], "run_once_waits_for": [listening]}
    result, calls = host(config, {"/tripclick/kafka1/env": "KAFKA_UI_PASSWORD=ui-secret\nKAFKA_CLUSTER_ID=abc\n"},
                         {"KAFKA_HOST": "10.20.1.20", "IMAGE_TAG": "0.1.0", "PUBLISH_ADDRESS": "10.20.1.20"})
    assert result.returncode == 0, result.stdout + result.stderr
    env = read_env_file(host.app / ".env")
    assert (env["KAFKA_HOST"], env["KAFKA_UI_PASSWORD"], env["KAFKA_CLUSTER_ID"]) == ("10.20.1.20", "ui-secret", "abc")
    assert env["KAFKA_TOPIC"] == "tripclick_raw_logs"  # the rest from the release's template
    assert stat.S_IMODE((host.app / ".env").stat().st_mode) == 0o600
    files = ["--env-file", ".env", "-f", "messaging/kafka-compose.yaml", "-f", str(host.boot / "compose.override.yaml")]
    assert _compose(calls) == [
        [*files, "pull", "kafka-controller-1", "kafka-1", "kafka-ui"],
        [*files, "up", "-d", "--no-deps", "kafka-controller-1", "kafka-1", "kafka-ui"],
        [*files, "run", "--rm", "--no-deps", "kafka-init"],
    ]
    assert ["clone", "--quiet", "--depth", "1", "--branch", "v0.1.0", "https://example.invalid/repo.git",
            str(host.app)] in [args for name, args in calls if name == "git"]


def test_web_server_gets_the_tls_docker_api_its_network_and_the_producer_image(host):
    tls = {f"/tripclick/webserver0/docker-tls/{f}": f"PEM {f}" for f in ("ca.pem", "server-cert.pem", "server-key.pem")}
    config = {"host": "webserver0", "role": "webserver", "compose_file": "ingestion/docker-compose.yaml",
              "docker_api": True}
    data_dir = host.boot.parent / "srv-data"
    result, calls = host(config, {"/tripclick/webserver0/env": "PIPELINE_TZ=Asia/Seoul\n", **tls},
                         {"PRODUCER_DATA_DIR": str(data_dir), "IMAGE_TAG": "0.1.0"})
    assert result.returncode == 0, result.stdout + result.stderr
    key = host.etc / "docker/tls/server-key.pem"
    assert key.read_text().strip() == "PEM server-key.pem" and stat.S_IMODE(key.stat().st_mode) == 0o600
    daemon = REPO_ROOT / "infrastructure/deploy/docker-daemon.json"
    assert (host.etc / "docker/daemon.json").read_text() == daemon.read_text()
    assert "ExecStart=/usr/bin/dockerd" in (host.etc / "systemd/system/docker.service.d/tls.conf").read_text()
    assert ["restart", "docker"] in [args for name, args in calls if name == "systemctl"]
    assert ["network", "create", "tripclick"] in [args for name, args in calls if name == "docker"]
    assert data_dir.is_dir()
    assert _compose(calls) == [["--env-file", ".env", "-f", "ingestion/docker-compose.yaml", "--profile", "manual",
                                "pull", "producer"]]


def test_airflow_waits_for_postgres_and_installs_client_certificates(host, listening):
    certs = {f"/tripclick/airflow/docker-client/{h}/{f}": f"{h} {f}"
             for h in ("webserver0", "spark") for f in ("ca.pem", "cert.pem", "key.pem")}
    cert_dir = host.boot.parent / "docker-certs"
    config = {"host": "airflow", "role": "airflow", "compose_file": "orchestration/docker-compose.yaml",
              "docker_client_hosts": ["webserver0", "spark"], "wait_for": [listening]}
    result, calls = host(config, {"/tripclick/airflow/env": "AIRFLOW_FERNET_KEY=f\n", **certs},
                         {"DOCKER_CERT_DIR": str(cert_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    key = cert_dir / "spark/key.pem"
    assert key.read_text().strip() == "spark key.pem" and stat.S_IMODE(key.stat().st_mode) == 0o400
    assert ["-R", "10001:10001", str(cert_dir)] in [args for name, args in calls if name == "chown"]
    assert _compose(calls)[-1] == ["--env-file", ".env", "-f", "orchestration/docker-compose.yaml", "up", "-d"]


def test_a_release_rerun_checks_out_the_tag_and_moves_image_tag(host):
    config = {"host": "gold", "role": "gold", "compose_file": "gold/docker-compose.yaml"}
    params = {"/tripclick/gold/env": "POSTGRES_PASSWORD=pg\n"}
    first, _ = host(config, params, {"IMAGE_TAG": "0.1.0"})
    assert first.returncode == 0, first.stderr
    again, calls = host(config, params, {"IMAGE_TAG": "0.1.0"}, "v0.2.0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_env_file(host.app / ".env")["IMAGE_TAG"] == "0.2.0"
    assert (host.boot / "ref").read_text().strip() == "v0.2.0"
    assert ["-C", str(host.app), "fetch", "--quiet", "--depth", "1", "origin", "v0.2.0"] in \
        [args for name, args in calls if name == "git"]


def test_a_missing_secret_stops_the_boot_with_its_name(host):
    config = {"host": "gold", "role": "gold", "compose_file": "gold/docker-compose.yaml"}
    result, calls = host(config, {}, {})
    assert result.returncode != 0
    assert "/tripclick/gold/env not found" in result.stdout + result.stderr
    assert _compose(calls) == []
