"""Local Airflow: scheduler (LocalExecutor) + triggerer + webserver as background processes.

The `airflow` group of `infrastructure.local.services` (`make airflow` is `make up GROUP=airflow`).

AIRFLOW_HOME is <RUN_DIR>/airflow; metadata lives in the local PostgreSQL database AIRFLOW_DB (created by
`make up`), which is what lets LocalExecutor run the producers and streaming truly in parallel. The UI
and the stable REST API listen on 127.0.0.1:AIRFLOW_PORT (basic auth, AIRFLOW_ADMIN_USER/PASSWORD).
Each process is a session leader with a PID file under <AIRFLOW_HOME>/pids; `down` stops exactly those.
A private instance (its own home, port and schema) runs beside it through the same `up` and `down`.
`make airflow`'s instance sends StatsD metrics to 127.0.0.1:STATSD_PORT (statsd_exporter, `make monitoring`).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from infrastructure.local import processes
from infrastructure.local.services import Group
from infrastructure.settings import REPO_ROOT, Settings, load, resolve
from orchestration.config import DAG_ENV_KEYS

AIRFLOW_BIN = REPO_ROOT / ".venvs" / "airflow" / "bin"
DAGS_FOLDER = REPO_ROOT / "orchestration" / "dags"
SERVICES = ("scheduler", "triggerer", "webserver")  # the compose file's long-running Airflow services too
STOP_GRACE_SECONDS = 30


def log(message: str) -> None:
    print(f"[airflow] {message}", flush=True)


@dataclass(frozen=True)
class Instance:
    """One Airflow installation: its home, port, metadata DB and the settings its tasks see."""
    home: Path
    port: int
    db_url: str  # SQLAlchemy URL (contains the password: never logged)
    admin_user: str
    admin_password: str
    # Exported to every Airflow process (and so to the steps): the DAG's parse-time settings, plus any
    # overrides a private instance needs (e.g. its own lake and topic in a test).
    env: dict[str, str] = field(default_factory=dict)
    # StatsD metrics (prefix `airflow`) to this UDP port on 127.0.0.1, statsd_exporter's (`make monitoring`);
    # None sends none: a private instance's runs count as the platform's only where it opts in.
    statsd_port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def db_url(s: Settings, schema: str | None = None) -> str:
    """The metadata DB URL; `schema` puts every Airflow table in that schema (private test instances)."""
    url = (f"postgresql+psycopg2://{quote(s.airflow_db_user)}:{quote(s.airflow_db_password, safe='')}"
           f"@{s.postgres_host}:{s.postgres_port}/{s.airflow_db}")
    return f"{url}?options=-csearch_path%3D{schema}" if schema else url


def local_instance(s: Settings | None = None) -> Instance:
    """The instance `make airflow` runs: <RUN_DIR>/airflow on AIRFLOW_PORT."""
    s = s or load()
    return Instance(home=s.run_dir / "airflow", port=s.airflow_port, db_url=db_url(s),
                    admin_user=s.airflow_admin_user, admin_password=s.airflow_admin_password,
                    env=dag_environment(resolve()), statsd_port=s.statsd_port)


def dag_environment(merged: dict[str, str]) -> dict[str, str]:
    """Only what the DAG reads at parse time, not the whole configuration: each step loads its own."""
    return {key: merged[key] for key in DAG_ENV_KEYS}


def _persistent_secret(path: Path, make) -> str:
    """A per-installation secret kept in a 0600 file so restarts keep decrypting/validating."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    import base64
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def airflow_env(inst: Instance) -> dict[str, str]:
    env = {**os.environ, **inst.env}
    env.update({
        "PATH": f"{AIRFLOW_BIN}:{os.environ.get('PATH', '')}",  # Airflow's children exec `airflow`
        "AIRFLOW_HOME": str(inst.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",  # LocalExecutor keeps this many worker processes
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": _persistent_secret(inst.home / "fernet.key", _fernet_key),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": inst.db_url,
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(inst.port),
        "AIRFLOW__WEBSERVER__WORKERS": "2",
        "AIRFLOW__WEBSERVER__SECRET_KEY": _persistent_secret(inst.home / "webserver.key",
                                                             lambda: secrets.token_hex(32)),
        "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "60",
        "AIRFLOW_PORT": str(inst.port),  # the alerts' links lead to this instance's UI unless AIRFLOW_PUBLIC_URL
        "PIPELINE_RUNNER": "local",
        "PYTHONUNBUFFERED": "1",
    })
    if inst.statsd_port:
        env.update({"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                    "AIRFLOW__METRICS__STATSD_PORT": str(inst.statsd_port),
                    "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
                    # The allow/block lists are empty either way; the default validator warns in every process.
                    "AIRFLOW__METRICS__METRICS_USE_PATTERN_MATCH": "True"})
    return env


def _airflow(inst: Instance, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(AIRFLOW_BIN / "airflow"), *args], env=airflow_env(inst), capture_output=True,
                          text=True, timeout=timeout, cwd=REPO_ROOT)


def _checked(run: subprocess.CompletedProcess, what: str) -> None:
    if run.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {run.returncode}):\n{(run.stdout + run.stderr)[-3000:]}")


def prepare(inst: Instance) -> None:
    """Schema migration, admin user, Connections (the alerts' too, from ALERT_*)/Variables: all idempotent."""
    inst.home.mkdir(parents=True, exist_ok=True)
    (inst.home / "logs").mkdir(exist_ok=True)
    started = time.monotonic()
    _checked(_airflow(inst, "db", "migrate"), "airflow db migrate")
    log(f"metadata database ready ({time.monotonic() - started:.0f}s)")
    users = _airflow(inst, "users", "list", "-o", "plain")
    _checked(users, "airflow users list")
    if inst.admin_user not in users.stdout.split():
        _checked(_airflow(inst, "users", "create", "--role", "Admin", "--username", inst.admin_user,
                          f"--password={inst.admin_password}", "--firstname", "TripClick", "--lastname", "Admin",
                          "--email", "admin@localhost"), "airflow users create")
        log(f"admin user {inst.admin_user} created")
    run = subprocess.run([str(AIRFLOW_BIN / "python"), "-m", "orchestration.provision"], env=airflow_env(inst),
                         capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    _checked(run, "provisioning Connections/Variables")
    log(run.stdout.strip().splitlines()[-1])


def health(inst: Instance) -> dict | None:
    try:
        return requests.get(f"{inst.base_url}/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        return None


def _reports_healthy(inst: Instance, component: str) -> bool:
    return (health(inst) or {}).get(component, {}).get("status") == "healthy"


def services(inst: Instance) -> list[processes.Service]:
    """The webserver answers /health for itself and the metadata DB, and reports the others' heartbeats."""
    probes = {"scheduler": lambda: _reports_healthy(inst, "scheduler"),
              "triggerer": lambda: _reports_healthy(inst, "triggerer"),
              "webserver": lambda: _reports_healthy(inst, "metadatabase")}
    return [processes.Service(f"airflow-{name}", inst.home, [str(AIRFLOW_BIN / "airflow"), name], probes[name],
                              expect="airflow", address=("127.0.0.1", inst.port) if name == "webserver" else None,
                              pid_name=f"pids/{name}.pid", log_name=f"logs/{name}.out", timeout=180,
                              env=lambda: airflow_env(inst), cwd=REPO_ROOT)
            for name in SERVICES]


def up(inst: Instance) -> None:
    started = time.monotonic()
    airflow = services(inst)
    if all(service.healthy() for service in airflow):
        log(f"already up: UI {inst.base_url}")
        return
    prepare(inst)
    for service in airflow:
        log(f"{service.name} running (pid {service.start()}, log {service.log_file})")
    processes.wait_healthy(airflow)
    log(f"up in {time.monotonic() - started:.0f}s: UI {inst.base_url} (user {inst.admin_user})")


def down(inst: Instance) -> list[str]:
    return processes.stop(services(inst), STOP_GRACE_SECONDS)


GROUP = Group("airflow", lambda s: services(local_instance(s)), lambda s: up(local_instance(s)),
              lambda s: down(local_instance(s)), needs=("platform",))
