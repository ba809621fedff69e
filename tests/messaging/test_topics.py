"""The pipeline topic on the shared platform: its layout, and `messaging.topics create` run again."""
from __future__ import annotations

import subprocess
import sys

import pytest

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
