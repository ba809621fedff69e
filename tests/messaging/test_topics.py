"""The pipeline topic on the shared platform: its layout, `messaging.topics create` run again, and what
ensure_topic does to an existing topic's config."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka.admin import ConfigResource

from infrastructure.settings import REPO_ROOT
from messaging import topics

pytestmark = pytest.mark.integration


def test_pipeline_topic_layout(platform):
    layout = topics.describe(topics.admin_client(platform), platform.kafka_topic)
    assert layout == {"topic": "tripclick_raw_logs", "partitions": 3, "replication_factor": 3,
                      "min_insync_replicas": 2, "retention_ms": 7 * 24 * 3600 * 1000,
                      "unclean_leader_election": False}


def test_topic_creation_is_idempotent(platform):
    result = subprocess.run([sys.executable, "-m", "messaging.topics", "create"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"topic {platform.kafka_topic}: exists" in result.stdout


def settled_config(admin, topic: str, expected: dict[str, str]) -> dict[str, str]:
    """The topic's config once it shows `expected`: a broker answers describe from its copy of the metadata
    log, a moment behind the controller that applied the change."""
    resource, deadline = ConfigResource(ConfigResource.Type.TOPIC, topic), time.monotonic() + 15
    while True:
        config = {k: v.value for k, v in admin.describe_configs([resource])[resource].result().items()}
        if {key: config[key] for key in expected} == expected:
            return config
        assert time.monotonic() < deadline, f"{topic} never showed {expected}: {config}"
        time.sleep(0.2)


def test_existing_topic_gets_the_spec_and_keeps_other_overrides(platform):
    admin, spec = topics.admin_client(platform), topics.TopicSpec(f"test_topic_config_{uuid.uuid4().hex[:8]}")
    assert topics.ensure_topic(admin, spec) == "created"
    try:
        drift = {"retention.ms": "60000", "max.message.bytes": "2000000"}
        topics.set_config(admin, spec.name, drift)
        settled_config(admin, spec.name, drift)

        assert topics.ensure_topic(admin, spec) == "exists"
        config = settled_config(admin, spec.name, spec.config)  # the spec's keys are set back
        assert config["max.message.bytes"] == "2000000"  # an operator's override of another key stays
    finally:
        admin.delete_topics([spec.name])[spec.name].result()
