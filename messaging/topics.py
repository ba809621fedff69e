"""Topic administration: create the pipeline's topics idempotently and show their layout.

    python -m messaging.topics create     # KAFKA_TOPIC, KAFKA_DLQ_TOPIC and KAFKA_MANIFEST_TOPIC
    python -m messaging.topics describe
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from infrastructure.settings import Settings, load

RETENTION_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 3
    min_insync_replicas: int = 2
    retention_ms: int = RETENTION_MS
    cleanup_policy: str = "delete"  # "compact": the latest message per key is kept (producer manifests)

    @property
    def config(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync_replicas), "retention.ms": str(self.retention_ms),
                "unclean.leader.election.enable": "false", "cleanup.policy": self.cleanup_policy}


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    return [TopicSpec(settings.kafka_topic), TopicSpec(settings.kafka_dlq_topic), manifest_topic(settings)]


def manifest_topic(settings: Settings) -> TopicSpec:
    """Producer completeness manifests (messaging/manifest.py): compacted, one key per date and server."""
    return TopicSpec(settings.kafka_manifest_topic, cleanup_policy="compact")


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_brokers})


def ensure_topic(admin: AdminClient, spec: TopicSpec, timeout: float = 30.0) -> str:
    """Create the topic if missing, else set the spec's config keys on it; fail if its partition layout differs.

    Returns "created" or "exists".
    """
    existing = admin.list_topics(timeout=timeout).topics
    if spec.name not in existing:
        futures = admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication_factor,
                                                config=spec.config)], request_timeout=timeout)
        try:
            futures[spec.name].result()
            _wait_visible(admin, spec.name, timeout)
            return "created"
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    layout = describe(admin, spec.name, timeout)
    if (layout["partitions"], layout["replication_factor"]) != (spec.partitions, spec.replication_factor):
        raise RuntimeError(f"topic {spec.name} exists with {layout['partitions']} partitions and RF "
                           f"{layout['replication_factor']}, expected {spec.partitions} and RF "
                           f"{spec.replication_factor}")
    set_config(admin, spec.name, spec.config, timeout)
    return "exists"


def set_config(admin: AdminClient, topic: str, config: dict[str, str], timeout: float = 30.0) -> None:
    """Set these keys on the topic. An incremental change: an override an operator added for another key
    stays (the whole-config AlterConfigs call, deprecated, would silently reset it to the broker's default)."""
    entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in config.items()]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    admin.incremental_alter_configs([resource], request_timeout=timeout)[resource].result()


def _wait_visible(admin: AdminClient, topic: str, timeout: float) -> None:
    """A new topic reaches every broker's metadata a moment after CreateTopics returns: wait for its leaders,
    so that a describe or produce right after creation does not see UNKNOWN_TOPIC_OR_PART."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metadata = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions and all(
                p.leader >= 0 for p in metadata.partitions.values()):
            return
        time.sleep(0.2)


def describe(admin: AdminClient, topic: str, timeout: float = 30.0) -> dict:
    metadata = admin.list_topics(topic=topic, timeout=timeout).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    replicas = {len(p.replicas) for p in metadata.partitions.values()}
    return {
        "topic": topic,
        "partitions": len(metadata.partitions),
        "replication_factor": replicas.pop() if len(replicas) == 1 else sorted(replicas),
        "min_insync_replicas": int(config["min.insync.replicas"].value),
        "retention_ms": int(config["retention.ms"].value),
        "unclean_leader_election": config["unclean.leader.election.enable"].value == "true",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m messaging.topics", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["create", "describe"])
    args = parser.parse_args(argv)
    settings = load()
    admin = admin_client(settings)
    try:
        for spec in pipeline_topics(settings):
            if args.command == "create":
                print(f"topic {spec.name}: {ensure_topic(admin, spec)}")
            print(describe(admin, spec.name))
    except (KafkaException, RuntimeError) as exc:
        print(f"topics: ERROR against {settings.kafka_brokers}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
