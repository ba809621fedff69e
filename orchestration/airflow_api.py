"""A small client of Airflow's stable REST API (basic auth): trigger, watch, clear, read logs.

Used by `make demo` and the end-to-end tests; runs in the pipeline environment (requests only).
"""
from __future__ import annotations

import time
from collections.abc import Callable

import requests

FINISHED = frozenset({"success", "failed"})
TASK_FINISHED = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})


class AirflowApiError(RuntimeError):
    """The API answered with an error status."""


class AirflowApi:
    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30):
        self.root = f"{base_url.rstrip('/')}/api/v1"
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{self.root}{path}", timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response

    def dag(self, dag_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}").json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """The DAG once the scheduler has parsed it (a fresh instance needs a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dag(dag_id)
            except (AirflowApiError, requests.RequestException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/dags/{dag_id}", params={"update_mask": "is_paused"}, json={"is_paused": paused})

    def trigger(self, dag_id: str, run_id: str, conf: dict) -> dict:
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "conf": conf}).json()

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        body = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                          params={"full_content": "true"}, headers={"Accept": "text/plain"}).text

    def clear(self, dag_id: str, run_id: str, only_failed: bool = True) -> list[str]:
        """Clear the run's failed (or all) task instances; the run goes back to running."""
        body = self._call("POST", f"/dags/{dag_id}/clearTaskInstances", json={
            "dry_run": False, "dag_run_id": run_id, "only_failed": only_failed, "reset_dag_runs": True,
            "include_downstream": True}).json()
        return [ti["task_id"] for ti in body["task_instances"]]

    def set_variable(self, key: str, value: str) -> None:
        try:
            self._call("PATCH", f"/variables/{key}", json={"key": key, "value": value})
        except AirflowApiError:
            self._call("POST", "/variables", json={"key": key, "value": value})

    def delete_variable(self, key: str) -> None:
        response = self.session.delete(f"{self.root}/variables/{key}", timeout=self.timeout)
        if response.status_code not in (204, 404):
            raise AirflowApiError(f"DELETE /variables/{key}: HTTP {response.status_code}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float,
                     on_change: Callable[[float, str, str], None] | None = None, poll: float = 3) -> str:
        """Poll until the run finishes; report every task state change as (elapsed_s, task_id, state). The run's
        own state is asked only once every task has finished (a run cannot finish before): each request costs
        the webserver a password check of basic auth."""
        started = time.monotonic()
        states: dict[str, str] = {}
        run_state = "running"
        while True:
            elapsed = time.monotonic() - started
            for task_id, ti in self.task_instances(dag_id, run_id).items():
                state = ti["state"] or "none"
                if states.get(task_id) != state:
                    states[task_id] = state
                    if on_change:
                        on_change(elapsed, task_id, state)
            if states and set(states.values()) <= TASK_FINISHED:
                run_state = self.run(dag_id, run_id)["state"]
                if run_state in FINISHED:
                    return run_state
            if elapsed > timeout:
                raise TimeoutError(f"run {run_id} still {run_state} after {timeout:.0f}s")
            time.sleep(poll)
