"""The native local platform: `up`, `down` and `status` for Kafka, PostgreSQL and the S3 API server.

    python -m infrastructure.local.platform up|down|status

`up` is idempotent (running services are kept), waits for real health and names the service and port
that failed; `down` stops exactly the processes `up` started (PID files under RUN_DIR).
"""
from __future__ import annotations

import argparse
import sys
import time

from infrastructure.local import kafka, postgres, processes, s3
from infrastructure.settings import Settings, load


def up(settings: Settings) -> float:
    """Start everything, wait for health, create topics/roles/bucket. Returns seconds taken."""
    began = time.monotonic()
    kafka.start(settings)
    postgres.start(settings)
    s3.start(settings)
    kafka.wait_healthy(settings)
    host, port = s3.address(settings)
    processes.wait_until(lambda: s3.healthy(settings), f"S3 API server on {host}:{port}", 60,
                         s3.pid_file(settings), s3.log_file(settings))
    processes.wait_until(lambda: postgres.healthy(settings),
                         f"PostgreSQL on 127.0.0.1:{settings.postgres_port}", 60)
    from messaging import topics  # imported late: the platform must not need Kafka's client to stop

    admin = topics.admin_client(settings)
    for spec in topics.pipeline_topics(settings):
        topics.ensure_topic(admin, spec)
    postgres.apply_init_sql(settings)
    s3.ensure_bucket(settings)
    return time.monotonic() - began


def ensure_up(settings: Settings | None = None) -> Settings:
    """For tests and tools: bring the platform up unless it already is healthy; return its settings."""
    settings = settings or load()
    if not all(row["healthy"] for row in status(settings)):
        up(settings)
    return settings


def down(settings: Settings) -> list[str]:
    stopped = kafka.stop(settings)
    if postgres.stop(settings):
        stopped.append("postgresql")
    if s3.stop(settings):
        stopped.append("s3proxy")
    return stopped


def status(settings: Settings) -> list[dict]:
    rows = []
    brokers = set()
    try:
        brokers = kafka.registered_brokers(settings.kafka_brokers, timeout=2)
    except Exception:
        pass
    for node in kafka.nodes(settings):
        pid = processes.read_pid(node.pid_file)
        listening = processes.port_open(node.host, node.port)
        in_cluster = node.role == "controller" or node.node_id in brokers
        rows.append({"service": node.name, "address": f"{node.host}:{node.port}", "pid": pid,
                     "healthy": bool(pid and listening and in_cluster)})
    rows.append({"service": "postgresql", "address": f"127.0.0.1:{settings.postgres_port}",
                 "pid": postgres.postmaster_pid(settings), "healthy": postgres.healthy(settings)})
    host, port = s3.address(settings)
    rows.append({"service": "s3proxy", "address": f"{host}:{port}", "pid": processes.read_pid(s3.pid_file(settings)),
                 "healthy": s3.healthy(settings)})
    return rows


def print_status(rows: list[dict]) -> None:
    print(f"{'SERVICE':<22} {'ADDRESS':<18} {'PID':>8}  HEALTH")
    for row in rows:
        print(f"{row['service']:<22} {row['address']:<18} {row['pid'] or '-':>8}  "
              f"{'healthy' if row['healthy'] else 'DOWN'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.local.platform",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = load()
    if args.command == "up":
        try:
            seconds = up(settings)
        except processes.StartError as exc:
            print(f"platform: FAILED: {exc}", file=sys.stderr)
            return 1
        rows = status(settings)
        print_status(rows)
        print(f"platform: up in {seconds:.1f}s, {sum(r['healthy'] for r in rows)}/{len(rows)} services healthy")
        return 0 if all(r["healthy"] for r in rows) else 1
    if args.command == "down":
        stopped = down(settings)
        print(f"platform: stopped {len(stopped)} services: {', '.join(stopped) or 'none running'}")
        return 0
    rows = status(settings)
    print_status(rows)
    healthy = sum(r["healthy"] for r in rows)
    print(f"platform: {healthy}/{len(rows)} services healthy")
    return 0 if healthy == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
