"""The platform group: Kafka x3 (KRaft), PostgreSQL and the S3 API server, and what they must hold.

`up` is idempotent (running services are kept), waits for real health and names the service and port
that failed, then creates the topics, the roles and schemas, and the bucket; `down` stops exactly the
processes `up` started (PID files under RUN_DIR).
"""
from __future__ import annotations

from infrastructure.local import kafka, postgres, processes, s3
from infrastructure.local.services import Group
from infrastructure.settings import Settings, load


def services(settings: Settings) -> list[processes.Service]:
    return [*kafka.services(settings), postgres.service(settings), s3.service(settings)]


def up(settings: Settings) -> None:
    """Start everything, wait for health, create topics/roles/bucket."""
    platform = services(settings)
    for service in platform:
        service.start()
    processes.wait_healthy(platform)
    from messaging import topics  # imported late: the platform must not need Kafka's client to stop

    admin = topics.admin_client(settings)
    for spec in topics.pipeline_topics(settings):
        topics.ensure_topic(admin, spec)
    postgres.apply_init_sql(settings)
    s3.ensure_bucket(settings)


def ensure_up(settings: Settings | None = None) -> Settings:
    """For tests and tools: bring the platform up unless it already is healthy; return its settings."""
    settings = settings or load()
    if not all(service.healthy() for service in services(settings)):
        up(settings)
    return settings


def down(settings: Settings) -> list[str]:
    return kafka.stop(settings) + processes.stop([postgres.service(settings), s3.service(settings)])


GROUP = Group("platform", services, up, down)
