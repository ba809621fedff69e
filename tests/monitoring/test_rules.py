"""The alert rules and the configuration rendered from the repository: promtool's own unit tests of every rule
(monitoring/rules-test.yml), Prometheus' and Alertmanager's own config checks, and thresholds that follow the
settings."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from infrastructure.settings import LOCAL_ONLY_DEFAULTS as LOCAL_ONLY
from infrastructure.settings import REPO_ROOT, load
from monitoring import config
from monitoring.metrics import CATALOGUE, EXTERNAL_METRICS

pytestmark = pytest.mark.unit
MONITORING = REPO_ROOT / "monitoring"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = config.render(load({"ENV_FILE": "/nonexistent"}), tmp_path_factory.mktemp("monitoring"))
    shutil.copyfile(MONITORING / "rules-test.yml", out / "rules-test.yml")
    return out


def tool(*argv: str) -> subprocess.CompletedProcess:
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} is missing: run `bash infrastructure/local/setup.sh monitoring`")
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def rules(path) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_every_rule_passes_its_promtool_unit_tests(rendered):
    result = tool("promtool", "test", "rules", str(rendered / "rules-test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "rules-test.yml").read_text()))
    assert tested == {rule["alert"] for rule in rules(rendered / "rules.yml")}


def test_prometheus_and_alertmanager_accept_the_rendered_configuration(rendered):
    checked = tool("promtool", "check", "config", str(rendered / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 13 rules found" in checked.stdout
    checked = tool("amtool", "check-config", str(rendered / "alertmanager.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_webhook_url_is_a_private_file_not_in_the_config(rendered):
    settings = load({"ENV_FILE": "/nonexistent"})
    assert settings.alert_slack_webhook_url not in (rendered / "alertmanager.yml").read_text()
    assert (rendered / "slack-webhook-url").read_text() == settings.alert_slack_webhook_url
    assert (rendered / "slack-webhook-url").stat().st_mode & 0o077 == 0


def test_thresholds_follow_the_settings(tmp_path):
    settings = load({"ENV_FILE": "/nonexistent", "ALERT_UNDER_REPLICATED_MINUTES": "12", "ALERT_DAY_DEADLINE": "21:30",
                     "ALERT_STREAM_LAG_MESSAGES": "777", "AIRFLOW_PUBLIC_URL": "https://airflow.example.org/"})
    by_name = {rule["alert"]: rule for rule in rules(config.render(settings, tmp_path) / "rules.yml")}
    assert by_name["KafkaUnderReplicatedPartitions"]["for"] == "12m"
    assert by_name["DayNotLoadedByDeadline"]["expr"].endswith(f"> {86400 + 21 * 3600 + 1800}")
    assert "> 777 and" in by_name["StreamFallingBehind"]["expr"]
    assert by_name["KafkaBrokerDown"]["annotations"]["airflow"] == \
        "https://airflow.example.org/dags/tripclick_daily_pipeline/grid"
    with pytest.raises(ValueError, match="clock time"):
        config.clock_seconds("25:00")


def test_local_targets_are_loopback_and_docker_targets_the_compose_services():
    local = config.targets(load({"ENV_FILE": "/nonexistent"}))
    assert local["kafka-broker"] == ["127.0.0.1:9492", "127.0.0.1:9493", "127.0.0.1:9494"]
    assert local["kafka-controller"] == ["127.0.0.1:9592", "127.0.0.1:9593", "127.0.0.1:9594"]
    assert all(a.startswith("127.0.0.1:") for addresses in local.values() for a in addresses)
    docker = config.targets(load({"ENV_FILE": "/nonexistent", "PLATFORM_MODE": "docker",
                                  "UNUSED_SETTINGS": "LAKE_ROOT POSTGRES_HOST S3_ENDPOINT " + " ".join(LOCAL_ONLY),
                                  "KAFKA_BROKERS": "kafka.internal:9092,kafka.internal:9093"}))
    assert docker["kafka-broker"] == ["kafka.internal:9492", "kafka.internal:9493"]
    assert docker["pushgateway"] == ["pushgateway:9091"] and docker["postgres"] == ["postgres-exporter:9187"]


METRIC = re.compile(r"\b(?:tripclick|kafka|node|airflow|pg)_[a-z_]+\b|\bup\b")


def test_every_rule_has_a_runbook_entry_and_reads_only_documented_metrics():
    readme = (MONITORING / "README.md").read_text()
    known = set(CATALOGUE) | set(EXTERNAL_METRICS)
    for rule in rules(MONITORING / "rules.yml"):
        assert f"### {rule['alert']}" in readme, rule["alert"]
        assert rule["annotations"]["runbook"] == f"monitoring/README.md#{rule['alert'].lower()}"
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in {"warning", "critical"}
        used = {name.removesuffix("_count") for name in METRIC.findall(rule["expr"])}
        assert used <= known, (rule["alert"], used - known)
