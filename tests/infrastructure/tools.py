"""The checker programs infrastructure/local/setup.sh installs (stage infra-tools), found or failed for."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infrastructure.settings import REPO_ROOT

GO_BIN = REPO_ROOT / ".cache" / "tools" / "bin"
TOOL_ENV_BIN = REPO_ROOT / ".venvs" / "infra-tools" / "bin"
INSTALL_HINT = ("run `make infra-check` (or `bash infrastructure/local/setup.sh infra-tools`); "
                "`make test` installs it too")


def tool(name: str) -> str:
    """Path of a checker; a missing one fails the test (a skip would pass a check that never ran)."""
    for candidate in (GO_BIN / name, TOOL_ENV_BIN / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found and name == "shellcheck":  # Debian's package, on PATH
        return found
    pytest.fail(f"{name} is missing: {INSTALL_HINT}")


def run(argv: list[str], cwd: Path = REPO_ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
