"""Who may reach the Gold host's PostgreSQL, checked statically: the compose deployment's pg_hba.conf keeps the
superuser inside the container, both init paths pass the init SQL the same variables, and the PostgreSQL exporter
asks only for what the reader may see. The grants themselves: tests/gold/test_postgres_privileges.py."""
from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from infrastructure.local.postgres import _psql_variables
from infrastructure.settings import REPO_ROOT, load
from monitoring import local as monitoring

pytestmark = pytest.mark.unit
GOLD_COMPOSE = REPO_ROOT / "gold" / "docker-compose.yaml"
PIPELINE_ROLES = ("gold_loader", "superset_ro", "airflow", "superset")
OTHER_HOSTS = ("10.0.2.20", "172.18.0.1", "2001:db8::20")  # another host, the Docker bridge, IPv6


def postgres_service() -> dict:
    return yaml.safe_load(GOLD_COMPOSE.read_text(encoding="utf-8"))["services"]["postgres"]


def mounted_hba_rules() -> list[list[str]]:
    """The TCP lines (type, database, user, address, method) of the pg_hba.conf the compose postgres runs with."""
    service = postgres_service()
    (hba_path,) = [arg.split("=", 1)[1] for arg in service["command"] if arg.startswith("hba_file=")]
    (source,) = [volume.split(":")[0] for volume in service["volumes"] if volume.split(":")[1] == hba_path]
    text = (GOLD_COMPOSE.parent / source).read_text(encoding="utf-8")
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [fields for fields in lines if fields[0] != "local"]


def method_for(rules: list[list[str]], user: str, address: str) -> str:
    """What PostgreSQL does with a TCP login: the method of the first line matching it."""
    client = ipaddress.ip_address(address)
    for _, _, rule_user, rule_address, method in rules:
        if rule_user in ("all", user) and (rule_address == "all" or client in ipaddress.ip_network(rule_address)):
            return method
    return "no line: refused"


@pytest.mark.parametrize("address", OTHER_HOSTS)
def test_the_superuser_is_refused_over_tcp_from_outside_the_container(address):
    assert method_for(mounted_hba_rules(), "postgres", address) == "reject"


@pytest.mark.parametrize("address", OTHER_HOSTS)
def test_the_pipeline_roles_log_in_from_other_hosts_with_a_password(address):
    rules = mounted_hba_rules()
    assert {role: method_for(rules, role, address) for role in PIPELINE_ROLES} == \
        dict.fromkeys(PIPELINE_ROLES, "scram-sha-256")


def test_no_tcp_login_goes_without_a_scram_password():
    assert {fields[-1] for fields in mounted_hba_rules()} == {"scram-sha-256", "reject"}
    assert method_for(mounted_hba_rules(), "postgres", "127.0.0.1") == "scram-sha-256"  # the healthcheck's loopback


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
