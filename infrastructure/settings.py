"""One configuration mechanism for every layer.

Precedence, lowest to highest: the defaults below, then the `.env` file at the repository root
(or the file named by ENV_FILE), then the process environment. Every variable is documented in
`.env.example`. Secrets are masked whenever settings are printed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Variables whose values must never reach a log line.
SECRET_NAMES = frozenset(
    {"AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD", "POSTGRES_RO_PASSWORD", "AIRFLOW_DB_PASSWORD", "SUPERSET_SECRET_KEY",
     "SUPERSET_ADMIN_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "SUPERSET_DATABASE_URI"}
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
    "AIRFLOW_DB": "airflow",
    "AIRFLOW_DB_USER": "airflow",
    "SPARK_MASTER": "local[2]",
    "SPARK_DRIVER_MEMORY": "1g",
    "PIPELINE_TZ": "Asia/Seoul",
    "TIME_SCALE": "1",
    "DATA_DIR": str(REPO_ROOT / "ingestion" / "data"),
    "SUPERSET_PORT": "8088",
    "SUPERSET_ADMIN_USER": "admin",
    "SUPERSET_DATABASE_URI": "",
    "AIRFLOW_PORT": "8080",
    "AIRFLOW_ADMIN_USER": "admin",
    "PIPELINE_RUNNER": "local",
    "IMAGE_TAG": "0.1.0",
    "DOCKER_TLS": "1",
    "DOCKER_URL_WEBSERVER0": "tcp://webserver0:2376",
    "DOCKER_URL_WEBSERVER1": "tcp://webserver1:2376",
    "DOCKER_URL_SPARK": "tcp://spark:2376",
    "DOCKER_CERT_DIR": "/opt/airflow/docker-certs",
    "DOCKER_NETWORK": "tripclick",
    "PRODUCER_DATA_DIR": "/srv/tripclick/data",
    "PIPELINE_MAX_RETRIES": "",
    "UNUSED_SETTINGS": "",
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


def resolve(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Merge defaults, the .env file and the environment; refuse local passwords outside local mode."""
    environ = dict(os.environ if environ is None else environ)
    env_file = Path(environ.get("ENV_FILE", REPO_ROOT / ".env"))
    merged = {**DEFAULTS, **read_env_file(env_file), **environ}
    if merged["PLATFORM_MODE"] != "local":
        given = {**read_env_file(env_file), **environ}
        # An image names the secrets its processes never read (least privilege): those stay empty,
        # never the local default, so a misuse fails authentication instead of passing silently.
        unused = set(merged["UNUSED_SETTINGS"].replace(",", " ").split())
        not_secrets = sorted(unused - LOCAL_ONLY_DEFAULTS.keys())
        if not_secrets:
            raise ConfigError(f"UNUSED_SETTINGS may only name secrets, not: {', '.join(not_secrets)}")
        missing = sorted(name for name in LOCAL_ONLY_DEFAULTS if not given.get(name) and name not in unused)
        if missing:
            raise ConfigError(
                f"PLATFORM_MODE={merged['PLATFORM_MODE']} needs explicit values for: {', '.join(missing)}"
            )
        merged.update({name: "" for name in unused if not given.get(name)})
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
    airflow_db: str
    airflow_db_user: str
    airflow_db_password: str
    spark_master: str
    spark_driver_memory: str
    pipeline_tz: str
    time_scale: float
    data_dir: Path
    superset_port: int
    superset_secret_key: str
    superset_admin_user: str
    superset_admin_password: str
    superset_database_uri: str
    airflow_port: int
    airflow_admin_user: str
    airflow_admin_password: str

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.kafka_brokers.split(",") if b.strip()]

    @property
    def lake_is_s3(self) -> bool:
        return self.lake_root.startswith(("s3a://", "s3://"))

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
            else:
                kwargs[f.name] = raw
        except ValueError:
            raise ConfigError(f"{f.name.upper()}={raw!r} is not a valid {f.type}") from None
    if "://" not in kwargs["lake_root"]:
        kwargs["lake_root"] = str(_from_repo(kwargs["lake_root"]))
    settings = Settings(**kwargs)
    if settings.time_scale <= 0:
        raise ConfigError(f"TIME_SCALE must be > 0, got {settings.time_scale}")
    return settings


if __name__ == "__main__":  # `python -m infrastructure.settings` prints the effective configuration
    for key, value in load().redacted().items():
        print(f"{key}={value}")
