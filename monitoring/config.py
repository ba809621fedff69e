"""Render the monitoring configuration from the repository's files and the settings, for either mode.

    python -m monitoring.config render --out DIR [--config-dir /etc/tripclick-monitoring] [--secret-owner 10001]

One generator for local and docker mode, so the two cannot drift: prometheus.yml (scrape jobs reading
file-based target lists), targets/<job>.json (local: 127.0.0.1 and the local ports; docker: the monitoring
compose file's service names and the Kafka hosts of KAFKA_BROKERS), rules.yml (monitoring/rules.yml with the
ALERT_* thresholds filled in), alertmanager.yml (routes to e-mail and the Slack webhook), the PostgreSQL
exporter's Gold freshness query and the StatsD mapping. The Slack webhook URL is a credential: it goes to a
file of its own (mode 0600) that alertmanager.yml names, never into alertmanager.yml itself.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from string import Template

from infrastructure.local.kafka import METRICS_PORT_OFFSET, nodes
from infrastructure.settings import REPO_ROOT, Settings, is_loopback, load

SOURCE = REPO_ROOT / "monitoring"
# Docker mode: the monitoring compose file's services and the ports their images listen on.
COMPOSE_TARGETS = {"prometheus": "prometheus:9090", "alertmanager": "alertmanager:9093",
                   "pushgateway": "pushgateway:9091", "node": "node-exporter:9100",
                   "postgres": "postgres-exporter:9187", "statsd": "statsd-exporter:9102"}
DAY_SECONDS = 86400


def clock_seconds(clock: str) -> int:
    """'20:00' -> seconds after midnight."""
    hours, _, minutes = clock.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"expected a clock time HH:MM, got {clock!r}")
    return int(hours) * 3600 + int(minutes) * 60


def targets(settings: Settings) -> dict[str, list[str]]:
    """Scrape job -> addresses."""
    kafka = {role: [f"{n.host}:{n.port + METRICS_PORT_OFFSET}" for n in nodes(settings) if n.role == role]
             for role in ("broker", "controller")}
    if settings.platform_mode == "local":
        local = {"prometheus": settings.prometheus_port, "alertmanager": settings.alertmanager_port,
                 "pushgateway": settings.pushgateway_port, "node": settings.node_exporter_port,
                 "postgres": settings.postgres_exporter_port, "statsd": settings.statsd_exporter_port}
        services = {job: [f"127.0.0.1:{port}"] for job, port in local.items()}
    else:
        services = {job: [address] for job, address in COMPOSE_TARGETS.items()}
    return {**services, "kafka-broker": kafka["broker"], "kafka-controller": kafka["controller"]}


def thresholds(settings: Settings) -> dict[str, str]:
    """The placeholders of rules.yml: ALERT_* settings in the units the expressions use."""
    return {
        "BROKER_DOWN_FOR": f"{settings.alert_broker_down_minutes}m",
        "UNDER_REPLICATED_FOR": f"{settings.alert_under_replicated_minutes}m",
        "STREAM_STALL_SECONDS": str(settings.alert_stream_stall_minutes * 60),
        "STREAM_STALL_FOR": f"{settings.alert_stream_stall_minutes}m",
        "STREAM_LAG_MESSAGES": str(settings.alert_stream_lag_messages),
        # The newest Gold date D (its midnight) is due by the deadline on D, and by FRESH_BY on D+1 at the latest:
        # an older newest date makes now - D0 exceed one day plus that clock time.
        "DAY_DEADLINE_SECONDS": str(DAY_SECONDS + clock_seconds(settings.alert_day_deadline)),
        "FRESH_BY_SECONDS": str(2 * DAY_SECONDS + clock_seconds(settings.alert_fresh_by)),
        "DISK_FREE_RATIO": str(settings.alert_disk_free_ratio),
        "AIRFLOW_URL": settings.airflow_url,
        "DAILY_DAG": "tripclick_daily_pipeline",
    }


def fill(template: str, values: dict[str, str], name: str) -> str:
    """${NAME} placeholders filled; Prometheus' and Alertmanager's own $labels/$value stay as they are."""
    text = Template(template).safe_substitute(values)
    left = sorted({part.split("}")[0] for part in text.split("${")[1:]})
    if left:
        raise ValueError(f"{name}: unfilled placeholders {left}")
    return text


def prometheus_yml(settings: Settings, config_dir: Path) -> dict:
    scrape = f"{settings.prometheus_scrape_seconds}s"
    alertmanager = targets(settings)["alertmanager"]
    jobs = [{"job_name": job, "honor_labels": job == "pushgateway",  # a push's own labels (job, date) win
             "file_sd_configs": [{"files": [str(config_dir / "targets" / f"{job}.json")]}]}
            for job in targets(settings)]
    return {"global": {"scrape_interval": scrape, "evaluation_interval": scrape,
                       "external_labels": {"system": "tripclick"}},
            "rule_files": [str(config_dir / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": alertmanager}]}]},
            "scrape_configs": jobs}


def alertmanager_values(settings: Settings, config_dir: Path) -> dict[str, str]:
    smtp_host = settings.alert_smtp_smarthost.rpartition(":")[0]
    return {
        "SMTP_SMARTHOST": settings.alert_smtp_smarthost,
        "SMTP_REQUIRE_TLS": "false" if is_loopback(smtp_host) else "true",
        "EMAIL_FROM": settings.alert_email_from,
        "EMAIL_TO": settings.alert_email_to,
        "SLACK_URL_FILE": str(config_dir / "slack-webhook-url"),
        "GROUP_WAIT": f"{settings.prometheus_scrape_seconds}s",
    }


def render(settings: Settings, out: Path, config_dir: Path | None = None, secret_owner: int | None = None) -> Path:
    """Write the configuration into `out`; paths inside name `config_dir` (where it is mounted; default `out`).
    `secret_owner`: the uid the webhook URL's 0600 file is given to (docker mode: the image's user, 10001)."""
    import yaml

    config_dir = config_dir or out
    (out / "targets").mkdir(parents=True, exist_ok=True)
    for job, addresses in targets(settings).items():
        (out / "targets" / f"{job}.json").write_text(json.dumps([{"targets": addresses}], indent=2) + "\n")
    (out / "prometheus.yml").write_text(yaml.safe_dump(prometheus_yml(settings, config_dir),
                                                       sort_keys=False))
    (out / "rules.yml").write_text(fill((SOURCE / "rules.yml").read_text(), thresholds(settings), "rules.yml"))
    (out / "alertmanager.yml").write_text(fill((SOURCE / "alertmanager.yml").read_text(),
                                               alertmanager_values(settings, config_dir),
                                               "alertmanager.yml"))
    secret = out / "slack-webhook-url"
    secret.touch(mode=0o600)
    secret.chmod(0o600)
    secret.write_text(settings.alert_slack_webhook_url)
    if secret_owner is not None:
        os.chown(secret, secret_owner, -1)
    (out / "postgres-queries.yml").write_text(fill((SOURCE / "postgres-queries.yml").read_text(),
                                                   {"PIPELINE_TZ": settings.pipeline_tz}, "postgres-queries.yml"))
    shutil.copyfile(SOURCE / "statsd-mapping.yml", out / "statsd-mapping.yml")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m monitoring.config", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["render"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config-dir", type=Path,
                        help="where the files are mounted (docker: /etc/tripclick-monitoring)")
    parser.add_argument("--secret-owner", type=int,
                        help="uid to own the webhook URL's 0600 file (docker: 10001, the monitoring image's user)")
    args = parser.parse_args(argv)
    out = render(load(), args.out, args.config_dir, args.secret_owner)
    print(f"monitoring configuration rendered: {len(list(out.rglob('*')))} files in {out}")


if __name__ == "__main__":
    main()
