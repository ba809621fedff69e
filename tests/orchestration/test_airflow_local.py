"""How `make airflow` configures the local Airflow processes (pure: nothing is started)."""
from __future__ import annotations

import pytest

from infrastructure.settings import SECRET_NAMES, load, resolve
from orchestration import airflow_local
from orchestration.config import DAG_ENV_KEYS

pytestmark = pytest.mark.unit


def instance(tmp_path, **env):
    return airflow_local.Instance(home=tmp_path / "airflow", port=18080, db_url="postgresql+psycopg2://x",
                                  admin_user="admin", admin_password="admin", env=env)


def test_only_the_dags_parse_time_settings_are_exported(tmp_path):
    no_env_file = str(tmp_path / "absent.env")
    exported = airflow_local.dag_environment(resolve({"ENV_FILE": no_env_file, "PIPELINE_TZ": "UTC"}))
    assert set(exported) == set(DAG_ENV_KEYS)
    assert exported["PIPELINE_TZ"] == "UTC"
    assert "PLATFORM_MODE" not in exported  # Spark's launcher reads PLATFORM_MODE and rejects "local"
    assert not set(exported) & SECRET_NAMES


def test_metadata_url_quotes_the_password_and_can_pin_a_schema(tmp_path):
    s = load({"ENV_FILE": str(tmp_path / "absent.env"), "AIRFLOW_DB_PASSWORD": "p@ss:w/rd"})
    assert airflow_local.db_url(s) == "postgresql+psycopg2://airflow:p%40ss%3Aw%2Frd@127.0.0.1:5433/airflow"
    assert airflow_local.db_url(s, "test_x").endswith("/airflow?options=-csearch_path%3Dtest_x")


def test_processes_run_localexecutor_on_loopback_with_basic_auth(tmp_path):
    env = airflow_local.airflow_env(instance(tmp_path, PIPELINE_TZ="UTC"))
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__WEBSERVER__WEB_SERVER_HOST"] == "127.0.0.1"
    assert env["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"] == "18080"
    assert "airflow.api.auth.backend.basic_auth" in env["AIRFLOW__API__AUTH_BACKENDS"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("orchestration/dags")
    assert env["PATH"].startswith(str(airflow_local.AIRFLOW_BIN))
    assert env["PIPELINE_TZ"] == "UTC" and env["PIPELINE_RUNNER"] == "local"


def test_installation_secrets_are_generated_once_and_private(tmp_path):
    inst = instance(tmp_path)
    first = airflow_local.airflow_env(inst)["AIRFLOW__CORE__FERNET_KEY"]
    assert airflow_local.airflow_env(inst)["AIRFLOW__CORE__FERNET_KEY"] == first
    assert (inst.home / "fernet.key").stat().st_mode & 0o077 == 0


def test_no_pid_file_means_not_running(tmp_path):
    scheduler = airflow_local.services(instance(tmp_path))[0]
    assert scheduler.name == "airflow-scheduler" and scheduler.pid() is None
    scheduler.pid_file.parent.mkdir(parents=True)
    scheduler.pid_file.write_text("1")  # PID 1 is alive but not an Airflow process
    assert scheduler.pid() is None


def test_the_platforms_instance_sends_statsd_metrics_and_a_private_one_none_by_default(tmp_path):
    private = airflow_local.airflow_env(instance(tmp_path))
    assert "AIRFLOW__METRICS__STATSD_ON" not in private
    assert private["AIRFLOW_PORT"] == "18080"  # the alerts link to this instance's own UI
    s = load({"ENV_FILE": str(tmp_path / "absent.env"), "RUN_DIR": str(tmp_path), "STATSD_PORT": "19125"})
    env = airflow_local.airflow_env(airflow_local.local_instance(s))
    assert [env[f"AIRFLOW__METRICS__STATSD_{key}"] for key in ("ON", "HOST", "PORT", "PREFIX")] == [
        "True", "127.0.0.1", "19125", "airflow"]
