"""The Terraform checkers as programs: fmt (terraform, or hclfmt where none is installed), tflint's core
rules, checkov, and shellcheck of the hosts' bootstrap. Each runs once on the real tree; fmt and
tflint also on a broken copy, so a checker that silently checks nothing cannot pass."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.infrastructure.terraform_model import TERRAFORM
from tests.infrastructure.tools import run, tool

pytestmark = pytest.mark.integration


def _tf_files(root):
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


def _fmt_problems(root) -> list[str]:
    """Files fmt would change: `terraform fmt -check` where terraform is installed, and hclfmt always
    (the fallback must agree with terraform on this tree)."""
    problems = []
    if shutil.which("terraform"):
        result = run(["terraform", "fmt", "-check", "-recursive", str(root)])
        problems += result.stdout.split() if result.returncode else []
    hclfmt = tool("hclfmt")
    problems += [f"hclfmt: {path}" for path in _tf_files(root)
                 if run([hclfmt, "-require-no-change", str(path)]).returncode]
    return problems


def test_terraform_is_formatted():
    assert _fmt_problems(TERRAFORM) == []


def test_fmt_finds_a_misformatted_file(tmp_path):
    root = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, root)
    path = root / "modules/lake/main.tf"
    text = path.read_text()
    path.write_text(text.replace("  force_destroy = var.force_destroy", "  force_destroy =   var.force_destroy"))
    assert any("modules/lake/main.tf" in problem for problem in _fmt_problems(root))


def _tflint(root):
    return run([tool("tflint"), f"--chdir={root}", "--recursive", f"--config={root / '.tflint.hcl'}",
                "--format=compact"])


def test_tflint_core_rules_pass():
    result = _tflint(TERRAFORM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tflint_finds_an_unused_variable(tmp_path):
    root = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, root)
    with (root / "modules/lake/variables.tf").open("a") as handle:
        handle.write('\nvariable "forgotten" {\n  description = "Nothing uses it."\n  type        = string\n}\n')
    result = _tflint(root)
    assert result.returncode != 0 and "terraform_unused_declarations" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def checkov() -> dict:
    """checkov's JSON report of infrastructure/terraform (one run: it takes a few seconds)."""
    result = run([tool("checkov"), "--config-file", str(TERRAFORM / ".checkov.yaml"), "-d", str(TERRAFORM),
                  "-o", "json"], timeout=300)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return json.loads(result.stdout)


def test_checkov_finds_no_failed_check(checkov):
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in checkov["results"]["failed_checks"]]
    assert failed == []
    assert checkov["summary"]["parsing_errors"] == 0
    assert checkov["summary"]["passed"] >= 150  # it really scanned the modules through the example


def test_every_checkov_skip_says_why(checkov):
    unexplained = [c["check_id"] for c in checkov["results"]["skipped_checks"]
                   if len(c["check_result"].get("suppress_comment") or "") < 20]
    assert unexplained == []


def test_host_bootstrap_passes_shellcheck():
    script = TERRAFORM / "modules/host/files/bootstrap.sh"
    result = run([tool("shellcheck"), "--severity=style", str(script)])
    assert result.returncode == 0, result.stdout
