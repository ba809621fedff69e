"""Who may reach the Gold host's PostgreSQL, checked statically: both init paths pass the init SQL the same
variables, and the PostgreSQL exporter asks only for what the reader may see. The grants themselves:
tests/gold/test_postgres_privileges.py."""
from __future__ import annotations

import re

import pytest
import yaml

from infrastructure.local.postgres import _psql_variables
from infrastructure.settings import REPO_ROOT, load
from monitoring import local as monitoring

pytestmark = pytest.mark.unit


def test_both_init_paths_pass_the_init_sql_the_same_variables(tmp_path):
    wrapper = (REPO_ROOT / "gold" / "postgres" / "compose-init.sh").read_text(encoding="utf-8")
    passed = set(re.findall(r"-v (\w+)=", wrapper)) - {"ON_ERROR_STOP"}
    superset_only = {"superset_user", "superset_password", "superset_db"}  # local mode keeps Superset in SQLite
    local = _psql_variables(load({"ENV_FILE": str(tmp_path / "none")}))
    assert passed - superset_only == local.keys()
    assert local["reader_statement_timeout"] == "30s"


def test_the_postgres_exporter_skips_the_database_collector_in_both_modes(tmp_path):
    """It reads the size of every database, and the reader may connect only to Gold's."""
    settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path)})
    (local,) = [s.command for s in monitoring.services(settings) if s.name == "postgres-exporter"]
    compose = yaml.safe_load((REPO_ROOT / "monitoring" / "docker-compose.yaml").read_text(encoding="utf-8"))
    assert "--no-collector.database" in local
    assert "--no-collector.database" in compose["services"]["postgres-exporter"]["command"]
