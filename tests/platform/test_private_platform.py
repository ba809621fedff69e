"""A private platform and its monitoring on other ports: start from nothing, lose brokers (and be told so by
e-mail and webhook), stop cleanly.

Runs beside the shared platform so stopping brokers here never disturbs other tests. Its monitoring scrapes every
2 s with zero-minute thresholds, so the broker alerts arrive within seconds of the fault.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from infrastructure.local import kafka, processes
from infrastructure.settings import REPO_ROOT, load
from messaging.topics import TopicSpec, ensure_topic
from monitoring import inbox
from monitoring import local as monitoring
from tests.platform.kafka_helpers import DeliveryFailed, consume, produce

pytestmark = pytest.mark.integration

PORTS = {"KAFKA_BROKERS": "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094",
         "POSTGRES_PORT": "25433", "S3_ENDPOINT": "http://127.0.0.1:29000",
         "PROMETHEUS_PORT": "29390", "ALERTMANAGER_PORT": "29391", "PUSHGATEWAY_PORT": "29392",
         "NODE_EXPORTER_PORT": "29393", "POSTGRES_EXPORTER_PORT": "29394", "STATSD_EXPORTER_PORT": "29395",
         "STATSD_PORT": "29125", "ALERT_INBOX_SMTP_PORT": "29396", "ALERT_INBOX_HTTP_PORT": "29397",
         "ALERT_SMTP_SMARTHOST": "127.0.0.1:29396", "ALERT_SLACK_WEBHOOK_URL": "http://127.0.0.1:29397/slack",
         "PUSHGATEWAY_URL": "http://127.0.0.1:29392", "PROMETHEUS_SCRAPE_SECONDS": "2",
         "ALERT_BROKER_DOWN_MINUTES": "0", "ALERT_UNDER_REPLICATED_MINUTES": "0"}


def cli(command: str, env: dict, group: str = "platform") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infrastructure.local.services", command, group], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def private():
    # PostgreSQL runs as the `postgres` user when we are root: the folder must be traversable.
    run_dir = Path(tempfile.mkdtemp(prefix="tripclick-platform-"))
    run_dir.chmod(0o755)
    env = {**os.environ, **PORTS, "RUN_DIR": str(run_dir), "KAFKA_HEAP": "256m"}
    yield env, load(env)
    cli("down", env, "monitoring")
    cli("down", env)
    shutil.rmtree(run_dir, ignore_errors=True)


def all_ports(settings) -> list[tuple[str, int]]:
    return [(n.host, n.port) for n in kafka.nodes(settings)] + [
        ("127.0.0.1", settings.postgres_port), ("127.0.0.1", 29000)]


def test_up_from_nothing_is_healthy(private):
    env, settings = private
    assert not any(processes.port_open(h, p) for h, p in all_ports(settings))
    result = cli("up", env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8/8 services healthy" in result.stdout.splitlines()[-1]
    status = cli("status", env)
    assert status.returncode == 0 and status.stdout.splitlines()[-1] == "platform: 8/8 services healthy"


def prometheus_query(settings, query: str) -> list[dict]:
    answer = requests.get(f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query", params={"query": query},
                          timeout=5).json()
    return answer["data"]["result"]


def test_monitoring_starts_and_scrapes_every_target(private):
    env, settings = private
    result = cli("up", env, "monitoring")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "monitoring: 7/7 services healthy"
    jobs = {"prometheus", "alertmanager", "pushgateway", "node", "postgres", "statsd", "kafka-broker",
            "kafka-controller"}
    deadline = time.monotonic() + 30
    while len(up := prometheus_query(settings, "up == 1")) < len(jobs) + 4:  # 3 brokers and 3 controllers
        assert time.monotonic() < deadline, prometheus_query(settings, "up")
        time.sleep(1)
    assert {r["metric"]["job"] for r in up} == jobs
    assert prometheus_query(settings, 'kafka_controller_kafkacontroller_value{name="ActiveControllerCount"} == 1')
    assert prometheus_query(settings, "pg_up == 1")


def alerts_arrived(settings, alertname: str) -> tuple[dict, dict]:
    """The e-mail and the Slack webhook message Alertmanager sent for the alert, waited for."""
    out = monitoring.inbox_file(settings)
    mail = inbox.wait_for(out, lambda r: r["channel"] == "email" and alertname in r["subject"], 60,
                          f"e-mail for {alertname}")[0]
    hook = inbox.wait_for(out, lambda r: r["channel"] == "webhook" and alertname in json.dumps(r["payload"]), 60,
                          f"webhook for {alertname}")[0]
    return mail, hook


def broker(settings, node_id: int) -> processes.Service:
    return next(s for s in kafka.services(settings) if s.name == f"kafka-broker-{node_id}")


def wait_for_isr(settings, topic: str, size: int, timeout: float = 60.0) -> None:
    admin = AdminClient({"bootstrap.servers": settings.broker_list[0]})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        partitions = admin.list_topics(topic=topic, timeout=5).topics[topic].partitions.values()
        if all(len(p.isrs) == size for p in partitions):
            return
        time.sleep(0.5)
    raise AssertionError(f"ISR of {topic} did not shrink to {size} in {timeout}s")


def test_acks_all_survives_one_broker_and_refuses_with_two_down(private):
    _, settings = private
    topic = f"test_failover_{uuid.uuid4().hex[:8]}"
    bootstrap = settings.broker_list[0]   # broker 11 stays up throughout
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ensure_topic(admin, TopicSpec(topic))
    before = produce(bootstrap, topic, 100, tag="before-")

    processes.stop([broker(settings, 13)])
    wait_for_isr(settings, topic, 2)
    during = produce(bootstrap, topic, 100, {"message.timeout.ms": 30000}, tag="during-")
    assert len(before | during) == 200
    assert consume(bootstrap, topic, 200) == before | during

    # The people are told: by e-mail and on the Slack webhook, naming the rule, the time and the Airflow link.
    mail, hook = alerts_arrived(settings, "KafkaBrokerDown")
    assert mail["to"] == [settings.alert_email_to] and mail["subject"].startswith("[TripClick FIRING] KafkaBrokerDown")
    assert "127.0.0.1:29494" in mail["body"] and f"since {time.strftime('%Y-%m-%d', time.gmtime())}" in mail["body"]
    assert f"Airflow: {settings.airflow_url}/dags/tripclick_daily_pipeline/grid" in mail["body"]
    assert hook["path"] == "/slack" and "KafkaBrokerDown" in hook["payload"]["attachments"][0]["title"]
    assert f"{settings.airflow_url}/dags/tripclick_daily_pipeline/grid" in hook["payload"]["attachments"][0]["text"]
    alerts_arrived(settings, "KafkaUnderReplicatedPartitions")

    processes.stop([broker(settings, 12)])
    wait_for_isr(settings, topic, 1)
    # No retries, so the broker's own verdict reaches the delivery report unchanged.
    with pytest.raises(DeliveryFailed) as failure:
        produce(bootstrap, topic, 10, {"enable.idempotence": False, "retries": 0, "message.timeout.ms": 20000})
    assert len(failure.value.errors) == 10
    assert {e.code() for e in failure.value.errors} == {KafkaError.NOT_ENOUGH_REPLICAS}


def test_down_leaves_nothing_listening(private):
    env, settings = private
    assert cli("down", env, "monitoring").returncode == 0
    assert [s.name for s in monitoring.services(settings) if processes.port_open(*s.address)] == []
    result = cli("down", env)
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stdout
    assert [hp for hp in all_ports(settings) if processes.port_open(*hp)] == []
    assert cli("status", env).returncode == 1
