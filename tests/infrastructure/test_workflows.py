"""The GitHub Actions workflows: pinned actions, least permissions, concurrency, CI = `.ci/run`, and
actionlint (with shellcheck) and `zizmor --offline` over them; an unpinned action must fail both the
pin check and zizmor."""
from __future__ import annotations

import shutil

import pytest

from tests.infrastructure import workflow_model as wf
from tests.infrastructure.tools import run, tool


@pytest.fixture
def broken_workflows(tmp_path):
    """A copy of .github to break; returns (root, workflows folder)."""
    root = tmp_path / "repo"
    shutil.copytree(wf.WORKFLOWS.parent, root / ".github")
    return root, root / ".github" / "workflows"


def _unpin(folder):
    path = folder / "ci.yml"
    text = path.read_text()
    pinned = "actions/setup-go@d35c59abb061a4a6fb18e82ac0862c26744d6ab5 # v5.5.0"
    assert pinned in text
    path.write_text(text.replace(pinned, "actions/setup-go@v5"))


@pytest.mark.unit
def test_the_three_workflows_exist():
    assert set(wf.workflows()) == {"ci.yml", "release.yml", "terraform.yml"}


@pytest.mark.unit
def test_every_action_is_pinned_by_commit_sha():
    assert wf.unpinned_actions() == []


@pytest.mark.unit
def test_an_unpinned_action_is_found(broken_workflows):
    _, folder = broken_workflows
    _unpin(folder)
    assert wf.unpinned_actions(folder) == ["ci.yml test: actions/setup-go@v5"]


@pytest.mark.unit
def test_permissions_are_least_and_runs_are_never_concurrent():
    assert wf.permission_problems() == []


@pytest.mark.unit
def test_ci_runs_exactly_ci_run():
    """The CI workflow's only command beyond providing the README's machine is `bash .ci/run`, and
    .ci/run's one command is the README's `make test`."""
    commands = [c for c in wf.ci_run_commands() if not wf.is_machine_setup(c)]
    assert commands == ["bash .ci/run"]
    assert wf.ci_run_script_command() == "make test"


@pytest.mark.unit
def test_release_pushes_make_images_to_ghcr_on_tags():
    release = wf.workflows()["release.yml"]
    assert release["on"] == {"push": {"tags": ["v*"]}}
    commands = "\n".join(step.get("run", "") for step in wf.steps(release))
    assert "make images" in commands and "make push-images" in commands and "docker login ghcr.io" in commands
    assert release["jobs"]["images"]["permissions"] == {"contents": "read", "packages": "write"}


@pytest.mark.unit
def test_terraform_plans_with_oidc_and_applies_only_in_a_protected_environment():
    jobs = wf.workflows()["terraform.yml"]["jobs"]
    assert jobs["plan"]["permissions"]["id-token"] == "write" and "environment" not in jobs["plan"]
    assert jobs["apply"]["environment"] == "production"
    assert "pull_request" in jobs["plan"]["if"] and "refs/heads/main" in jobs["apply"]["if"]
    check = "\n".join(step.get("run", "") for step in jobs["check"]["steps"])
    for word in ("fmt -check", "validate", "tflint", "checkov"):
        assert word in check


@pytest.mark.integration
def test_actionlint_and_shellcheck_pass():
    tool("shellcheck")  # actionlint lints run: scripts only when shellcheck is on PATH
    result = run([tool("actionlint"), "-oneline", *map(str, sorted(wf.WORKFLOWS.glob("*.yml")))])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_actionlint_runs_shellcheck_on_run_scripts(broken_workflows):
    _, folder = broken_workflows
    path = folder / "ci.yml"
    path.write_text(path.read_text().replace("run: bash .ci/run", "run: cd $HOME && bash .ci/run"))
    result = run([tool("actionlint"), "-oneline", str(path)])
    assert result.returncode != 0 and "SC2086" in result.stdout, result.stdout


@pytest.mark.integration
def test_zizmor_passes():
    result = run([tool("zizmor"), "--offline", "--no-progress", "."], cwd=wf.WORKFLOWS.parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_zizmor_refuses_an_unpinned_action(broken_workflows):
    root, folder = broken_workflows
    _unpin(folder)
    result = run([tool("zizmor"), "--offline", "--no-progress", "."], cwd=root)
    assert result.returncode != 0 and "unpinned-uses" in result.stdout, result.stdout + result.stderr
