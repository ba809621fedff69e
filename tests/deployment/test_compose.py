"""Compose files, checked statically with Debian's docker-compose 1.29.2 (no engine): schema,
interpolation, per-host port collisions, image pinning, and agreement with the DAG's docker runner.

Marked integration: they need the docker-compose tool that `make test` installs (setup.sh compose).
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from infrastructure.local import kafka as local_kafka
from orchestration.airflow_local import SERVICES as LOCAL_AIRFLOW_SERVICES
from infrastructure.settings import DEFAULTS, DEPLOYMENT_SECRETS, MAY_BE_UNUSED, REPO_ROOT, ConfigError, check, load
from infrastructure.docker.images import IMAGES
from orchestration import steps
from orchestration.config import SPARK_JOB_SECRETS
from tests.deployment.artifacts import (
    CHECKED_COMPOSE_FILES, COMPOSE_FILES, COMPOSE_OF_STEP_HOST, DOCKER_API_HOSTS, DOCKER_DAEMON_JSON, compose_config,
    compose_variables, deploy_env, deploy_env_file, documented_variables, dockerfile_copied_paths, dockerfile_env,
    module_file, mounted_packages, python_modules_in, resolved_compose,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def resolved() -> dict[str, dict]:
    return {path: resolved_compose(path) for path in CHECKED_COMPOSE_FILES}


def _images_built_here(resolved: dict[str, dict]) -> dict[str, str]:
    """image name (without tag) -> Dockerfile, for every image `make images` builds."""
    return {image.name: image.dockerfile for image in IMAGES}


def _published(port) -> int:
    """A resolved port: {'published': N, ...} or 'ADDRESS:N:TARGET'."""
    return int(port["published"]) if isinstance(port, dict) else int(str(port).split(":")[-2])


@pytest.mark.parametrize("path", sorted(CHECKED_COMPOSE_FILES))
def test_compose_file_passes_docker_compose_config(path):
    result = compose_config(path, None, "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", sorted(COMPOSE_FILES))
def test_every_project_image_carries_the_registry_prefix(path):
    text = (REPO_ROOT / path).read_text()
    refs = [line.split("image:", 1)[1].strip() for line in text.splitlines() if "tripclick-pipeline/" in line
            and "image:" in line]
    assert refs and all(ref.startswith("${IMAGE_REGISTRY-}tripclick-pipeline/") for ref in refs), refs


def test_a_missing_required_secret_stops_compose(tmp_path):
    env = {k: v for k, v in deploy_env().items() if k != "POSTGRES_SUPERUSER_PASSWORD"}
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    result = compose_config("gold/docker-compose.yaml", env_file)
    assert result.returncode != 0
    assert "POSTGRES_SUPERUSER_PASSWORD" in result.stderr


@pytest.mark.parametrize("path", sorted(CHECKED_COMPOSE_FILES))
def test_every_compose_variable_is_documented_in_env_example(path):
    documented = documented_variables()
    used = compose_variables(path)
    assert used, f"{path} interpolates nothing"
    assert used <= documented.keys(), f"not in .env.example: {sorted(used - documented.keys())}"
    assert all(documented[name] for name in used), [n for n in used if not documented[n]]


@pytest.mark.parametrize("path", sorted(CHECKED_COMPOSE_FILES))
def test_no_two_services_on_one_host_bind_the_same_port(path, resolved):
    daemon = json.loads(DOCKER_DAEMON_JSON.read_text())
    taken = {}
    if CHECKED_COMPOSE_FILES[path] in DOCKER_API_HOSTS:
        for address in daemon["hosts"]:
            if address.startswith("tcp://"):
                taken[int(address.rpartition(":")[2])] = "dockerd"
    for name, service in resolved[path]["services"].items():
        for port in service.get("ports", []):
            published = _published(port)
            assert published not in taken, f"{path}: {name} and {taken[published]} both bind {published}"
            taken[published] = name


@pytest.mark.parametrize("path", sorted(CHECKED_COMPOSE_FILES))
def test_services_pin_images_restart_and_limit_memory(path, resolved):
    for name, service in resolved[path]["services"].items():
        image, _, tag = service["image"].rpartition(":")
        assert image and tag and tag != "latest", f"{path}: {name} image {service['image']!r} is not pinned"
        assert service.get("restart") in ("unless-stopped", "no"), f"{path}: {name} has no restart policy"
        assert service.get("mem_limit"), f"{path}: {name} has no memory limit"
        long_running = service["restart"] == "unless-stopped"
        assert not long_running or "healthcheck" in service, f"{path}: {name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] in ("service_healthy", "service_completed_successfully"), \
                f"{path}: {name} -> {dependency} is not health-gated"


def test_every_image_the_dag_runs_is_built_by_a_compose_file_on_its_host(resolved):
    built = _images_built_here(resolved)
    tag = deploy_env()["IMAGE_TAG"]
    for step in steps.STEPS:
        host_compose = resolved[COMPOSE_OF_STEP_HOST[step.host]]
        host_images = {service["image"] for service in host_compose["services"].values()}
        assert step.image_ref("", tag) in host_images, f"{step.task_id}: {step.image_ref('', tag)} not on {step.host}"
        assert step.image in built, f"{step.task_id}: no Dockerfile builds {step.image}"


def test_every_module_the_dag_runs_is_inside_its_image(resolved):
    built = _images_built_here(resolved)
    for step in steps.STEPS:
        dockerfile = built[step.image]
        assert module_file(step.module), f"{step.task_id}: module {step.module} does not exist"
        top_package = step.module.split(".")[0]
        assert top_package in dockerfile_copied_paths(dockerfile), f"{dockerfile} does not copy {top_package}/"
        assert dockerfile_env(dockerfile)["PATH"].startswith("/opt/tripclick/.venv/bin:"), \
            f"{dockerfile}: `python` on PATH must be the locked pipeline environment"


def test_every_python_module_a_compose_service_runs_exists_in_its_image(resolved):
    """In the image, or mounted read-only from the host's checkout (the monitoring host's settings check)."""
    built = _images_built_here(resolved)
    for path, config in resolved.items():
        for name, service in config["services"].items():
            dockerfile = built.get(service["image"].rpartition(":")[0])
            for module in python_modules_in(service.get("command") or []):
                assert module_file(module), f"{path}: {name} runs missing module {module}"
                assert dockerfile, f"{path}: {name} runs Python in an image this repository does not build"
                available = dockerfile_copied_paths(dockerfile) | mounted_packages(service)
                assert module.split(".")[0] in available, (path, name, module)


def test_step_hosts_provide_the_dag_network_and_data_mount(resolved):
    network = deploy_env()["DOCKER_NETWORK"]
    for host, path in COMPOSE_OF_STEP_HOST.items():
        names = {spec.get("name") for spec in resolved[path].get("networks", {}).values()}
        assert network in names, f"{path} ({host}) does not provide network {network}"
    producer = resolved["ingestion/docker-compose.yaml"]["services"]["producer"]
    assert f"{deploy_env()['PRODUCER_DATA_DIR']}:/data:ro" in producer["volumes"]
    assert dockerfile_env("ingestion/Dockerfile")["DATA_DIR"] == "/data"


def test_containers_that_load_settings_get_every_secret_they_need(resolved):
    """Image ENV + the compose environment must satisfy infrastructure.settings in docker mode."""
    built = _images_built_here(resolved)
    checked = 0
    for path, config in resolved.items():
        for name, service in config["services"].items():
            dockerfile = built.get(service["image"].rpartition(":")[0])
            # Our Python entry points and the images' own CMDs (Superset's gunicorn reads the settings too).
            if not dockerfile or not (python_modules_in(service.get("command") or []) or "command" not in service):
                continue
            environ = {**dockerfile_env(dockerfile), **{k: str(v) for k, v in service["environment"].items()},
                       "ENV_FILE": "/nonexistent"}
            try:
                load(environ)
            except ConfigError as exc:
                pytest.fail(f"{path}: {name}: {exc}")
            checked += 1
    assert checked >= 4  # kafka-init, superset-init, superset, airflow-init


def _settings_used(path: str) -> set[str]:
    """The secrets, addresses and lake a compose file hands its containers (what put_secrets.py gives its host)."""
    return compose_variables(path) & MAY_BE_UNUSED


def _secret_stacks() -> list[str]:
    return sorted(path for path in CHECKED_COMPOSE_FILES if _settings_used(path) & set(DEPLOYMENT_SECRETS))


def test_the_stacks_with_secrets_are_the_five_that_run_services_with_them():
    """The Spark host's master and workers get the cluster's secret only (the DAG hands its jobs theirs); the web
    servers run nothing."""
    assert _secret_stacks() == ["gold/docker-compose.yaml", "messaging/kafka-compose.yaml",
                                "monitoring/docker-compose.yaml", "orchestration/docker-compose.yaml",
                                "processing/spark-compose.yaml"]
    assert _settings_used("processing/spark-compose.yaml") == {"SPARK_AUTH_SECRET"}


@pytest.mark.parametrize("path", _secret_stacks())
def test_a_stack_with_secrets_checks_them_before_any_other_service_starts(path, resolved):
    services = resolved[path]["services"]
    one_shot = services["settings-check"]
    assert one_shot["command"][-3:] == ["-m", "infrastructure.settings", "check"] and one_shot["restart"] == "no"
    assert not one_shot.get("depends_on")
    for name, service in services.items():
        if name != "settings-check":
            assert service["depends_on"]["settings-check"] == {"condition": "service_completed_successfully"}, name
    # It checks what this host is given and declares the rest unused (images' own lists do not apply here).
    env = one_shot["environment"]
    used = _settings_used(path)
    assert env["PLATFORM_MODE"] == "docker" and used <= env.keys(), sorted(used - env.keys())
    assert set(env["UNUSED_SETTINGS"].split()) == MAY_BE_UNUSED - used


@pytest.mark.parametrize("path", _secret_stacks())
def test_a_stacks_settings_check_passes_the_deployment_and_refuses_each_weak_secret(path, resolved, capsys):
    env = {**{key: str(value) for key, value in resolved[path]["services"]["settings-check"]["environment"].items()},
           "ENV_FILE": "/nonexistent"}
    assert check(env) == 0, capsys.readouterr().out
    for name in _settings_used(path) & set(DEPLOYMENT_SECRETS):
        capsys.readouterr()
        assert check({**env, name: "change-me"}) == 1
        assert f"settings check: {name} is a placeholder" in capsys.readouterr().out


def test_the_airflow_stack_refuses_a_plaintext_docker_api_without_the_opt_in(resolved, capsys):
    env = {**resolved["orchestration/docker-compose.yaml"]["services"]["settings-check"]["environment"],
           "ENV_FILE": "/nonexistent", "DOCKER_TLS": "0"}
    assert check(env) == 1 and "DOCKER_TLS_DISABLED_I_UNDERSTAND=yes" in capsys.readouterr().out
    assert check({**env, "DOCKER_TLS_DISABLED_I_UNDERSTAND": "yes"}) == 0
    scheduler = resolved["orchestration/docker-compose.yaml"]["services"]["airflow-scheduler"]["environment"]
    assert "DOCKER_TLS_DISABLED_I_UNDERSTAND" in scheduler  # the DAG refuses it at parse time too


def test_kafka_cluster_is_kraft_with_separate_controllers_and_durable_defaults(resolved):
    services = resolved["messaging/kafka-compose.yaml"]["services"]
    brokers = {n: s for n, s in services.items() if s["environment"].get("KAFKA_PROCESS_ROLES") == "broker"}
    controllers = {n: s for n, s in services.items() if s["environment"].get("KAFKA_PROCESS_ROLES") == "controller"}
    assert len(brokers) == 3 and len(controllers) == 3
    assert not any("ZOOKEEPER" in key for s in services.values() for key in s.get("environment", {}))
    host = deploy_env()["KAFKA_HOST"]
    assert sorted(s["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")[1] for s in brokers.values()) == \
        [f"EXTERNAL://{host}:{port}" for port in (9092, 9093, 9094)]
    for broker in brokers.values():
        env = broker["environment"]
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == (3, 2)
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    init = services["kafka-init"]
    assert init["command"] == ["python", "-m", "messaging.topics", "create"]


# Broker settings that describe the node or its network, not the cluster's policy.
_NODE_SPECIFIC = {"node.id", "process.roles", "controller.quorum.voters", "controller.listener.names", "log.dirs",
                  "listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name",
                  "num.network.threads", "num.io.threads", "background.threads"}


def test_compose_brokers_apply_the_broker_policy_of_local_mode(resolved, tmp_path):
    settings = load({"ENV_FILE": "/nonexistent", "RUN_DIR": str(tmp_path)})
    all_nodes = local_kafka.nodes(settings)
    local_broker = next(n for n in all_nodes if n.role == "broker")
    local = dict(line.split("=", 1) for line in local_kafka._properties(local_broker, all_nodes).splitlines())
    policy = {key: value for key, value in local.items() if key not in _NODE_SPECIFIC}
    assert len(policy) >= 10
    services = resolved["messaging/kafka-compose.yaml"]["services"]
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        env = services[name]["environment"]
        compose = {key: str(env.get("KAFKA_" + key.upper().replace(".", "_"))) for key in policy}
        assert compose == policy, name


def test_airflow_host_runs_the_same_airflow_services_as_local_mode(resolved):
    services = resolved["orchestration/docker-compose.yaml"]["services"].values()
    commands = {tuple(s["command"]) for s in services if s["restart"] == "unless-stopped"}
    assert commands == {("airflow", name) for name in LOCAL_AIRFLOW_SERVICES}


def test_airflow_containers_get_every_setting_the_dag_reads_at_parse_time(resolved):
    """orchestration/config.py reads these from the environment; DATA_DIR only serves the local runner."""
    config_py = (REPO_ROOT / "orchestration" / "config.py").read_text()
    read = {name for name in DEFAULTS if f'"{name}"' in config_py or f"'{name}'" in config_py}
    read |= {f"DOCKER_URL_{host.upper()}" for host in steps.HOSTS}
    read -= {"DATA_DIR", *SPARK_JOB_SECRETS}  # secrets: from Connections when a task runs
    assert len(read) >= 8
    for name in ("airflow-scheduler", "airflow-triggerer", "airflow-webserver"):
        env = resolved["orchestration/docker-compose.yaml"]["services"][name]["environment"]
        assert read <= env.keys(), f"{name} lacks {sorted(read - env.keys())}"


def test_only_the_service_that_runs_tasks_mounts_the_docker_client_certificates(resolved):
    """LocalExecutor runs every task, and so every Docker API call, inside the scheduler: only it holds the keys
    (a Celery worker would have to mount them too, and this test would have to name it)."""
    services = resolved["orchestration/docker-compose.yaml"]["services"]
    cert_dir = deploy_env()["DOCKER_CERT_DIR"]
    airflow = {name: service for name, service in services.items() if name.startswith("airflow-")}
    assert {service["environment"]["AIRFLOW__CORE__EXECUTOR"] for service in airflow.values()} == {"LocalExecutor"}
    mounts = {name: [volume for volume in service.get("volumes", []) if volume.startswith(f"{cert_dir}:")]
              for name, service in services.items()}
    assert {name: found for name, found in mounts.items() if found} == \
        {"airflow-scheduler": [f"{cert_dir}:{cert_dir}:ro"]}


def test_every_published_port_binds_the_publish_address_only(resolved):
    """A port published without an address listens on every interface of the host, VPN or not."""
    address = deploy_env()["PUBLISH_ADDRESS"]
    ports = [(path, name, str(port)) for path, config in sorted(resolved.items())
             for name, service in config["services"].items() for port in service.get("ports", [])]
    assert ports and [p for p in ports if not p[2].startswith(f"{address}:")] == []


def test_published_ports_follow_the_seed_table(resolved):
    def published(path, service):
        return {_published(p) for p in resolved[path]["services"][service].get("ports", [])}
    example = deploy_env()
    assert published("messaging/kafka-compose.yaml", "kafka-ui") == {8080}
    assert published("gold/docker-compose.yaml", "superset") == {int(example["SUPERSET_PORT"])} == {8088}
    assert published("orchestration/docker-compose.yaml", "airflow-webserver") == {int(example["AIRFLOW_PORT"])}
    assert published("gold/docker-compose.yaml", "postgres") == {int(example["POSTGRES_PORT"])}


ALERT_CONNECTIONS_SCRIPT = """
import json
from airflow.hooks.base import BaseHook
from airflow.providers.smtp.hooks.smtp import SmtpHook
from orchestration.alerts import EMAIL_CONN_ID, SLACK_CONN_ID
smtp = SmtpHook(EMAIL_CONN_ID)
smtp.smtp_connection = BaseHook.get_connection(EMAIL_CONN_ID)
print(json.dumps({"host": smtp.host, "port": smtp.port, "ssl": smtp.use_ssl, "starttls": smtp.smtp_starttls,
                  "from": smtp.from_email, "to": smtp.conn.extra_dejson["to"],
                  "webhook": BaseHook.get_connection(SLACK_CONN_ID).password}))
"""


def test_only_the_scheduler_gets_the_alert_connections_and_airflow_reads_them_right(resolved, tmp_path):
    services = resolved["orchestration/docker-compose.yaml"]["services"]
    conns = {key: value for key, value in services["airflow-scheduler"]["environment"].items()
             if key.startswith("AIRFLOW_CONN_")}
    assert sorted(conns) == ["AIRFLOW_CONN_TRIPCLICK_ALERT_EMAIL", "AIRFLOW_CONN_TRIPCLICK_ALERT_SLACK"]
    assert not [name for name, service in services.items() if name != "airflow-scheduler"
                and any(key.startswith("AIRFLOW_CONN_") for key in service["environment"])]
    run = subprocess.run([str(REPO_ROOT / ".venvs" / "airflow" / "bin" / "python"), "-c", ALERT_CONNECTIONS_SCRIPT],
                         env={"PATH": os.environ["PATH"], "AIRFLOW_HOME": str(tmp_path), **conns},
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    example = deploy_env()
    host, _, port = example["ALERT_SMTP_SMARTHOST"].rpartition(":")
    # A deployment's SMTP server is not on loopback: STARTTLS on a plain connection, never implicit TLS.
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {
        "host": host, "port": int(port), "ssl": False, "starttls": True, "from": example["ALERT_EMAIL_FROM"],
        "to": example["ALERT_EMAIL_TO"], "webhook": example["ALERT_SLACK_WEBHOOK_URL"]}


def test_monitoring_runs_the_project_image_unless_the_upstream_override_is_given(resolved):
    """Every monitoring service but Grafana on tripclick-pipeline/monitoring; with monitoring/upstream-images.yaml
    each on its upstream image, named by a documented *_IMAGE variable. The settings check runs on python-base."""
    own = {name: service["image"] for name, service in resolved["monitoring/docker-compose.yaml"]["services"].items()}
    assert own.pop("grafana").startswith("grafana/")
    assert own.pop("settings-check") == f"tripclick-pipeline/python-base:{deploy_env()['IMAGE_TAG']}"
    assert set(own.values()) == {f"tripclick-pipeline/monitoring:{deploy_env()['IMAGE_TAG']}"}
    files = ["-f", "monitoring/docker-compose.yaml", "-f", "monitoring/upstream-images.yaml"]
    run = subprocess.run(["docker-compose", *files, "--env-file", str(deploy_env_file()), "config"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    upstream = yaml.safe_load(run.stdout)["services"]
    assert [name for name in own if upstream[name]["image"].startswith("tripclick-pipeline/")] == []
    assert compose_variables("monitoring/upstream-images.yaml") <= documented_variables().keys()
