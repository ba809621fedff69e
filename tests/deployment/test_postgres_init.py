"""gold/postgres/compose-init.sh against a real PostgreSQL 15: a private throwaway cluster in tmp_path
(own socket directory and free port), never the shared platform's."""
from __future__ import annotations

import pytest

from tests.gold.init_cluster import INIT_DIR, INIT_ENV, cluster_env, query, run_wrapper

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(throwaway_postgres):
    return cluster_env(throwaway_postgres)


def test_wrapper_applies_the_repository_init_sql_and_is_rerunnable(cluster):
    for _ in range(2):
        run = run_wrapper({**cluster, **INIT_ENV})
        assert run.returncode == 0, run.stdout + run.stderr
        files = sorted(p.name for p in INIT_DIR.glob("*.sql"))
        assert f"applied {len(files)} init files" in run.stdout
    assert query(cluster, "postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database "
                 "WHERE datname LIKE 't\\_%'") == "t_airflow,t_gold,t_superset"
    assert query(cluster, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                 "WHERE datname = 't_superset'") == "t_superset"
    assert query(cluster, "t_gold", "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'gold'") == "t_loader"
    tables = query(cluster, "t_gold", "SELECT count(*) FROM pg_tables WHERE schemaname = 'gold'")
    assert int(tables) >= 1
    assert query(cluster, "t_gold", "SELECT has_schema_privilege('t_reader', 'gold', 'CREATE')") == "f"
    assert query(cluster, "t_gold", "SELECT tableowner || ',' || has_table_privilege('t_reader', "
                 "'gold.pipeline_runs', 'SELECT') FROM pg_tables WHERE tablename = 'pipeline_runs'") == "t_loader,true"


def test_wrapper_refuses_to_run_without_a_required_secret(cluster):
    env = {**cluster, **INIT_ENV}
    del env["SUPERSET_PASSWORD"]
    run = run_wrapper(env)
    assert run.returncode != 0
    assert "SUPERSET_PASSWORD is required" in run.stderr
    assert query(cluster, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 't\\_%'") == "0"
