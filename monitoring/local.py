"""The `monitoring` group of `infrastructure.local.services`: Prometheus, Alertmanager, the Pushgateway, the
node, PostgreSQL and StatsD exporters, and the local alert inbox, as processes on 127.0.0.1.

Binaries come from Debian's prometheus* packages and statsd_exporter from `go install` (`setup.sh monitoring`);
their configuration is rendered from monitoring/ into RUN_DIR/monitoring/config by monitoring.config at every
start, so a changed setting or rule takes effect on the next `make monitoring`. Kafka's metrics come from the
JMX agent the brokers already run (infrastructure/local/kafka.py).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import requests

from infrastructure.local import processes
from infrastructure.local.services import Group
from infrastructure.settings import REPO_ROOT, Settings
from monitoring.config import render

HOST = "127.0.0.1"


def home(settings: Settings) -> Path:
    return settings.run_dir / "monitoring"


def config_dir(settings: Settings) -> Path:
    return home(settings) / "config"


def inbox_file(settings: Settings) -> Path:
    return home(settings) / "inbox.jsonl"


def answers(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


def binary(name: str) -> str:
    """A Debian package's binary on PATH, or one `setup.sh monitoring` built into .cache/tools/bin."""
    built = REPO_ROOT / ".cache" / "tools" / "bin" / name
    return shutil.which(name) or (str(built) if built.exists() else name)


def _service(settings: Settings, name: str, port: int, health: str, command: list[str],
             **extra) -> processes.Service:
    return processes.Service(name, home(settings) / name, command, address=(HOST, port), timeout=60,
                             probe=lambda: answers(f"http://{HOST}:{port}{health}"),
                             expect=extra.pop("expect", command[0].rsplit("/", 1)[-1]), **extra)


def services(settings: Settings) -> list[processes.Service]:
    conf = config_dir(settings)
    data = home(settings)
    pg_dsn = (f"postgresql://{settings.postgres_ro_user}:{settings.postgres_ro_password}@{settings.postgres_host}:"
              f"{settings.postgres_port}/{settings.postgres_db}?sslmode=disable")
    return [
        _service(settings, "prometheus", settings.prometheus_port, "/-/ready", [
            binary("prometheus"), f"--config.file={conf / 'prometheus.yml'}",
            f"--storage.tsdb.path={data / 'prometheus-data'}",
            f"--web.listen-address={HOST}:{settings.prometheus_port}", "--storage.tsdb.retention.time=15d",
            f"--web.external-url=http://{HOST}:{settings.prometheus_port}"],
            prepare=lambda: render(settings, conf)),
        _service(settings, "alertmanager", settings.alertmanager_port, "/-/ready", [
            binary("prometheus-alertmanager"), f"--config.file={conf / 'alertmanager.yml'}",
            f"--storage.path={data / 'alertmanager-data'}", f"--web.listen-address={HOST}:{settings.alertmanager_port}",
            "--cluster.listen-address=", f"--web.external-url=http://{HOST}:{settings.alertmanager_port}"],
            prepare=lambda: render(settings, conf)),
        _service(settings, "pushgateway", settings.pushgateway_port, "/-/ready", [
            binary("prometheus-pushgateway"), f"--web.listen-address={HOST}:{settings.pushgateway_port}",
            f"--persistence.file={data / 'pushgateway.db'}"]),
        # Only the collectors the rules and dashboards read: the defaults cost a scrape of every subsystem.
        _service(settings, "node-exporter", settings.node_exporter_port, "/", [
            binary("prometheus-node-exporter"), f"--web.listen-address={HOST}:{settings.node_exporter_port}",
            "--collector.disable-defaults", "--collector.filesystem", "--collector.cpu", "--collector.meminfo",
            "--collector.loadavg"]),
        # Not the database collector: it reads every database's size, and the reader may connect only to Gold's.
        _service(settings, "postgres-exporter", settings.postgres_exporter_port, "/", [
            binary("prometheus-postgres-exporter"), f"--web.listen-address={HOST}:{settings.postgres_exporter_port}",
            f"--extend.query-path={conf / 'postgres-queries.yml'}", "--no-collector.database"],
            env=lambda: {"DATA_SOURCE_NAME": pg_dsn}, prepare=lambda: render(settings, conf)),
        _service(settings, "statsd-exporter", settings.statsd_exporter_port, "/", [
            binary("statsd_exporter"), f"--web.listen-address={HOST}:{settings.statsd_exporter_port}",
            f"--statsd.listen-udp={HOST}:{settings.statsd_port}", "--statsd.listen-tcp=",
            f"--statsd.mapping-config={conf / 'statsd-mapping.yml'}"],
            prepare=lambda: render(settings, conf)),
        _service(settings, "alert-inbox", settings.alert_inbox_http_port, "/health", [
            sys.executable, "-m", "monitoring.inbox", "--smtp-port", str(settings.alert_inbox_smtp_port),
            "--http-port", str(settings.alert_inbox_http_port), "--out", str(inbox_file(settings))],
            expect="monitoring.inbox", cwd=REPO_ROOT),
    ]


def up(settings: Settings) -> None:
    group = services(settings)
    missing = sorted({s.command[0] for s in group if not Path(s.command[0]).is_absolute()})
    if missing:
        raise processes.StartError(f"{', '.join(missing)} not installed: run "
                                   "`bash infrastructure/local/setup.sh monitoring`")
    for service in group:
        service.start()
    processes.wait_healthy(group)
    print(f"monitoring: Prometheus http://{HOST}:{settings.prometheus_port}, Alertmanager "
          f"http://{HOST}:{settings.alertmanager_port}, alerts delivered to {inbox_file(settings)}")


def down(settings: Settings) -> list[str]:
    return processes.stop(services(settings))


GROUP = Group("monitoring", services, up, down, needs=("platform",))
