"""The Gold init SQL on a throwaway PostgreSQL 15 cluster (fixture `throwaway_postgres`), applied the way docker
mode applies it: gold/postgres/compose-init.sh, which runs gold/postgres/init/*.sql with the psql variables local
mode passes too, then creates Superset's metadata database."""
from __future__ import annotations

import os
import subprocess

from infrastructure.settings import REPO_ROOT, Settings, load

WRAPPER = REPO_ROOT / "gold" / "postgres" / "compose-init.sh"
INIT_DIR = REPO_ROOT / "gold" / "postgres" / "init"
# A 1 s statement timeout, so a test sees the reader's query cancelled without waiting the default 30 s.
INIT_ENV = {
    "GOLD_LOADER": "t_loader", "GOLD_LOADER_PASSWORD": "loader-pw", "GOLD_READER": "t_reader",
    "GOLD_READER_PASSWORD": "reader-pw", "GOLD_READER_STATEMENT_TIMEOUT_SECONDS": "1", "GOLD_DB": "t_gold",
    "AIRFLOW_USER": "t_airflow", "AIRFLOW_PASSWORD": "airflow-pw", "AIRFLOW_DB": "t_airflow",
    "SUPERSET_USER": "t_superset", "SUPERSET_PASSWORD": "superset-pw", "SUPERSET_DB": "t_superset",
}


def cluster_env(throwaway_postgres: dict[str, str]) -> dict[str, str]:
    """The environment psql and the wrapper need to reach the cluster as its superuser."""
    return {**os.environ, **throwaway_postgres, "POSTGRES_USER": "postgres", "TRIPCLICK_INIT_DIR": str(INIT_DIR)}


def run_wrapper(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(WRAPPER)], env=env, capture_output=True, text=True)


def apply_init(env: dict[str, str]) -> str:
    """compose-init.sh with INIT_ENV; its output. Fails the test when it fails."""
    run = run_wrapper({**env, **INIT_ENV})
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def query(env: dict[str, str], db: str, sql: str) -> str:
    """One statement as the superuser; its rows, unaligned."""
    return subprocess.run(["psql", "-X", "-U", "postgres", "-d", db, "-tAc", sql], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def gold_settings(throwaway_postgres: dict[str, str]) -> Settings:
    """Settings whose loader, reader and Gold database are INIT_ENV's on the cluster, reached over its socket
    (trust: any password is accepted, so the passwords prove nothing here; CONNECT and grants are checked)."""
    return load({"ENV_FILE": "/nonexistent", "POSTGRES_HOST": throwaway_postgres["PGHOST"],
                 "POSTGRES_PORT": throwaway_postgres["PGPORT"], "POSTGRES_DB": INIT_ENV["GOLD_DB"],
                 "POSTGRES_USER": INIT_ENV["GOLD_LOADER"], "POSTGRES_RO_USER": INIT_ENV["GOLD_READER"]})
