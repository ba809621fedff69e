"""`python -m infrastructure.settings check` and resolve(): every deployment secret given and strong outside
local mode, a plaintext Docker API only with its opt-in, and no secret's value in any line they print."""
from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from types import SimpleNamespace

import pytest

from infrastructure import settings
from infrastructure.docker.secrets import GENERATED, fill, new_value
from infrastructure.settings import DEPLOYMENT_SECRETS, LOCAL_ONLY_DEFAULTS, REPO_ROOT, ConfigError, check, resolve

pytestmark = pytest.mark.unit
DOCKER_TEMPLATE = REPO_ROOT / ".env.docker.example"
# What a deployment fills into the template besides the generated secrets.
FILLED_IN = {"KAFKA_HOST": "kafka.internal", "KAFKA_BROKERS": "kafka.internal:9092", "POSTGRES_HOST": "gold.internal",
             "PUBLISH_ADDRESS": "10.0.2.10", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "key-secret",
             "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/x"}
# A weak value of a generated secret, per kind; "local default" only where local mode has one.
WEAK = {
    "empty": lambda name: "",
    "placeholder": lambda name: "change-me-" + "x" * 40,
    "short": lambda name: "Short-Secret-Value-31-chars-XYZ",
    "local default": lambda name: LOCAL_ONLY_DEFAULTS[name],
}
WEAK_CASES = [(name, kind) for name in GENERATED for kind in WEAK
              if kind != "local default" or name in LOCAL_ONLY_DEFAULTS]


def deployment(tmp_path, **values: str) -> dict[str, str]:
    """The environment of a complete docker-mode deployment: template, generated secrets, FILLED_IN; then `values`."""
    text, _ = fill(DOCKER_TEMPLATE.read_text(encoding="utf-8"))
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    return {"ENV_FILE": str(env_file), **FILLED_IN, **values}


def checked(environ: dict[str, str], capsys) -> tuple[int, list[str]]:
    code = check(environ)
    return code, capsys.readouterr().out.splitlines()


def test_generated_secrets_and_filled_in_addresses_pass(tmp_path, capsys):
    code, lines = checked(deployment(tmp_path), capsys)
    assert code == 0, lines
    assert lines == [f"settings check: OK: PLATFORM_MODE=docker: {len(DEPLOYMENT_SECRETS)} secrets, 3 addresses, "
                     "the lake and DOCKER_TLS pass; 0 settings declared unused"]
    assert len(new_value("POSTGRES_PASSWORD")) == 43 >= settings.MIN_SECRET_LENGTH


@pytest.mark.parametrize("name, kind", WEAK_CASES)
def test_a_weak_generated_secret_is_refused_by_name(tmp_path, capsys, name, kind):
    value = WEAK[kind](name)
    code, lines = checked(deployment(tmp_path, **{name: value}), capsys)
    assert code == 1
    problems = [line for line in lines if "FAILED" not in line]
    assert len(problems) == 1 and problems[0].startswith(f"settings check: {name} "), lines
    if kind in ("placeholder", "short"):
        assert value not in "\n".join(lines)


@pytest.mark.parametrize("name, kind", [case for case in WEAK_CASES if case[1] != "empty"])
def test_resolve_refuses_a_weak_generated_secret_it_is_given(tmp_path, name, kind):
    """A process sees only its own secrets: resolve() requires the local-only ones and checks any it is given."""
    with pytest.raises(ConfigError, match=f"\n  {name} "):
        resolve(deployment(tmp_path, **{name: WEAK[kind](name)}))


# Fixed bytes, not random ones: xdist workers must collect the same parameter ids.
@pytest.mark.parametrize("key", [
    base64.urlsafe_b64encode(b"k" * 16).decode(),  # a key, but of 16 bytes
    base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("="),  # unpadded: Fernet cannot decode it
    base64.b64encode(b"\xfb" * 32).decode(),  # standard base64 ("+", "/"), not URL-safe
    "x" * 44,  # long enough, not base64
], ids=["16-bytes", "unpadded", "not-url-safe", "not-base64"])
def test_a_bad_fernet_key_is_refused(tmp_path, capsys, key):
    code, lines = checked(deployment(tmp_path, AIRFLOW_FERNET_KEY=key), capsys)
    assert code == 1 and "settings check: AIRFLOW_FERNET_KEY is not a Fernet key (URL-safe base64 of 32 bytes)" in lines


def test_the_kafka_cluster_id_is_checked_by_its_format_not_its_length(tmp_path, capsys):
    assert checked(deployment(tmp_path, KAFKA_CLUSTER_ID="Vb6sU5Zc0QmVv2nY3zCq1g"), capsys)[0] == 0
    for bad in (secrets.token_urlsafe(32), "Vb6sU5Zc0QmVv2nY3zCq1", "Vb6sU5Zc0QmVv2nY3zCq1+"):
        code, lines = checked(deployment(tmp_path, KAFKA_CLUSTER_ID=bad), capsys)
        assert code == 1 and any(line.startswith("settings check: KAFKA_CLUSTER_ID is not a KRaft cluster id")
                                 for line in lines), bad


def test_the_docker_template_alone_fails_fast_naming_every_unsafe_variable(tmp_path, capsys):
    environ = {"ENV_FILE": str(DOCKER_TEMPLATE)}
    code, lines = checked(environ, capsys)
    assert code == 1
    named = {line.split()[2] for line in lines if "FAILED" not in line}
    assert named == set(DEPLOYMENT_SECRETS), sorted(named ^ set(DEPLOYMENT_SECRETS))
    with pytest.raises(ConfigError) as refused:
        resolve(environ)
    assert all(f"\n  {name} is not set" in str(refused.value) for name in LOCAL_ONLY_DEFAULTS)


def test_plaintext_docker_needs_the_loud_opt_in(tmp_path, capsys):
    plaintext = deployment(tmp_path, DOCKER_TLS="0")
    code, lines = checked(plaintext, capsys)
    assert code == 1 and any("DOCKER_TLS_DISABLED_I_UNDERSTAND=yes" in line for line in lines)
    with pytest.raises(ConfigError, match="DOCKER_TLS=0"):
        resolve(plaintext)
    for not_consent in ("1", "true", "YES"):
        assert checked({**plaintext, "DOCKER_TLS_DISABLED_I_UNDERSTAND": not_consent}, capsys)[0] == 1
    consented = {**plaintext, "DOCKER_TLS_DISABLED_I_UNDERSTAND": "yes"}
    assert checked(consented, capsys)[0] == 0
    assert resolve(consented)["DOCKER_TLS"] == "0"


def test_local_mode_is_not_checked(tmp_path, capsys):
    code, lines = checked({"ENV_FILE": str(REPO_ROOT / ".env.example")}, capsys)
    assert code == 0 and lines[0].startswith("settings check: OK: PLATFORM_MODE=local")


def test_secrets_declared_unused_are_not_required(tmp_path, capsys):
    """A compose stack's check declares the secrets its host never gets, as an image does."""
    environ = deployment(tmp_path, UNUSED_SETTINGS="GRAFANA_ADMIN_PASSWORD KAFKA_UI_PASSWORD",
                         GRAFANA_ADMIN_PASSWORD="", KAFKA_UI_PASSWORD="short")
    code, lines = checked(environ, capsys)
    assert code == 0 and lines[0].endswith("; 2 settings declared unused")
    assert resolve(environ)["KAFKA_UI_PASSWORD"] == "short"  # not this process's secret: left as given


def test_the_command_line_prints_problems_and_exits_non_zero(tmp_path):
    environ = deployment(tmp_path, KAFKA_UI_PASSWORD="change-me-kafka-ui", PATH="/usr/bin:/bin")
    run = subprocess.run([sys.executable, "-m", "infrastructure.settings", "check"], env=environ, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines() == [
        "settings check: KAFKA_UI_PASSWORD is a placeholder (change-me...); set a real value",
        "settings check: FAILED: PLATFORM_MODE=docker refuses 1 settings"]


@pytest.fixture
def preflight(tmp_path, monkeypatch):
    """infrastructure.docker.preflight's main with its probes recorded instead of run; set_deployment(**values)
    puts a deployment into os.environ."""
    from infrastructure.docker import preflight as module

    probed = []
    monkeypatch.setattr(module, "docker_checks", lambda merged: probed.append("docker") or [])
    monkeypatch.setattr(module, "service_checks", lambda merged: probed.append("services") or [])

    def set_deployment(**values: str) -> None:
        for key, value in {**deployment(tmp_path, **values), "PLATFORM_MODE": "docker"}.items():
            monkeypatch.setenv(key, value)

    return SimpleNamespace(main=module.main, probed=probed, set_deployment=set_deployment)


def test_preflight_probes_nothing_when_the_settings_check_refuses(preflight, capsys):
    preflight.set_deployment(AWS_SECRET_ACCESS_KEY="", AIRFLOW_DB_PASSWORD="too-short")
    assert preflight.main() == 1 and preflight.probed == []
    lines = capsys.readouterr().out.splitlines()
    assert "settings check: AWS_SECRET_ACCESS_KEY is not set (no built-in value outside local mode)" in lines
    assert "settings check: AIRFLOW_DB_PASSWORD is shorter than 32 characters (`make docker-secrets` generates 43)" \
        in lines
    assert lines[-1] == "preflight: checks=0 failed=1 (the settings check refused the configuration)"


def test_preflight_requires_only_the_secrets_it_uses(preflight, capsys):
    """The Airflow host of the Terraform reference is given only its own secrets (put_secrets.py)."""
    preflight.set_deployment(GRAFANA_ADMIN_PASSWORD="", KAFKA_UI_PASSWORD="")
    assert preflight.main() == 0 and preflight.probed == ["docker", "services"]
    assert capsys.readouterr().out.splitlines()[-1] == "preflight: checks=0 warned=0 failed=0"
