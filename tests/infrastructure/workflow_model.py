"""The GitHub Actions workflows as data, and the checks on them that need no tool."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from infrastructure.settings import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
# owner/repo[/path]@<40 hex>: a full commit SHA is the only reference its owner cannot move.
_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]+)?@[0-9a-f]{40}$")


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def workflows(folder: Path = WORKFLOWS) -> dict[str, dict]:
    return {path.name: load(path) for path in sorted(folder.glob("*.yml"))}


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def unpinned_actions(folder: Path = WORKFLOWS) -> list[str]:
    problems = []
    for name, workflow in workflows(folder).items():
        for job_name, job in workflow["jobs"].items():
            uses = [job["uses"]] if "uses" in job else []
            uses += [step["uses"] for step in job.get("steps", []) if "uses" in step]
            problems += [f"{name} {job_name}: {ref}" for ref in uses
                         if not ref.startswith("./") and not _PINNED.match(ref)]
    return problems


def permission_problems(folder: Path = WORKFLOWS) -> list[str]:
    """Every workflow declares top-level permissions (read-only or none), no write-all anywhere, and
    every job that needs more says so itself; every workflow has a concurrency group."""
    problems = []
    for name, workflow in workflows(folder).items():
        top = workflow.get("permissions")
        if top is None:
            problems.append(f"{name}: no top-level permissions")
        elif top not in ({}, {"contents": "read"}):
            problems.append(f"{name}: top-level permissions {top} grant more than reading the code")
        for job_name, job in workflow["jobs"].items():
            if job.get("permissions") in ("write-all", "read-all"):
                problems.append(f"{name} {job_name}: permissions {job['permissions']}")
            if top == {} and "permissions" not in job:
                problems.append(f"{name} {job_name}: no permissions under a workflow that grants none")
        if "concurrency" not in workflow:
            problems.append(f"{name}: no concurrency group")
    return problems


def ci_run_commands(folder: Path = WORKFLOWS) -> list[str]:
    """The shell commands of the CI workflow's run steps, one per line."""
    workflow = load(folder / "ci.yml")
    return [line.strip() for step in steps(workflow) if "run" in step
            for line in step["run"].splitlines() if line.strip()]


def ci_run_script_command() -> str:
    """The one command of .ci/run after its preamble (set, cd)."""
    lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    commands = [line for line in lines if not line.startswith(("set ", "cd "))]
    assert len(commands) == 1, commands
    return commands[0]


def is_machine_setup(command: str) -> bool:
    """apt-get lines that only provide the machine the README assumes."""
    words = shlex.split(command)
    return words[:1] == ["apt-get"] and (words[1:2] == ["update"] or "install" in words)
