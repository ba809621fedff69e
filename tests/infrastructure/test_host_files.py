"""What reaches each host: the .env merge its bootstrap runs and the secrets put_secrets.py uploads
(least privilege per host), with the AWS CLI replaced by a recorder."""
from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys

import pytest

from infrastructure.settings import REPO_ROOT, read_env_file
from tests.infrastructure.terraform_model import TERRAFORM

pytestmark = pytest.mark.unit
DOCKER_TEMPLATE = REPO_ROOT / ".env.docker.example"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


merge_env = _load(TERRAFORM / "modules/host/files/merge_env.py", "merge_env")
put_secrets = _load(TERRAFORM / "put_secrets.py", "put_secrets")

LAYOUT = {  # the shape of `terraform output -json secrets_layout`
    "region": "us-east-1",
    "parameter_prefix": "/tripclick",
    "hosts": {
        "webserver0": {"role": "webserver", "compose_file": "ingestion/docker-compose.yaml", "docker_api": True,
                       "docker_client_hosts": []},
        "kafka1": {"role": "kafka", "compose_file": "messaging/kafka-compose.yaml", "docker_api": False,
                   "docker_client_hosts": []},
        "spark": {"role": "spark", "compose_file": "processing/spark-compose.yaml", "docker_api": True,
                  "docker_client_hosts": []},
        "gold": {"role": "gold", "compose_file": "gold/docker-compose.yaml", "docker_api": False,
                 "docker_client_hosts": []},
        "airflow": {"role": "airflow", "compose_file": "orchestration/docker-compose.yaml", "docker_api": False,
                    "docker_client_hosts": ["webserver0"]},
    },
}


def test_merge_keeps_the_template_and_lets_later_non_empty_values_win():
    template = "# comment\nA=1\nB=\nC=3\n"
    merged = merge_env.merge(template, {"B": "secret", "C": ""}, {"A": "10.0.0.1", "D": "new"})
    assert merged.splitlines() == ["# comment", "A=10.0.0.1", "B=secret", "C=3", "",
                                   "# --- Set for this host (not in the template) ---", "D=new"]


def test_a_host_env_is_complete_for_docker_mode(tmp_path):
    """The template, generated secrets, then Terraform's values: every address filled, no secret empty."""
    from infrastructure.docker.secrets import fill
    from infrastructure.settings import ConfigError, resolve

    secrets, _ = fill(DOCKER_TEMPLATE.read_text())
    terraform = {"PUBLISH_ADDRESS": "10.20.1.50", "KAFKA_HOST": "10.20.1.20", "POSTGRES_HOST": "10.20.1.40",
                 "KAFKA_BROKERS": "10.20.1.20:9092,10.20.2.21:9093,10.20.3.22:9094",
                 "S3_ENDPOINT": "https://s3.us-east-1.amazonaws.com", "LAKE_ROOT": "s3a://tripclick-lake/",
                 "DOCKER_URL_WEBSERVER0": "tcp://10.20.1.10:2376", "DOCKER_URL_WEBSERVER1": "tcp://10.20.2.11:2376",
                 "DOCKER_URL_SPARK": "tcp://10.20.1.30:2376", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                 "AWS_SECRET_ACCESS_KEY": "example-secret"}
    path = tmp_path / ".env"
    path.write_text(merge_env.merge(DOCKER_TEMPLATE.read_text(), merge_env.parse(secrets), terraform))
    try:
        merged = resolve({"ENV_FILE": str(path)})
    except ConfigError as error:  # the message names every variable docker mode refuses
        pytest.fail(str(error))
    assert merged["KAFKA_BROKERS"] == terraform["KAFKA_BROKERS"]
    assert read_env_file(path)["POSTGRES_PASSWORD"]


def test_each_host_gets_only_the_secrets_its_compose_file_uses(tmp_path):
    env = {"POSTGRES_PASSWORD": "pg", "POSTGRES_SUPERUSER_PASSWORD": "root", "POSTGRES_RO_USER": "superset_ro",
           "POSTGRES_RO_PASSWORD": "ro", "KAFKA_UI_PASSWORD": "ui", "AWS_SECRET_ACCESS_KEY": "s3",
           "AIRFLOW_FERNET_KEY": "fernet", "SPARK_AUTH_SECRET": "spark", "KAFKA_TOPIC": "tripclick_raw_logs",
           "PIPELINE_TZ": "Asia/Seoul"}
    certs = tmp_path / "certs"
    for side, host, files in (("server", "webserver0", put_secrets.SERVER_FILES),
                              ("server", "spark", put_secrets.SERVER_FILES),
                              ("airflow", "webserver0", put_secrets.CLIENT_FILES)):
        (certs / side / host).mkdir(parents=True)
        for file in files:
            (certs / side / host / file).write_text(f"{side}-{file}")
    params = put_secrets.parameters(LAYOUT, env, certs, None)

    def keys(host):
        return {line.partition("=")[0] for line in params[f"/tripclick/{host}/env"].splitlines()}

    assert keys("webserver0") == {"KAFKA_TOPIC", "PIPELINE_TZ"}  # producers: no secret at all
    assert keys("kafka1") == {"KAFKA_TOPIC", "KAFKA_UI_PASSWORD"}
    assert keys("spark") == {"SPARK_AUTH_SECRET"}  # the cluster's secret, for its master and workers
    assert {"POSTGRES_SUPERUSER_PASSWORD", "POSTGRES_PASSWORD", "POSTGRES_RO_PASSWORD"} <= keys("gold")
    assert "AWS_SECRET_ACCESS_KEY" not in keys("gold")
    assert "SPARK_AUTH_SECRET" not in keys("gold")
    # The Spark jobs' secrets: the docker runner hands them over from the Connections provisioned there.
    assert {"AWS_SECRET_ACCESS_KEY", "SPARK_AUTH_SECRET", "AIRFLOW_FERNET_KEY",
            "POSTGRES_RO_PASSWORD"} <= keys("airflow")
    assert "POSTGRES_SUPERUSER_PASSWORD" not in keys("airflow")
    assert params["/tripclick/webserver0/docker-tls/server-key.pem"] == "server-server-key.pem"
    assert params["/tripclick/airflow/docker-client/webserver0/key.pem"] == "airflow-key.pem"
    assert not any(name.startswith("/tripclick/kafka1/docker") for name in params)


def test_values_go_to_the_aws_cli_in_a_file_never_on_its_command_line(tmp_path, monkeypatch):
    recorder = tmp_path / "bin" / "aws"
    recorder.parent.mkdir()
    log = tmp_path / "calls.jsonl"
    recorder.write_text(f"""#!{sys.executable}
import json, sys
request = sys.argv[sys.argv.index("--cli-input-json") + 1].removeprefix("file://")
with open({str(log)!r}, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "request": json.load(open(request))}}) + "\\n")
""")
    recorder.chmod(recorder.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{recorder.parent}{os.pathsep}{os.environ['PATH']}")
    layout = {**LAYOUT, "hosts": {"gold": LAYOUT["hosts"]["gold"]}}
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    (tmp_path / "deploy.env").write_text("POSTGRES_PASSWORD=very-secret\n")
    assert put_secrets.main(["--layout", str(tmp_path / "layout.json"), "--env", str(tmp_path / "deploy.env")]) == 0
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert "very-secret" not in " ".join(call["argv"])
    assert call["request"] == {"Name": "/tripclick/gold/env", "Value": "POSTGRES_PASSWORD=very-secret\n",
                               "Type": "SecureString", "Overwrite": True}
    assert call["argv"][:4] == ["ssm", "put-parameter", "--region", "us-east-1"]
