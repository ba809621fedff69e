"""One configuration mechanism for every layer.

Precedence, lowest to highest: the defaults below, then the `.env` file at the repository root
(or the file named by ENV_FILE), then the process environment. Every variable is documented in
`.env.example`. Secrets are masked whenever settings are printed.

    python -m infrastructure.settings [show]    the effective configuration, secrets masked
    python -m infrastructure.settings check     outside local mode: every deployment secret given and strong,
                                                no placeholder, loopback address, lake off S3 or unconsented
                                                plaintext Docker API (one line per problem; exit 1)
"""
from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from infrastructure.docker.secrets import GENERATED

REPO_ROOT = Path(__file__).resolve().parents[1]

# Variables whose values must never reach a log line.
SECRET_NAMES = frozenset(
    {"AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD", "POSTGRES_RO_PASSWORD", "AIRFLOW_DB_PASSWORD", "SUPERSET_SECRET_KEY",
     "SUPERSET_ADMIN_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "SUPERSET_DATABASE_URI", "ALERT_SLACK_WEBHOOK_URL",
     "SPARK_AUTH_SECRET"}
)

# Local mode is the embedded default; its passwords are only for services bound to 127.0.0.1.
# Outside local mode each of these must be given explicitly.
LOCAL_ONLY_DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "local-access-key",
    "AWS_SECRET_ACCESS_KEY": "local-secret-key",
    "POSTGRES_PASSWORD": "gold_loader_local",
    "POSTGRES_RO_PASSWORD": "superset_ro_local",
    "AIRFLOW_DB_PASSWORD": "airflow_local",
    "SUPERSET_SECRET_KEY": "local-only-superset-secret-key",
    "SUPERSET_ADMIN_PASSWORD": "admin",
    "AIRFLOW_ADMIN_PASSWORD": "admin",
    "SPARK_AUTH_SECRET": "local-only-spark-auth-secret",
}

DEFAULTS = {
    # Not DEPLOY_MODE: spark-submit reads that name from the environment and accepts only client/cluster.
    "PLATFORM_MODE": "local",
    "RUN_DIR": str(REPO_ROOT / ".run"),
    "KAFKA_BROKERS": "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094",
    "KAFKA_TOPIC": "tripclick_raw_logs",
    "KAFKA_DLQ_TOPIC": "tripclick_raw_logs_dlq",
    "KAFKA_MANIFEST_TOPIC": "tripclick_producer_manifests",
    "MAX_EVENT_BYTES": "65536",
    "PRODUCER_MAX_REJECT_SHARE": "0.05",
    "KAFKA_HEAP": "384m",
    "LAKE_ROOT": str(REPO_ROOT / ".run" / "lake"),
    "S3_ENDPOINT": "http://127.0.0.1:9000",
    "S3_BUCKET": "tripclick-lake",
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5433",
    "POSTGRES_DB": "tripclick_gold",
    "POSTGRES_USER": "gold_loader",
    "POSTGRES_RO_USER": "superset_ro",
    "POSTGRES_RO_STATEMENT_TIMEOUT_SECONDS": "30",
    "AIRFLOW_DB": "airflow",
    "AIRFLOW_DB_USER": "airflow",
    "SPARK_MASTER": "local[2]",
    "SPARK_DRIVER_MEMORY": "1g",
    "PIPELINE_TZ": "Asia/Seoul",
    "TIME_SCALE": "1",
    "STREAM_WARM_UP_ROWS": "40000",
    "STREAM_DRAIN_SECONDS": "60",
    "PIPELINE_RETRY_DELAY_SECONDS": "30",
    "DATA_DIR": str(REPO_ROOT / "ingestion" / "data"),
    "SUPERSET_PORT": "8088",
    "SUPERSET_ADMIN_USER": "admin",
    "SUPERSET_DATABASE_URI": "",
    "SUPERSET_SQLLAB_ENABLED": "0",
    "AIRFLOW_PORT": "8080",
    "AIRFLOW_ADMIN_USER": "admin",
    "PIPELINE_RUNNER": "local",
    "IMAGE_TAG": "0.1.0",
    "IMAGE_REGISTRY": "",
    "BASE_IMAGE": "python:3.11.11-slim-bookworm",
    "EXTRA_CA_CERTS": "",
    "DOCKER_TLS": "1",
    "DOCKER_TLS_DISABLED_I_UNDERSTAND": "",
    "DOCKER_URL_WEBSERVER0": "tcp://webserver0:2376",
    "DOCKER_URL_WEBSERVER1": "tcp://webserver1:2376",
    "DOCKER_URL_SPARK": "tcp://spark:2376",
    "DOCKER_CERT_DIR": "/opt/airflow/docker-certs",
    "DOCKER_NETWORK": "tripclick",
    "PRODUCER_DATA_DIR": "/srv/tripclick/data",
    "PIPELINE_MAX_RETRIES": "",
    "DOCKER_KEEP_FAILED_HOURS": "72",
    "SPARK_CORES_MAX": "",
    "SPARK_JAVA_OPTIONS": "",
    "QUALITY_VOLUME_BAND": "0.5",
    "QUALITY_LOAD_LATENESS_MINUTES": "180",
    "UNUSED_SETTINGS": "",
    "PROMETHEUS_PORT": "9390",
    "PROMETHEUS_SCRAPE_SECONDS": "10",
    "ALERTMANAGER_PORT": "9391",
    "PUSHGATEWAY_PORT": "9392",
    "NODE_EXPORTER_PORT": "9393",
    "POSTGRES_EXPORTER_PORT": "9394",
    "STATSD_EXPORTER_PORT": "9395",
    "STATSD_PORT": "9125",
    "ALERT_INBOX_SMTP_PORT": "9396",
    "ALERT_INBOX_HTTP_PORT": "9397",
    "PUSHGATEWAY_URL": "http://127.0.0.1:9392",
    "AIRFLOW_PUBLIC_URL": "",
    "ALERT_EMAIL_TO": "oncall@tripclick.local",
    "ALERT_EMAIL_FROM": "alerts@tripclick.local",
    "ALERT_SMTP_SMARTHOST": "127.0.0.1:9396",
    "ALERT_SLACK_WEBHOOK_URL": "http://127.0.0.1:9397/slack",
    "ALERT_BROKER_DOWN_MINUTES": "1",
    "ALERT_UNDER_REPLICATED_MINUTES": "5",
    "ALERT_STREAM_STALL_MINUTES": "3",
    "ALERT_STREAM_LAG_MESSAGES": "200000",
    "ALERT_DAY_DEADLINE": "20:00",
    "ALERT_FRESH_BY": "09:00",
    "ALERT_DISK_FREE_RATIO": "0.10",
    **LOCAL_ONLY_DEFAULTS,
}


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and # comments are skipped, matching quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


# Addresses other hosts must reach in docker mode: a loopback value there means "this container".
ADDRESS_SETTINGS = ("KAFKA_BROKERS", "KAFKA_HOST", "POSTGRES_HOST", "S3_ENDPOINT")
# Secrets a provider issues, not this project (the S3 keys, the Slack webhook URL): their length is the
# provider's, so outside local mode they are refused only when empty, the local default or a placeholder.
ISSUED_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ALERT_SLACK_WEBHOOK_URL")
# Every secret a deployment gives: `make docker-secrets` generates GENERATED, the provider issues the rest.
DEPLOYMENT_SECRETS = tuple(dict.fromkeys((*LOCAL_ONLY_DEFAULTS, *GENERATED, *ISSUED_SECRETS)))
# What an image may declare it never reads (UNUSED_SETTINGS): its secrets, addresses and the lake.
MAY_BE_UNUSED = frozenset({*DEPLOYMENT_SECRETS, *ADDRESS_SETTINGS, "LAKE_ROOT"})
PLACEHOLDER_PREFIX = "change-me"
# A generated secret is secrets.token_urlsafe(32): 43 characters. Shorter ones were typed or truncated.
MIN_SECRET_LENGTH = 32
FERNET_KEY_BYTES = 32
KAFKA_CLUSTER_ID_LENGTH, KAFKA_CLUSTER_ID_BYTES = 22, 16  # a UUID, URL-safe base64 without padding
# DOCKER_TLS=0 outside local mode needs this set to "yes": whoever reaches a plaintext Docker API is root there.
PLAINTEXT_DOCKER_OPT_IN = "DOCKER_TLS_DISABLED_I_UNDERSTAND"
_LOOPBACK_HOSTS = ("localhost", "::1", "[::1]", "0.0.0.0")
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _hosts(name: str, value: str) -> list[str]:
    """Host names in an address setting: 'h:9092,h2:9093', 'http://h:9000' or a bare host."""
    if name == "S3_ENDPOINT":
        return [urlsplit(value).hostname or ""] if value else []
    return [item.strip().rpartition(":")[0] or item.strip() if ":" in item else item.strip()
            for item in value.split(",") if item.strip()]


def registry_prefix(value: str) -> str:
    """IMAGE_REGISTRY as the prefix of every image reference: empty, or ending with '/'."""
    value = value.strip()
    if value and not value.endswith("/"):
        raise ConfigError(f"IMAGE_REGISTRY={value!r} must end with '/' (e.g. registry.example.com/data/)")
    return value


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host.lower() in _LOOPBACK_HOSTS


def unused_settings(merged: dict[str, str]) -> set[str]:
    return set(merged["UNUSED_SETTINGS"].replace(",", " ").split())


def _urlsafe_base64_bytes(value: str) -> int:
    """How many bytes `value` decodes to as URL-safe base64; -1 when it is not URL-safe base64."""
    if not _URLSAFE_BASE64.fullmatch(value):
        return -1
    try:
        return len(base64.urlsafe_b64decode(value))
    except binascii.Error:
        return -1


def secret_problem(name: str, value: str) -> str | None:
    """Why `value` must not be the secret `name` outside local mode, naming the variable but never the value;
    None when it may."""
    if not value:
        return f"{name} is not set (no built-in value outside local mode)"
    if value == DEFAULTS.get(name):
        return f"{name} is the local-mode default; set a real value"
    if value.startswith(PLACEHOLDER_PREFIX):
        return f"{name} is a placeholder ({PLACEHOLDER_PREFIX}...); set a real value"
    if name == "AIRFLOW_FERNET_KEY":  # Airflow decodes it as Fernet does: padded, exactly 32 bytes
        if _urlsafe_base64_bytes(value) != FERNET_KEY_BYTES:
            return f"{name} is not a Fernet key (URL-safe base64 of {FERNET_KEY_BYTES} bytes)"
    elif name == "KAFKA_CLUSTER_ID":  # an identifier in KRaft's format, not a secret: no length rule
        if len(value) != KAFKA_CLUSTER_ID_LENGTH or _urlsafe_base64_bytes(value + "==") != KAFKA_CLUSTER_ID_BYTES:
            return (f"{name} is not a KRaft cluster id ({KAFKA_CLUSTER_ID_LENGTH} characters of URL-safe base64, "
                    f"{KAFKA_CLUSTER_ID_BYTES} bytes)")
    elif name in GENERATED and len(value) < MIN_SECRET_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_LENGTH} characters (`make docker-secrets` generates 43)"
    return None


def plaintext_docker_problem(values: dict[str, str]) -> str | None:
    """DOCKER_TLS=0 without the opt-in: a plaintext Docker API makes whoever reaches it root on that host."""
    if values["DOCKER_TLS"].strip().lower() not in ("0", "false") or values.get(PLAINTEXT_DOCKER_OPT_IN) == "yes":
        return None
    return (f"DOCKER_TLS=0 (plaintext Docker API: whoever reaches port 2375 is root on that host) needs "
            f"{PLAINTEXT_DOCKER_OPT_IN}=yes")


def checked_secrets(given: dict[str, str], unused: set[str], required: Collection[str]) -> list[str]:
    """The secrets deployment_problems checks: the required ones and any other given, none declared unused."""
    return [name for name in DEPLOYMENT_SECRETS if name not in unused and (name in required or given.get(name))]


def deployment_problems(merged: dict[str, str], given: dict[str, str],
                        required: Collection[str] = tuple(LOCAL_ONLY_DEFAULTS)) -> list[str]:
    """Why these settings must not run outside local mode: one line per variable, empty when fine.

    The secrets in `required` must be given (resolve: the local-only ones, which have no value outside local
    mode; the settings check: every deployment secret); any other secret is checked when it is given. Names in
    UNUSED_SETTINGS are not checked at all."""
    unused = unused_settings(merged)
    problems = [f"UNUSED_SETTINGS names {name}, which is not a secret, an address or LAKE_ROOT"
                for name in sorted(unused - MAY_BE_UNUSED)]
    secrets = checked_secrets(given, unused, required)
    problems += [problem for name in secrets if (problem := secret_problem(name, given.get(name, "")))]
    problems += [f"{name} is a placeholder ({PLACEHOLDER_PREFIX}...); set a real value"
                 for name, value in sorted(given.items())
                 if value.startswith(PLACEHOLDER_PREFIX) and name not in unused and name not in secrets]
    for name in ADDRESS_SETTINGS:
        value = merged.get(name, "")
        if name in unused or not value:
            continue
        loopback = [host for host in _hosts(name, value) if is_loopback(host)]
        if loopback:
            problems.append(f"{name}={value} is a loopback address; other hosts and containers must reach it")
    if "LAKE_ROOT" not in unused and not merged["LAKE_ROOT"].startswith("s3a://"):
        problems.append(f"LAKE_ROOT={merged['LAKE_ROOT']} is not on S3 (s3a://<bucket>/): every host must see the lake")
    if plaintext := plaintext_docker_problem(merged):
        problems.append(plaintext)
    return problems


def _sources(environ: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(defaults < .env file < environment, what the file and the environment gave)."""
    environ = dict(os.environ if environ is None else environ)
    from_file = read_env_file(Path(environ.get("ENV_FILE", REPO_ROOT / ".env")))
    given = {**from_file, **environ}
    return {**DEFAULTS, **given}, given


def resolve(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Merge defaults, the .env file and the environment; outside local mode refuse what deployment_problems
    names (ConfigError naming every such variable)."""
    merged, given = _sources(environ)
    if merged["PLATFORM_MODE"] != "local":
        problems = deployment_problems(merged, given)
        if problems:
            raise ConfigError(f"PLATFORM_MODE={merged['PLATFORM_MODE']} refuses these settings:\n  "
                              + "\n  ".join(problems))
        # An image's unused secrets stay empty, never the local default: a misuse fails authentication.
        merged.update({name: "" for name in unused_settings(merged) & set(DEPLOYMENT_SECRETS) & DEFAULTS.keys()
                       if merged[name] == DEFAULTS[name]})
    return merged


@dataclass(frozen=True)
class Settings:
    platform_mode: str
    run_dir: Path
    kafka_brokers: str
    kafka_topic: str
    kafka_dlq_topic: str
    kafka_manifest_topic: str
    max_event_bytes: int
    producer_max_reject_share: float
    kafka_heap: str
    lake_root: str
    s3_endpoint: str
    s3_bucket: str
    aws_access_key_id: str
    aws_secret_access_key: str
    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    postgres_ro_user: str
    postgres_ro_password: str
    postgres_ro_statement_timeout_seconds: int
    airflow_db: str
    airflow_db_user: str
    airflow_db_password: str
    spark_master: str
    spark_driver_memory: str
    spark_auth_secret: str
    spark_cores_max: str
    spark_java_options: str
    pipeline_tz: str
    time_scale: float
    data_dir: Path
    superset_port: int
    superset_secret_key: str
    superset_admin_user: str
    superset_admin_password: str
    superset_database_uri: str
    superset_sqllab_enabled: bool
    airflow_port: int
    airflow_admin_user: str
    airflow_admin_password: str
    image_registry: str
    image_tag: str
    base_image: str
    extra_ca_certs: str
    prometheus_port: int
    prometheus_scrape_seconds: int
    alertmanager_port: int
    pushgateway_port: int
    node_exporter_port: int
    postgres_exporter_port: int
    statsd_exporter_port: int
    statsd_port: int
    alert_inbox_smtp_port: int
    alert_inbox_http_port: int
    pushgateway_url: str
    airflow_public_url: str
    alert_email_to: str
    alert_email_from: str
    alert_smtp_smarthost: str
    alert_slack_webhook_url: str
    alert_broker_down_minutes: int
    alert_under_replicated_minutes: int
    alert_stream_stall_minutes: int
    alert_stream_lag_messages: int
    alert_day_deadline: str
    alert_fresh_by: str
    alert_disk_free_ratio: float

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.kafka_brokers.split(",") if b.strip()]

    @property
    def lake_is_s3(self) -> bool:
        return self.lake_root.startswith(("s3a://", "s3://"))

    @property
    def airflow_url(self) -> str:
        """Where people open Airflow: AIRFLOW_PUBLIC_URL, or local mode's UI."""
        return (self.airflow_public_url or f"http://127.0.0.1:{self.airflow_port}").rstrip("/")

    def redacted(self) -> dict[str, str]:
        """All settings as NAME -> value with secrets masked, safe to log."""
        out = {}
        for f in fields(self):
            name = f.name.upper()
            out[name] = "****" if name in SECRET_NAMES else str(getattr(self, f.name))
        return out


def _from_repo(raw: str) -> Path:
    """Relative paths in configuration are relative to the repository root, not the caller's cwd."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def flag(name: str, raw: str) -> bool:
    """A 0/1 (or false/true) setting."""
    value = raw.strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return value in ("1", "true")


def load(environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from defaults, .env and the environment (see module docstring)."""
    merged = resolve(environ)
    kwargs = {}
    for f in fields(Settings):
        raw = merged[f.name.upper()]
        try:
            if f.type == "int":
                kwargs[f.name] = int(raw)
            elif f.type == "float":
                kwargs[f.name] = float(raw)
            elif f.type == "Path":
                kwargs[f.name] = _from_repo(raw)
            elif f.type == "bool":
                kwargs[f.name] = flag(f.name.upper(), raw)
            else:
                kwargs[f.name] = raw
        except ConfigError:
            raise
        except ValueError:
            raise ConfigError(f"{f.name.upper()}={raw!r} is not a valid {f.type}") from None
    if "://" not in kwargs["lake_root"]:
        kwargs["lake_root"] = str(_from_repo(kwargs["lake_root"]))
    kwargs["image_registry"] = registry_prefix(kwargs["image_registry"])
    settings = Settings(**kwargs)
    if settings.time_scale <= 0:
        raise ConfigError(f"TIME_SCALE must be > 0, got {settings.time_scale}")
    if settings.postgres_ro_statement_timeout_seconds < 1:  # PostgreSQL reads 0 as "no limit"
        raise ConfigError("POSTGRES_RO_STATEMENT_TIMEOUT_SECONDS must be >= 1, got "
                          f"{settings.postgres_ro_statement_timeout_seconds}")
    return settings


def check(environ: dict[str, str] | None = None, required: Collection[str] = DEPLOYMENT_SECRETS) -> int:
    """`python -m infrastructure.settings check`: outside local mode the `required` secrets (all by default) not
    declared in UNUSED_SETTINGS must be given, they and any other secret given must be strong, and resolve()'s
    other rules hold. Prints one line per problem naming the variable, never a secret's value; 0 when none."""
    try:
        merged, given = _sources(environ)
    except ConfigError as exc:
        print(f"settings check: {exc}")
        return 1
    mode = merged["PLATFORM_MODE"]
    if mode == "local":
        print("settings check: OK: PLATFORM_MODE=local, whose built-in values serve 127.0.0.1 only; nothing to check")
        return 0
    problems = deployment_problems(merged, given, required)
    for problem in problems:
        print(f"settings check: {problem}")
    if problems:
        print(f"settings check: FAILED: PLATFORM_MODE={mode} refuses {len(problems)} settings")
        return 1
    unused = unused_settings(merged)
    secrets = checked_secrets(given, unused, required)
    addresses = [name for name in ADDRESS_SETTINGS if name not in unused and merged.get(name)]
    print(f"settings check: OK: PLATFORM_MODE={mode}: {len(secrets)} secrets, {len(addresses)} addresses, "
          f"the lake and DOCKER_TLS pass; {len(unused)} settings declared unused")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.settings", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("show", "check"), default="show",
                        help="show: the effective configuration, secrets masked (default); check: refuse "
                             "weak secrets and unsafe settings outside local mode")
    if parser.parse_args(argv).command == "check":
        return check()
    for key, value in load().redacted().items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
