"""The DAGs' docker runner (daily and backfill), as Airflow builds it (orchestration.describe,
PIPELINE_RUNNER=docker), against
the images and compose files of this repository: every DockerOperator must start in one of our images,
on the host whose compose file provides that image, its network and its data mount, with an environment
that infrastructure.settings accepts in docker mode.

Marked integration: it loads the DAG in Airflow's own environment (.venvs/airflow, ~15 s).
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from infrastructure.settings import DEFAULTS, REPO_ROOT, ConfigError, load
from infrastructure.docker.images import IMAGES
from orchestration.config import SPARK_JOB_SECRETS
from orchestration.steps import BACKFILL_DAG_ID, DAG_ID, HOSTS
from tests.deployment.artifacts import (
    COMPOSE_OF_STEP_HOST, deploy_env, dockerfile_env, module_file, python_modules_in, resolved_compose,
)

AIRFLOW_PYTHON = REPO_ROOT / ".venvs" / "airflow" / "bin" / "python"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=[DAG_ID, BACKFILL_DAG_ID])
def docker_tasks(request, tmp_path_factory) -> dict[str, dict]:
    """The docker runner's tasks of the daily DAG and of the backfill DAG (same runner, same hosts)."""
    env = {**os.environ, "PIPELINE_RUNNER": "docker", "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow")),
           "ENV_FILE": "/nonexistent"}
    run = subprocess.run([str(AIRFLOW_PYTHON), "-m", "orchestration.describe", "--logical-date",
                          "2026-01-01T15:00:00+09:00", "--dag-id", request.param, "--param", "start=2026-01-02",
                          "--param", "end=2026-01-04"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    plan = json.loads(run.stdout.strip().splitlines()[-1])
    assert not plan["import_errors"], plan["import_errors"]
    tasks = {task_id: facts for task_id, facts in plan["tasks"].items() if facts["operator"].endswith("DockerOperator")}
    assert tasks, "the docker runner built no DockerOperator"
    return tasks


def _host_of(docker_url: str) -> str:
    hosts = [h for h in HOSTS if DEFAULTS[f"DOCKER_URL_{h.upper()}"] == docker_url]
    assert len(hosts) == 1, docker_url
    return hosts[0]


def _built_images(compose: dict) -> dict[str, str]:
    """image reference -> Dockerfile, for the project images the host's compose file runs."""
    dockerfiles = {image.name: image.dockerfile for image in IMAGES}
    return {s["image"]: dockerfiles[s["image"].rpartition(":")[0]] for s in compose["services"].values()
            if s["image"].rpartition(":")[0] in dockerfiles}


def test_each_task_runs_an_image_built_on_its_host_with_its_network(docker_tasks):
    for task_id, task in docker_tasks.items():
        compose = resolved_compose(COMPOSE_OF_STEP_HOST[_host_of(task["docker_url"])])
        dockerfile = _built_images(compose).get(task["image"])
        assert dockerfile, f"{task_id}: {task['image']} is not built on its host"
        assert task["network_mode"] in {n.get("name") for n in compose["networks"].values()}, task_id
        assert task["tls_verify"] and task["mount_tmp_dir"] is False, task_id
        for module in python_modules_in(task["command"]):
            assert module_file(module), f"{task_id}: {module} does not exist"


def test_each_task_environment_satisfies_the_settings_in_its_image(docker_tasks):
    example = deploy_env()
    for task_id, task in docker_tasks.items():
        compose = resolved_compose(COMPOSE_OF_STEP_HOST[_host_of(task["docker_url"])])
        image_env = dockerfile_env(_built_images(compose)[task["image"]])
        # Connection templates stand for the operator's values (a deployment's env file has one of each
        # kind); secrets come from the Connections as the private environment.
        secrets = {name: example[name] for name in SPARK_JOB_SECRETS if "/spark-job:" in task["image"]}
        given = {**{k: (example[k] if "{{" in v else v) for k, v in task["environment"].items()}, **secrets}
        try:
            load({**image_env, **given, "ENV_FILE": "/nonexistent"})
        except ConfigError as exc:
            pytest.fail(f"{task_id} would not start in {task['image']}: {exc}")


def test_each_task_pushes_its_metrics_to_the_provisioned_pushgateway(docker_tasks):
    """PUSHGATEWAY_URL from the Variable orchestration.provision sets from .env (monitoring/README.md)."""
    urls = {task_id: task["environment"].get("PUSHGATEWAY_URL") for task_id, task in docker_tasks.items()}
    assert urls == dict.fromkeys(docker_tasks, "{{ var.value.tripclick_pushgateway_url }}")


def test_producer_tasks_mount_the_data_folder_where_the_image_reads_it(docker_tasks):
    producers = {t: task for t, task in docker_tasks.items() if "/producer:" in task["image"]}
    assert producers
    for task_id, task in producers.items():
        data_dir = dockerfile_env("ingestion/Dockerfile")["DATA_DIR"]
        assert task["mounts"] == [{"source": DEFAULTS["PRODUCER_DATA_DIR"], "target": data_dir,
                                   "type": "bind", "read_only": True}], task_id
        assert any(arg == data_dir or arg.startswith(f"{data_dir}/") for arg in task["command"]), task_id
