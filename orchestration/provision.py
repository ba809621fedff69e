"""Provision the Airflow Connections and Variables the DAG reads at run time, from the settings (.env).

    .venvs/airflow/bin/python -m orchestration.provision

Idempotent: each object is created or updated in place. Runs inside Airflow's environment against the
metadata database of AIRFLOW_HOME / AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (`make airflow` calls it; the
compose deployment runs it once in its init container). Prints names only, never values.
"""
from __future__ import annotations

import json

from airflow.models import Connection, Variable
from airflow.utils.session import create_session

from infrastructure.settings import Settings, is_loopback, load
from orchestration.alerts import EMAIL_CONN_ID, SLACK_CONN_ID


def connections(s: Settings) -> list[Connection]:
    return [
        Connection(conn_id="tripclick_kafka", conn_type="generic", description="Kafka cluster of the pipeline",
                   extra=json.dumps({"brokers": s.kafka_brokers, "topic": s.kafka_topic,
                                     "dlq_topic": s.kafka_dlq_topic})),
        Connection(conn_id="tripclick_postgres", conn_type="postgres", description="Gold mart (loader role)",
                   host=s.postgres_host, port=s.postgres_port, schema=s.postgres_db,
                   login=s.postgres_user, password=s.postgres_password),
        Connection(conn_id="tripclick_s3", conn_type="aws", description="Lake object store",
                   login=s.aws_access_key_id, password=s.aws_secret_access_key,
                   extra=json.dumps({"endpoint_url": s.s3_endpoint})),
        Connection(conn_id="tripclick_spark", conn_type="generic",
                   description="Spark standalone cluster: its RPC authentication secret",
                   password=s.spark_auth_secret),
    ]


def alert_connections(s: Settings) -> list[Connection]:
    """Where orchestration.alerts sends (ALERT_*). Local mode only: a deployment passes these two as AIRFLOW_CONN_*
    variables to the scheduler alone, so that the init container never holds the webhook."""
    host, _, port = s.alert_smtp_smarthost.rpartition(":")
    return [
        # STARTTLS unless the server is on loopback (local mode's inbox), as Alertmanager's smtp_require_tls.
        Connection(conn_id=EMAIL_CONN_ID, conn_type="smtp", description="Alert e-mail: server, sender, recipients",
                   host=host, port=int(port), extra=json.dumps({
                       "from_email": s.alert_email_from, "to": s.alert_email_to, "disable_ssl": True,
                       "disable_tls": is_loopback(host)})),
        Connection(conn_id=SLACK_CONN_ID, conn_type="slackwebhook", description="Alert Slack incoming webhook",
                   password=s.alert_slack_webhook_url),
    ]


def variables(s: Settings) -> dict[str, str]:
    return {"tripclick_lake_root": s.lake_root, "tripclick_pushgateway_url": s.pushgateway_url}


def upsert_connection(session, wanted: Connection) -> str:
    existing = session.query(Connection).filter(Connection.conn_id == wanted.conn_id).one_or_none()
    if existing is None:
        session.add(wanted)
        return "created"
    for attr in ("conn_type", "description", "host", "port", "schema", "login"):
        setattr(existing, attr, getattr(wanted, attr))
    existing.set_password(wanted.password)
    existing.set_extra(wanted.extra)
    return "updated"


def main() -> None:
    s = load()
    wanted = connections(s) + (alert_connections(s) if s.platform_mode == "local" else [])
    with create_session() as session:
        for conn in wanted:
            print(f"[provision] connection {conn.conn_id}: {upsert_connection(session, conn)}")
    for key, value in variables(s).items():
        Variable.set(key, value)
        print(f"[provision] variable {key}: set")
    print(f"[provision] done: {len(wanted)} connections, {len(variables(s))} variables")


if __name__ == "__main__":
    main()
