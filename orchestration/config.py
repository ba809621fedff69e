"""What the DAG needs at parse time, read from the process environment only.

The scheduler re-parses the DAG file every 30 s, so parsing does no file, network or database I/O:
values come from os.environ with the defaults of infrastructure.settings. `make airflow` exports the
merged settings (.env included) into the Airflow processes; the compose deployment passes them with
`env_file`. Secrets are never needed here: the docker runner fills them in from Airflow Connections
at run time, the local runner's steps read them with `infrastructure.settings.load()` themselves.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from infrastructure.settings import (
    DEFAULTS, REPO_ROOT, SECRET_NAMES, ConfigError, flag, plaintext_docker_problem, registry_prefix,
)
from orchestration import timeline
from orchestration.steps import HOSTS

RUNNERS = ("local", "docker")
# Every variable dag_config reads: what an Airflow deployment must put into its processes' environment.
DAG_ENV_KEYS = ("PIPELINE_RUNNER", "PIPELINE_TZ", "TIME_SCALE", "STREAM_WARM_UP_ROWS", "STREAM_DRAIN_SECONDS",
                "PIPELINE_RETRY_DELAY_SECONDS", "IMAGE_TAG", "IMAGE_REGISTRY", "DOCKER_TLS",
                "DOCKER_TLS_DISABLED_I_UNDERSTAND", "DOCKER_URL_WEBSERVER0", "DOCKER_URL_WEBSERVER1",
                "DOCKER_URL_SPARK", "DOCKER_CERT_DIR", "DOCKER_NETWORK", "DOCKER_KEEP_FAILED_HOURS",
                "PRODUCER_DATA_DIR", "DATA_DIR", "PIPELINE_MAX_RETRIES", "SPARK_CORES_MAX", "SPARK_JAVA_OPTIONS",
                "AIRFLOW_PUBLIC_URL", "AIRFLOW_PORT", "ALERT_DAY_DEADLINE")
TLS_PORT, PLAINTEXT_PORT = 2376, 2375
# The Spark job containers' secrets: NAME -> (Airflow Connection, its field). The docker runner reads them
# when the container is created and hands them over as the operator's private environment, never as a
# template (so never in the task's rendered fields or log).
SPARK_JOB_SECRETS = {
    "AWS_ACCESS_KEY_ID": ("tripclick_s3", "login"),
    "AWS_SECRET_ACCESS_KEY": ("tripclick_s3", "password"),
    "POSTGRES_PASSWORD": ("tripclick_postgres", "password"),
    "SPARK_AUTH_SECRET": ("tripclick_spark", "password"),
}

# The local runner's counterpart: a step process gets an allow-list of the worker's environment, never all of
# it (the worker's holds Airflow's database URL and Fernet key, and whatever the shell that started it had).
# The settings a step may be given: every one but the secrets, plus the Spark jobs' (as the docker runner hands
# them over) and ENV_FILE, the .env the step loads itself. The Variable tripclick_local_env may set only these.
LOCAL_STEP_SETTINGS = frozenset({*(DEFAULTS.keys() - SECRET_NAMES), *SPARK_JOB_SECRETS, "ENV_FILE"})
# What any process needs from the worker's environment to run: the command search path, home, user, locale, time
# zone and temp dir; Java's home and the interpreter's module path; Spark's and PySpark's own variables
# (SPARK_HOME, SPARK_LOCAL_DIRS, PYSPARK_PYTHON, ...).
LOCAL_PROCESS_VARIABLES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "JAVA_HOME",
                                     "PYTHONPATH"})
LOCAL_PROCESS_PREFIXES = ("LC_", "SPARK_", "PYSPARK_")


def local_step_environment(worker: Mapping[str, str], overrides: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """A local step's environment: the allowed part of the worker's, then the overrides that name settings a step
    may be given; and the names of the overrides refused."""
    env = {name: value for name, value in worker.items() if name in LOCAL_STEP_SETTINGS
           or name in LOCAL_PROCESS_VARIABLES or name.startswith(LOCAL_PROCESS_PREFIXES)}
    env.update({name: value for name, value in overrides.items() if name in LOCAL_STEP_SETTINGS})
    return env, sorted(overrides.keys() - LOCAL_STEP_SETTINGS)


@dataclass(frozen=True)
class DockerHost:
    name: str  # one of steps.HOSTS
    url: str  # tcp://host:2376
    tls: bool
    cert_dir: str  # holds ca.pem, cert.pem, key.pem for this host (docker's own file names)

    @property
    def ca_cert(self) -> str:
        return f"{self.cert_dir}/ca.pem"

    @property
    def client_cert(self) -> str:
        return f"{self.cert_dir}/cert.pem"

    @property
    def client_key(self) -> str:
        return f"{self.cert_dir}/key.pem"


@dataclass(frozen=True)
class DagConfig:
    runner: str
    pipeline_tz: str
    time_scale: float
    stream_warm_up_rows: int  # the streaming job's --warm-up-rows
    stream_drain_seconds: int  # added to the streaming job's runtime after the 16:00 point
    retry_delay_seconds: float  # first retry delay of every task (then doubled, capped)
    image_tag: str
    image_registry: str  # '' or a prefix ending with '/'
    docker_hosts: dict[str, DockerHost]
    docker_network: str
    producer_data_dir: str  # docker mode: the data folder on the web servers, mounted read-only
    local_data_dir: str  # local mode: DATA_DIR, relative paths taken from the repository root
    max_retries: int | None  # cap on every step's retries (None: each step's own default)
    keep_failed_hours: float  # failed step containers older than this are pruned
    spark_cores_max: str  # spark.cores.max of every job ('' = no cap)
    spark_java_options: str  # extra JVM options of every job's driver and executors ('' = none)
    airflow_url: str  # the UI as people open it: the base of the links in alerts
    day_sla: timedelta  # reconcile must have succeeded this long after the day's start (ALERT_DAY_DEADLINE)

    def retries(self, step_default: int) -> int:
        return step_default if self.max_retries is None else min(step_default, self.max_retries)

    def docker_host(self, name: str) -> DockerHost:
        return self.docker_hosts[name]


def _docker_host(name: str, env: dict[str, str]) -> DockerHost:
    tls = flag("DOCKER_TLS", env["DOCKER_TLS"])
    url = env[f"DOCKER_URL_{name.upper()}"]
    port = urlsplit(url).port
    if tls and port == PLAINTEXT_PORT:
        raise ConfigError(f"DOCKER_URL_{name.upper()}={url} is the plaintext port while DOCKER_TLS=1")
    if not tls and port == TLS_PORT:
        raise ConfigError(f"DOCKER_URL_{name.upper()}={url} is the TLS port while DOCKER_TLS=0")
    return DockerHost(name=name, url=url, tls=tls, cert_dir=f"{env['DOCKER_CERT_DIR'].rstrip('/')}/{name}")


def _optional_count(env: dict[str, str], name: str) -> int | None:
    raw = env[name].strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ConfigError(f"{name} must be empty or a whole number >= 0, got {raw!r}")
    return int(raw)


def _count(env: dict[str, str], name: str) -> int:
    value = _optional_count(env, name)
    if value is None:
        raise ConfigError(f"{name} must be a whole number >= 0, got an empty value")
    return value


def _positive_number(env: dict[str, str], name: str) -> float:
    try:
        value = float(env[name])
    except ValueError:
        raise ConfigError(f"{name}={env[name]!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return value


def _day_sla(env: dict[str, str]) -> timedelta:
    try:
        return timeline.clock_offset(env["ALERT_DAY_DEADLINE"])
    except ValueError as exc:
        raise ConfigError(f"ALERT_DAY_DEADLINE={env['ALERT_DAY_DEADLINE']!r}: expected HH:MM after "
                          f"{timeline.DAY_START} ({exc})") from None


def dag_config(environ: dict[str, str]) -> DagConfig:
    """Parse-time configuration from `environ` (normally os.environ) over the settings defaults."""
    env = {**DEFAULTS, **environ}
    runner = env["PIPELINE_RUNNER"]
    if runner not in RUNNERS:
        raise ConfigError(f"PIPELINE_RUNNER must be one of {RUNNERS}, got {runner!r}")
    # The docker runner is what talks to the Docker APIs: it refuses plaintext ones without the opt-in too.
    if runner == "docker" and (plaintext := plaintext_docker_problem(env)):
        raise ConfigError(plaintext)
    return DagConfig(
        runner=runner,
        pipeline_tz=env["PIPELINE_TZ"],
        time_scale=_positive_number(env, "TIME_SCALE"),
        stream_warm_up_rows=_count(env, "STREAM_WARM_UP_ROWS"),
        stream_drain_seconds=_count(env, "STREAM_DRAIN_SECONDS"),
        retry_delay_seconds=_positive_number(env, "PIPELINE_RETRY_DELAY_SECONDS"),
        image_tag=env["IMAGE_TAG"],
        image_registry=registry_prefix(env["IMAGE_REGISTRY"]),
        docker_hosts={name: _docker_host(name, env) for name in HOSTS},
        docker_network=env["DOCKER_NETWORK"],
        producer_data_dir=env["PRODUCER_DATA_DIR"],
        local_data_dir=os.path.normpath(REPO_ROOT / env["DATA_DIR"]),  # an absolute DATA_DIR replaces the root
        max_retries=_optional_count(env, "PIPELINE_MAX_RETRIES"),
        keep_failed_hours=_positive_number(env, "DOCKER_KEEP_FAILED_HOURS"),
        spark_cores_max=env["SPARK_CORES_MAX"].strip(),
        spark_java_options=env["SPARK_JAVA_OPTIONS"].strip(),
        # Settings.airflow_url's rule, without loading the settings (no file I/O at parse time).
        airflow_url=(env["AIRFLOW_PUBLIC_URL"].strip() or f"http://127.0.0.1:{env['AIRFLOW_PORT']}").rstrip("/"),
        day_sla=_day_sla(env),
    )
