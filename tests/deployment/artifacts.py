"""The deployment artifacts under test and small readers for them (no Docker engine needed).

One compose file is one host of the deployment (infrastructure/README.md); the DAG's step hosts
map onto them through COMPOSE_OF_STEP_HOST.
"""
from __future__ import annotations

import functools
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import yaml

from infrastructure.settings import REPO_ROOT, read_env_file

ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKER_ENV_TEMPLATE = REPO_ROOT / ".env.docker.example"
# What a deployment fills into the docker-mode template besides the generated secrets.
DEPLOYMENT_VALUES = {
    "PUBLISH_ADDRESS": "10.0.2.10", "KAFKA_HOST": "kafka.internal",
    "KAFKA_BROKERS": "kafka.internal:9092,kafka.internal:9093,kafka.internal:9094",
    "POSTGRES_HOST": "gold.internal", "AWS_ACCESS_KEY_ID": "deploy-access-key",
    "AWS_SECRET_ACCESS_KEY": "deploy-secret-key", "DOCKER_URL_WEBSERVER0": "tcp://webserver0.internal:2376",
    "DOCKER_URL_WEBSERVER1": "tcp://webserver1.internal:2376", "DOCKER_URL_SPARK": "tcp://spark.internal:2376",
    "AIRFLOW_PUBLIC_URL": "https://airflow.internal", "ALERT_SMTP_SMARTHOST": "smtp.internal:587",
    "ALERT_EMAIL_FROM": "alerts@tripclick.internal", "ALERT_EMAIL_TO": "oncall@tripclick.internal",
    "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.internal/services/T0/B0/deploy",
    "PUSHGATEWAY_URL": "http://monitoring.internal:9091", "STATSD_HOST": "monitoring.internal",
}
COMPOSE_FILES = {  # compose file -> the host it deploys
    "messaging/kafka-compose.yaml": "kafka",
    "processing/spark-compose.yaml": "spark",
    "gold/docker-compose.yaml": "gold",
    "ingestion/docker-compose.yaml": "webserver",
    "orchestration/docker-compose.yaml": "airflow",
}
# Every compose file the static checks read: the hosts above (which Terraform creates from COMPOSE_FILES) and the
# monitoring host, deployed by hand so far.
CHECKED_COMPOSE_FILES = {**COMPOSE_FILES, "monitoring/docker-compose.yaml": "monitoring"}
DOCKERFILES = ("infrastructure/docker/python-base.Dockerfile", "ingestion/Dockerfile", "processing/Dockerfile",
               "gold/Dockerfile", "orchestration/Dockerfile", "monitoring/Dockerfile")
# orchestration.steps.HOSTS -> the compose file deployed on that host.
COMPOSE_OF_STEP_HOST = {
    "webserver0": "ingestion/docker-compose.yaml",
    "webserver1": "ingestion/docker-compose.yaml",
    "spark": "processing/spark-compose.yaml",
}
DOCKER_DAEMON_JSON = REPO_ROOT / "infrastructure" / "deploy" / "docker-daemon.json"
# Hosts whose Docker daemon is exposed to the Airflow host (its port adds to the compose ports there).
DOCKER_API_HOSTS = ("webserver", "spark")
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
_PYTHON = re.compile(r"python(3(\.\d+)?)?")


@functools.cache
def deploy_env_file() -> Path:
    """A complete docker-mode env file: the template, generated secrets, DEPLOYMENT_VALUES."""
    from infrastructure.docker.secrets import fill

    text, _ = fill(DOCKER_ENV_TEMPLATE.read_text(encoding="utf-8"))
    lines = [line for line in text.splitlines() if line.partition("=")[0] not in DEPLOYMENT_VALUES]
    path = Path(tempfile.mkdtemp(prefix="tripclick-deploy-env-")) / ".env"
    path.write_text("\n".join(lines + [f"{k}={v}" for k, v in DEPLOYMENT_VALUES.items()]) + "\n")
    return path


def deploy_env() -> dict[str, str]:
    return read_env_file(deploy_env_file())


def compose_config(path: str, env_file: Path | None = None, *options: str) -> subprocess.CompletedProcess:
    """`docker-compose -f FILE --env-file ENV config [options]` from the repository root (all profiles)."""
    env_file = env_file or deploy_env_file()
    return subprocess.run(["docker-compose", "-f", path, "--env-file", str(env_file), "config", *options],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


@functools.cache
def resolved_compose(path: str) -> dict:
    """The compose file as docker-compose resolves it with deploy_env_file() (cached: the files do not change
    during a test session; callers must not mutate the result)."""
    result = compose_config(path)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def compose_variables(path: str) -> set[str]:
    """Every ${VAR...} interpolated in a compose file ($$ escapes are the container's own)."""
    return set(_VARIABLE.findall((REPO_ROOT / path).read_text(encoding="utf-8")))


def documented_variables() -> dict[str, bool]:
    """NAME -> whether its block in .env.example (consecutive non-blank lines) has a comment."""
    documented: dict[str, bool] = {}
    block_has_comment = False
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            block_has_comment = False
        elif stripped.startswith("#"):
            block_has_comment = True
        else:
            documented[stripped.partition("=")[0]] = block_has_comment
    return documented


def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


def dockerfile_instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in (REPO_ROOT / path).read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    return instructions


def dockerfile_env(path: str) -> dict[str, str]:
    """The ENV of the final stage (KEY=VALUE form; $PATH-style references kept verbatim)."""
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "FROM":
            env = {}
        elif keyword == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dockerfile_copied_paths(path: str) -> set[str]:
    """Sources of the final stage's plain COPY instructions (build-context paths)."""
    copied: set[str] = set()
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "FROM":
            copied = set()
        elif keyword == "COPY" and not arguments.startswith("--from"):
            copied.update(arguments.split()[:-1])
    return copied


def python_modules_in(command: list[str]) -> list[str]:
    """Modules run with `python -m X` (or python3.11 ...) anywhere in a command (also inside `bash -c "..."`)."""
    words = shlex.split(" ".join(command).replace("&&", " "))
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-m" and i > 0
            and _PYTHON.fullmatch(words[i - 1].rpartition("/")[2])]


def mounted_packages(service: dict) -> set[str]:
    """Top-level packages of this checkout a resolved compose service mounts read-only into /opt/tripclick."""
    return {target.removeprefix("/opt/tripclick/") for source, target, mode in
            (volume.split(":") for volume in service.get("volumes", []) if volume.count(":") == 2)
            if mode == "ro" and source == str(REPO_ROOT / target.removeprefix("/opt/tripclick/"))}


def module_file(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None
