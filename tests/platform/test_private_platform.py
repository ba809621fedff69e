"""A private platform on other ports: start from nothing, lose brokers, stop cleanly.

Runs beside the shared platform so stopping brokers here never disturbs other tests.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from infrastructure.local import kafka, processes
from infrastructure.settings import REPO_ROOT, load
from messaging.topics import TopicSpec, ensure_topic
from tests.platform.kafka_helpers import DeliveryFailed, consume, produce

pytestmark = pytest.mark.integration

PORTS = {"KAFKA_BROKERS": "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094",
         "POSTGRES_PORT": "25433", "S3_ENDPOINT": "http://127.0.0.1:29000"}


def cli(command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infrastructure.local.services", command, "platform"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def private():
    # PostgreSQL runs as the `postgres` user when we are root: the folder must be traversable.
    run_dir = Path(tempfile.mkdtemp(prefix="tripclick-platform-"))
    run_dir.chmod(0o755)
    env = {**os.environ, **PORTS, "RUN_DIR": str(run_dir), "KAFKA_HEAP": "256m"}
    yield env, load(env)
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

    processes.stop([broker(settings, 12)])
    wait_for_isr(settings, topic, 1)
    # No retries, so the broker's own verdict reaches the delivery report unchanged.
    with pytest.raises(DeliveryFailed) as failure:
        produce(bootstrap, topic, 10, {"enable.idempotence": False, "retries": 0, "message.timeout.ms": 20000})
    assert len(failure.value.errors) == 10
    assert {e.code() for e in failure.value.errors} == {KafkaError.NOT_ENOUGH_REPLICAS}


def test_down_leaves_nothing_listening(private):
    env, settings = private
    result = cli("down", env)
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stdout
    assert [hp for hp in all_ports(settings) if processes.port_open(*hp)] == []
    assert cli("status", env).returncode == 1
