"""gold/postgres/compose-init.sh against a real PostgreSQL 15: a private throwaway cluster in tmp_path
(own socket directory and free port), never the shared platform's."""
from __future__ import annotations

import os
import subprocess

import pytest

from infrastructure.settings import REPO_ROOT

WRAPPER = REPO_ROOT / "gold" / "postgres" / "compose-init.sh"
INIT_ENV = {
    "GOLD_LOADER": "t_loader", "GOLD_LOADER_PASSWORD": "loader-pw", "GOLD_READER": "t_reader",
    "GOLD_READER_PASSWORD": "reader-pw", "GOLD_DB": "t_gold", "AIRFLOW_USER": "t_airflow",
    "AIRFLOW_PASSWORD": "airflow-pw", "AIRFLOW_DB": "t_airflow", "SUPERSET_USER": "t_superset",
    "SUPERSET_PASSWORD": "superset-pw", "SUPERSET_DB": "t_superset",
}

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(throwaway_postgres):
    return {**os.environ, **throwaway_postgres, "POSTGRES_USER": "postgres",
            "TRIPCLICK_INIT_DIR": str(REPO_ROOT / "gold" / "postgres" / "init")}


def _query(env: dict[str, str], db: str, sql: str) -> str:
    return subprocess.run(["psql", "-U", "postgres", "-d", db, "-tAc", sql], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_wrapper_applies_the_repository_init_sql_and_is_rerunnable(cluster):
    for _ in range(2):
        run = subprocess.run(["bash", str(WRAPPER)], env={**cluster, **INIT_ENV}, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        files = sorted(p.name for p in (REPO_ROOT / "gold" / "postgres" / "init").glob("*.sql"))
        assert f"applied {len(files)} init files" in run.stdout
    assert _query(cluster, "postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database "
                  "WHERE datname LIKE 't\\_%'") == "t_airflow,t_gold,t_superset"
    assert _query(cluster, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                  "WHERE datname = 't_superset'") == "t_superset"
    assert _query(cluster, "t_gold", "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'gold'") == "t_loader"
    tables = _query(cluster, "t_gold", "SELECT count(*) FROM pg_tables WHERE schemaname = 'gold'")
    assert int(tables) >= 1
    assert _query(cluster, "t_gold", "SELECT has_schema_privilege('t_reader', 'gold', 'CREATE')") == "f"
    assert _query(cluster, "t_gold", "SELECT tableowner || ',' || has_table_privilege('t_reader', "
                  "'gold.pipeline_runs', 'SELECT') FROM pg_tables WHERE tablename = 'pipeline_runs'") == "t_loader,true"


def test_wrapper_refuses_to_run_without_a_required_secret(cluster):
    env = {**cluster, **INIT_ENV}
    del env["SUPERSET_PASSWORD"]
    run = subprocess.run(["bash", str(WRAPPER)], env=env, capture_output=True, text=True)
    assert run.returncode != 0
    assert "SUPERSET_PASSWORD is required" in run.stderr
    assert _query(cluster, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 't\\_%'") == "0"
